/* The enclave runtime's settings in kiln.json and the configuration files made from them (see
 * kiln/enclave_runtime.h). Egress entries are checked with the runtime's own parser, so what
 * kiln accepts here is exactly what kiln-agent and kiln-host enforce. */
#define _GNU_SOURCE
#include "kiln/enclave_runtime.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/eif.h"

#include "rt_egress.h"
#include "util/buf.h"

static int reserved(long port)
{
  return port == KILN_HEARTBEAT_PORT ||
         (port >= KILN_VSOCK_RESERVED_FIRST && port <= KILN_VSOCK_RESERVED_LAST);
}

static kiln_err port_number(const cJSON *v, const char *pointer, long *out, struct kiln_error *err)
{
  if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble || v->valuedouble < 1 ||
      v->valuedouble > 65535)
    return kiln_error_set(err, KILN_E_INVALID, "%s: a port must be an integer from 1 to 65535",
                          pointer);
  *out = (long)v->valuedouble;
  if (reserved(*out))
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s: port %ld is reserved (9000 is the enclave heartbeat, 7700-7709 are "
                          "kiln's vsock ports for egress, logs and attestation): pick another",
                          pointer, *out);
  return KILN_OK;
}

/* "PUB:APP" */
static kiln_err port_pair(const char *text, const char *pointer, long *pub, long *app,
                          struct kiln_error *err)
{
  char *end = NULL;
  *pub = strtol(text, &end, 10);
  if (end == text || *end != ':')
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s: \"%s\" is not a port or \"PUBLIC:APP\" (e.g. \"443:8443\")", pointer,
                          text);
  const char *second = end + 1;
  *app = strtol(second, &end, 10);
  if (end == second || *end)
    return kiln_error_set(err, KILN_E_INVALID, "%s: \"%s\" is not \"PUBLIC:APP\"", pointer, text);
  cJSON *a = cJSON_CreateNumber((double)*pub), *b = cJSON_CreateNumber((double)*app);
  kiln_err rc = port_number(a, pointer, pub, err);
  if (!rc)
    rc = port_number(b, pointer, app, err);
  cJSON_Delete(a);
  cJSON_Delete(b);
  return rc;
}

static kiln_err one_port(const cJSON *item, const char *pointer, struct kiln_enclave_port *p,
                         struct kiln_error *err)
{
  long pub = 0, app = 0;
  kiln_err rc;
  const cJSON *spec = item;
  p->proxy_protocol = 0;
  if (cJSON_IsObject(item)) {
    spec = cJSON_GetObjectItemCaseSensitive(item, "port");
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(item, "proxy_protocol");
    if (pp && !cJSON_IsBool(pp))
      return kiln_error_set(err, KILN_E_INVALID, "%s/proxy_protocol: must be true or false",
                            pointer);
    p->proxy_protocol = cJSON_IsTrue(pp);
    if (!spec)
      return kiln_error_set(err, KILN_E_INVALID,
                            "%s: an object needs \"port\" (8080 or \"443:8443\")", pointer);
  }
  if (cJSON_IsString(spec))
    rc = port_pair(spec->valuestring, pointer, &pub, &app, err);
  else if ((rc = port_number(spec, pointer, &pub, err)) == KILN_OK)
    app = pub;
  p->pub = (uint16_t)pub;
  p->app = (uint16_t)app;
  return rc;
}

static kiln_err load_ports(const cJSON *list, const char *base, struct kiln_enclave_runtime *rt,
                           struct kiln_error *err)
{
  if (!list || cJSON_IsNull(list))
    return KILN_OK;
  if (!cJSON_IsArray(list))
    return kiln_error_set(err, KILN_E_INVALID, "%s: must be a list of ports", base);
  int n = cJSON_GetArraySize(list);
  rt->ports = calloc((size_t)n + 1, sizeof *rt->ports);
  if (!rt->ports)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    char pointer[64];
    snprintf(pointer, sizeof pointer, "%s/%d", base, i);
    struct kiln_enclave_port *p = &rt->ports[i];
    kiln_err rc = one_port(cJSON_GetArrayItem(list, i), pointer, p, err);
    if (rc)
      return rc;
    for (size_t j = 0; j < (size_t)i; j++) {
      if (rt->ports[j].pub == p->pub)
        return kiln_error_set(err, KILN_E_INVALID, "%s: public port %u is listed twice", pointer,
                              p->pub);
      if (rt->ports[j].app == p->app)
        return kiln_error_set(err, KILN_E_INVALID, "%s: app port %u is listed twice", pointer,
                              p->app);
    }
    rt->nports++;
  }
  return KILN_OK;
}

static kiln_err load_entries(const cJSON *egress, const char *name, char ***out, size_t *count,
                             struct kiln_error *err)
{
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(egress, name);
  if (!list || cJSON_IsNull(list))
    return KILN_OK;
  if (!cJSON_IsArray(list))
    return kiln_error_set(err, KILN_E_INVALID, "/enclave/egress/%s: must be a list of strings",
                          name);
  int n = cJSON_GetArraySize(list);
  *out = calloc((size_t)n + 1, sizeof **out);
  if (!*out)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  struct rt_egress check;
  memset(&check, 0, sizeof check);
  kiln_err rc = KILN_OK;
  for (int i = 0; i < n && !rc; i++) {
    const cJSON *e = cJSON_GetArrayItem(list, i);
    char why[400];
    if (!cJSON_IsString(e))
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "/enclave/egress/%s/%d: must be a string like "
                          "\"api.example.com:443\"",
                          name, i);
    else if (strpbrk(e->valuestring, " \t\r\n#") ||
             rt_egress_add(&check, false, e->valuestring, why, sizeof why) != 0)
      rc = kiln_error_set(
          err, KILN_E_INVALID,
          "/enclave/egress/%s/%d: %s (entries: host:port, *.suffix:port, "
          "**.suffix:port, IP:port, CIDR:port, [IPv6]:port; port may be *)",
          name, i, strpbrk(e->valuestring, " \t\r\n#") ? "spaces and # are not allowed" : why);
    else if (!((*out)[(*count)++] = strdup(e->valuestring)))
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  rt_egress_free(&check);
  return rc;
}

kiln_err kiln_enclave_runtime_load(const cJSON *config, struct kiln_enclave_runtime *rt,
                                   struct kiln_error *err)
{
  memset(rt, 0, sizeof *rt);
  const cJSON *enclave = cJSON_GetObjectItemCaseSensitive(config, "enclave");
  const cJSON *ports = cJSON_GetObjectItemCaseSensitive(enclave, "ports");
  const cJSON *aws = cJSON_GetObjectItemCaseSensitive(config, "aws");
  kiln_err rc =
      ports ? load_ports(ports, "/enclave/ports", rt, err)
            : load_ports(cJSON_GetObjectItemCaseSensitive(aws, "ports"), "/aws/ports", rt, err);
  const cJSON *egress = cJSON_GetObjectItemCaseSensitive(enclave, "egress");
  if (!rc && egress && !cJSON_IsNull(egress) && !cJSON_IsObject(egress))
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "/enclave/egress: must be an object {\"allow\": [...], \"deny\": [...]}");
  if (!rc)
    rc = load_entries(egress, "allow", &rt->allow, &rt->nallow, err);
  if (!rc)
    rc = load_entries(egress, "deny", &rt->deny, &rt->ndeny, err);
  const cJSON *att = cJSON_GetObjectItemCaseSensitive(enclave, "attestation_port");
  long port = 0;
  if (!rc && att && !cJSON_IsNull(att) &&
      !(rc = port_number(att, "/enclave/attestation_port", &port, err))) {
    for (size_t i = 0; i < rt->nports && !rc; i++)
      if (rt->ports[i].pub == port)
        rc = kiln_error_set(err, KILN_E_INVALID,
                            "/enclave/attestation_port: %ld is also an ingress port", port);
    rt->attestation_port = (uint16_t)port;
  }
  if (rc)
    kiln_enclave_runtime_free(rt);
  return rc;
}

void kiln_enclave_runtime_free(struct kiln_enclave_runtime *rt)
{
  for (size_t i = 0; i < rt->nallow; i++)
    free(rt->allow[i]);
  for (size_t i = 0; i < rt->ndeny; i++)
    free(rt->deny[i]);
  free(rt->allow);
  free(rt->deny);
  free(rt->ports);
  memset(rt, 0, sizeof *rt);
}

static void egress_lines(struct kiln_buf *b, const struct kiln_enclave_runtime *rt)
{
  for (size_t i = 0; i < rt->nallow; i++)
    kiln_buf_printf(b, "allow %s\n", rt->allow[i]);
  for (size_t i = 0; i < rt->ndeny; i++)
    kiln_buf_printf(b, "deny %s\n", rt->deny[i]);
}

char *kiln_enclave_agent_conf(const struct kiln_enclave_runtime *rt)
{
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b, "# kiln-agent, made by kiln from kiln.json; measured (PCR0, PCR1)\n");
  for (size_t i = 0; i < rt->nports; i++)
    kiln_buf_printf(&b, "ingress vsock:any:%u tcp:127.0.0.1:%u%s\n", rt->ports[i].app,
                    rt->ports[i].app, rt->ports[i].proxy_protocol ? " proxy-protocol" : "");
  kiln_buf_printf(&b, "egress-listen tcp:127.0.0.1:3128\n");
  kiln_buf_printf(&b, "egress-parent vsock:%u:%u\n", KILN_ENCLAVE_PARENT_CID,
                  KILN_VSOCK_EGRESS_PORT);
  kiln_buf_printf(&b, "logs-parent vsock:%u:%u\n", KILN_ENCLAVE_PARENT_CID, KILN_VSOCK_LOGS_PORT);
  kiln_buf_printf(&b, "attestation-listen vsock:any:%u\n", KILN_VSOCK_ATTESTATION_PORT);
  egress_lines(&b, rt);
  return kiln_buf_detach(&b);
}

char *kiln_enclave_host_conf(const struct kiln_enclave_runtime *rt, uint32_t enclave_cid,
                             const char *listen_ip, const char *log_file)
{
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b, "# kiln-host, made by kiln from kiln.json\nenclave-cid %u\n", enclave_cid);
  for (size_t i = 0; i < rt->nports; i++)
    kiln_buf_printf(&b, "ingress tcp:%s:%u vsock:%u:%u%s\n", listen_ip, rt->ports[i].pub,
                    enclave_cid, rt->ports[i].app,
                    rt->ports[i].proxy_protocol ? " proxy-protocol" : "");
  if (rt->attestation_port)
    kiln_buf_printf(&b, "ingress tcp:%s:%u vsock:%u:%u\n", listen_ip, rt->attestation_port,
                    enclave_cid, KILN_VSOCK_ATTESTATION_PORT);
  kiln_buf_printf(&b, "egress-listen vsock:any:%u\nlogs-listen vsock:any:%u\n",
                  KILN_VSOCK_EGRESS_PORT, KILN_VSOCK_LOGS_PORT);
  if (log_file)
    kiln_buf_printf(&b, "log-file %s\n", log_file);
  egress_lines(&b, rt);
  return kiln_buf_detach(&b);
}

#define BOOTSTRAP_MAX (64u << 20)
#define AGENT_CONF_MAX (1u << 20)

/* The first ramdisk section's bytes (the bootstrap ramdisk is small: init, agent, modules). */
static kiln_err read_bootstrap(const char *path, const struct kiln_eif_info *info, void **data,
                               size_t *len, struct kiln_error *err)
{
  *data = NULL;
  for (uint16_t i = 0; i < info->num_sections; i++) {
    const struct kiln_eif_section *s = &info->sections[i];
    if (s->type != KILN_EIF_SECTION_RAMDISK)
      continue;
    if (s->size > BOOTSTRAP_MAX)
      return KILN_OK; /* not a kiln bootstrap ramdisk */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *data = fd >= 0 ? malloc(s->size ? s->size : 1) : NULL;
    ssize_t n =
        *data ? pread(fd, *data, s->size, (off_t)(s->offset + KILN_EIF_SECTION_HEADER_SIZE)) : -1;
    int e = errno;
    if (fd >= 0)
      close(fd);
    if (n != (ssize_t)s->size) {
      free(*data);
      *data = NULL;
      return kiln_error_set(err, KILN_E_IO, "%s: cannot read the bootstrap ramdisk: %s", path,
                            n < 0 ? strerror(e) : "short read");
    }
    *len = s->size;
    return KILN_OK;
  }
  return KILN_OK;
}

kiln_err kiln_eif_agent_conf(const char *eif_path, const struct kiln_eif_info *info, char **text,
                             struct kiln_error *err)
{
  void *data = NULL;
  size_t len = 0;
  *text = NULL;
  kiln_err rc = read_bootstrap(eif_path, info, &data, &len, err);
  if (rc || !data)
    return rc;
  struct archive *a = archive_read_new();
  struct archive_entry *ae;
  archive_read_support_format_cpio(a);
  if (archive_read_open_memory(a, data, len) == ARCHIVE_OK) {
    while (!*text && archive_read_next_header(a, &ae) == ARCHIVE_OK) {
      const char *name = archive_entry_pathname(ae);
      int64_t size = archive_entry_size(ae);
      if (!name || strcmp(name[0] == '.' && name[1] == '/' ? name + 2 : name, "kiln-agent.conf"))
        continue;
      if (size < 0 || size > AGENT_CONF_MAX || !(*text = malloc((size_t)size + 1))) {
        rc = kiln_error_set(err, KILN_E_INVALID, "%s: kiln-agent.conf is too large", eif_path);
        break;
      }
      la_ssize_t n = archive_read_data(a, *text, (size_t)size);
      if (n != size) {
        free(*text);
        *text = NULL;
        rc = kiln_error_set(err, KILN_E_INVALID, "%s: kiln-agent.conf cannot be read: %s", eif_path,
                            archive_error_string(a));
        break;
      }
      (*text)[size] = '\0';
    }
  }
  archive_read_free(a);
  free(data);
  return rc;
}
