/* kiln.json's scale-out options (/aws/count, max_count, load_balancer, health_path, health_port,
 * static_addresses, warmup_seconds, rollout_timeout_seconds) checked together into one value. */
#include <string.h>

#include "byoc.h"

#define DEFAULT_WARMUP_SECONDS 300
#define DEFAULT_ROLLOUT_TIMEOUT_SECONDS 3600

static int int_option(const cJSON *opts, const char *key, int fallback)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
  return cJSON_IsNumber(v) ? v->valueint : fallback;
}

static const char *string_option(const cJSON *opts, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
  return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

kiln_err kiln_scale_from_options(const cJSON *opts, const int *ingress, size_t ningress,
                                 struct kiln_scale *s, struct kiln_error *err)
{
  memset(s, 0, sizeof(*s));
  s->count = int_option(opts, "count", 1);
  s->max_count = int_option(opts, "max_count", 0);
  const char *lb = string_option(opts, "load_balancer");
  s->nlb = lb ? strcmp(lb, "nlb") == 0 : s->count > 1;
  s->health_path = string_option(opts, "health_path");
  s->health_port = int_option(opts, "health_port", 0);
  s->static_addresses = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "static_addresses"));
  s->warmup_seconds = int_option(opts, "warmup_seconds", DEFAULT_WARMUP_SECONDS);
  s->rollout_timeout_seconds =
      int_option(opts, "rollout_timeout_seconds", DEFAULT_ROLLOUT_TIMEOUT_SECONDS);
  if (s->max_count && s->count > s->max_count)
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json /aws/count %d is more than /aws/max_count %d: raise max_count "
                          "or lower count",
                          s->count, s->max_count);
  if (!s->max_count)
    s->max_count = s->count > 1 ? s->count * 2 : 2;
  if (s->max_count > 16)
    s->max_count = s->count > 16 ? s->count : 16;
  if (!s->nlb && s->count > 1)
    return kiln_error_set(
        err, KILN_E_INVALID,
        "kiln.json /aws/load_balancer \"eip\" serves one instance, but /aws/count "
        "is %d: use \"nlb\" (or drop load_balancer: nlb is the default for more "
        "than one instance)",
        s->count);
  if (!s->nlb && (s->health_path || s->health_port || s->static_addresses))
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json /aws/%s applies to the load balancer: set /aws/load_balancer "
                          "to \"nlb\" or remove it",
                          s->health_path   ? "health_path"
                          : s->health_port ? "health_port"
                                           : "static_addresses");
  if (s->health_path &&
      strspn(s->health_path, "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789-._~%!$&'()*+,;=:@?") != strlen(s->health_path))
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json /aws/health_path \"%s\": an HTTP path starting with / "
                          "(letters, digits and URL characters, no spaces)",
                          s->health_path);
  if (s->health_path && s->health_path[0] != '/')
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json /aws/health_path \"%s\" must start with /", s->health_path);
  if (s->nlb && ningress == 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          s->health_path
                              ? "kiln.json /aws/health_path needs an HTTP port to check: "
                                "/enclave/ports lists none (add the app's port)"
                              : "kiln.json /aws/load_balancer \"nlb\" needs at least one public "
                                "port in /enclave/ports");
  if (s->nlb && s->health_port) {
    size_t i = 0;
    while (i < ningress && ingress[i] != s->health_port)
      i++;
    if (i == ningress)
      return kiln_error_set(err, KILN_E_INVALID,
                            "kiln.json /aws/health_port %d is not one of the public ports in "
                            "/enclave/ports",
                            s->health_port);
  }
  if (s->nlb && !s->health_port)
    s->health_port = ingress[0];
  return KILN_OK;
}
