/* The runtime configuration directives (see rt_config.h). */
#define _GNU_SOURCE
#include "rt_config.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rt_config_init(struct rt_config *cfg)
{
  memset(cfg, 0, sizeof *cfg);
  cfg->log_file_max = 64u << 20;
  snprintf(cfg->dns, sizeof cfg->dns, "files,dns");
  cfg->ingress_wait_s = 30;
}

void rt_config_free(struct rt_config *cfg)
{
  rt_egress_free(&cfg->egress);
}

static int number(const char *text, unsigned long long max, unsigned long long *out)
{
  if (!text || !*text || strspn(text, "0123456789") != strlen(text) || strlen(text) > 19)
    return -1;
  *out = strtoull(text, NULL, 10);
  return *out > max ? -1 : 0;
}

static int endpoint(const char *text, struct rt_endpoint *ep, bool *has, char *why, size_t n)
{
  if (!text) {
    snprintf(why, n, "an endpoint is missing");
    return -1;
  }
  if (rt_endpoint_parse(text, ep, why, n) != 0)
    return -1;
  if (has)
    *has = true;
  return 0;
}

int rt_config_line(struct rt_config *cfg, const char *line, char *why, size_t why_size)
{
  char copy[1024];
  if (strlen(line) >= sizeof copy) {
    snprintf(why, why_size, "line longer than %zu bytes", sizeof copy - 1);
    return -1;
  }
  strcpy(copy, line);
  char *hash = strchr(copy, '#');
  if (hash)
    *hash = '\0';
  char *words[5] = {0}, *save = NULL;
  int n = 0;
  for (char *w = strtok_r(copy, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
    if (n == 5) {
      snprintf(why, why_size, "too many words");
      return -1;
    }
    words[n++] = w;
  }
  if (n == 0)
    return 0;
  const char *d = words[0], *a1 = words[1], *a2 = words[2];
  unsigned long long v = 0;
  if (strcmp(d, "ingress") == 0) {
    if (cfg->ningress == RT_MAX_INGRESS) {
      snprintf(why, why_size, "more than %d ingress lines", RT_MAX_INGRESS);
      return -1;
    }
    struct rt_ingress_spec *s = &cfg->ingress[cfg->ningress];
    memset(s, 0, sizeof *s);
    if (endpoint(a1, &s->listen, NULL, why, why_size) ||
        endpoint(a2, &s->target, NULL, why, why_size))
      return -1;
    if (words[3] && strcmp(words[3], "proxy-protocol") != 0) {
      snprintf(why, why_size, "\"%s\": the only ingress flag is proxy-protocol", words[3]);
      return -1;
    }
    s->proxy_protocol = words[3] != NULL;
    cfg->ningress++;
    return 0;
  }
  if ((strcmp(d, "allow") == 0 || strcmp(d, "deny") == 0) && a1 && !a2)
    return rt_egress_add(&cfg->egress, d[0] == 'd', a1, why, why_size);
  if (strcmp(d, "egress-listen") == 0)
    return endpoint(a1, &cfg->egress_listen, &cfg->has_egress_listen, why, why_size);
  if (strcmp(d, "egress-parent") == 0)
    return endpoint(a1, &cfg->egress_parent, &cfg->has_egress_parent, why, why_size);
  if (strcmp(d, "logs-listen") == 0)
    return endpoint(a1, &cfg->logs_listen, &cfg->has_logs_listen, why, why_size);
  if (strcmp(d, "logs-parent") == 0)
    return endpoint(a1, &cfg->logs_parent, &cfg->has_logs_parent, why, why_size);
  if (strcmp(d, "attestation-listen") == 0)
    return endpoint(a1, &cfg->attestation_listen, &cfg->has_attestation_listen, why, why_size);
  if (strcmp(d, "enclave-cid") == 0 && number(a1, UINT32_MAX, &v) == 0) {
    cfg->enclave_cid = (uint32_t)v;
    return 0;
  }
  if (strcmp(d, "log-file") == 0 && a1 && strlen(a1) < sizeof cfg->log_file) {
    strcpy(cfg->log_file, a1);
    return 0;
  }
  if (strcmp(d, "log-file-max") == 0 && number(a1, 1ull << 40, &v) == 0 && v >= 4096) {
    cfg->log_file_max = v;
    return 0;
  }
  if (strcmp(d, "dns") == 0 && a1 &&
      (strcmp(a1, "files") == 0 || strcmp(a1, "dns") == 0 || strcmp(a1, "files,dns") == 0)) {
    strcpy(cfg->dns, a1);
    return 0;
  }
  if (strcmp(d, "ingress-wait") == 0 && number(a1, 3600, &v) == 0) {
    cfg->ingress_wait_s = (unsigned)v;
    return 0;
  }
  snprintf(why, why_size, "\"%s\" is not a directive with valid arguments (see kiln-host --help)",
           line);
  return -1;
}

int rt_config_file(struct rt_config *cfg, const char *path, char *why, size_t why_size)
{
  FILE *f = fopen(path, "re");
  if (!f) {
    snprintf(why, why_size, "%s: %s", path, strerror(errno));
    return -1;
  }
  char line[1100], reason[512];
  int lineno = 0, rc = 0;
  while (!rc && fgets(line, sizeof line, f)) {
    lineno++;
    if (rt_config_line(cfg, line, reason, sizeof reason) != 0) {
      snprintf(why, why_size, "%s:%d: %s", path, lineno, reason);
      rc = -1;
    }
  }
  fclose(f);
  return rc;
}

void rt_config_set_parent_cid(struct rt_config *cfg, uint32_t cid)
{
  struct rt_endpoint *eps[] = {&cfg->egress_parent, &cfg->logs_parent};
  for (size_t i = 0; i < 2; i++)
    if (eps[i]->family == AF_VSOCK)
      ((struct sockaddr_vm *)&eps[i]->addr)->svm_cid = cid;
}
