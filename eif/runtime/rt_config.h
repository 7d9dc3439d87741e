/* The configuration of kiln-agent and kiln-host: one directive a line ("#" starts a comment), the
 * same format in the enclave's measured /kiln-agent.conf, the parent's /etc/kiln/host.conf and
 * on the command line (-e 'DIRECTIVE ARGS'):
 *   ingress LISTEN TARGET [proxy-protocol]   splice connections from LISTEN to TARGET
 *   allow ENTRY | deny ENTRY                 the egress list (see rt_egress.h)
 *   egress-listen EP                         accept egress requests here
 *   egress-parent EP                         (agent) the parent's egress listener
 *   logs-listen EP                           (host) accept log records here
 *   logs-parent EP                           (agent) send log records here
 *   attestation-listen EP                    (agent) serve NSM attestation documents here
 *   enclave-cid N                            (host) accept egress and logs only from this CID
 *   log-file PATH / log-file-max BYTES       (host) where records go besides stdout
 *   dns files|dns|files,dns                  (host) how names are resolved
 *   ingress-wait SECONDS                     how long a refused connect is retried
 * Endpoints are "vsock:CID:PORT", "tcp:IP:PORT" or "unix:PATH". */
#ifndef KILN_RT_CONFIG_H
#define KILN_RT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_egress.h"
#include "rt_endpoint.h"

#define RT_MAX_INGRESS 64

struct rt_ingress_spec {
  struct rt_endpoint listen, target;
  bool proxy_protocol;
};

struct rt_config {
  struct rt_ingress_spec ingress[RT_MAX_INGRESS];
  size_t ningress;
  struct rt_egress egress;
  bool has_egress_listen, has_egress_parent, has_logs_listen, has_logs_parent,
      has_attestation_listen;
  struct rt_endpoint egress_listen, egress_parent, logs_listen, logs_parent, attestation_listen;
  uint32_t enclave_cid;
  char log_file[512];
  uint64_t log_file_max;
  char dns[32];
  unsigned ingress_wait_s;
};

void rt_config_init(struct rt_config *cfg);
void rt_config_free(struct rt_config *cfg);

/* One directive; 0, or -1 with the reason in why. */
int rt_config_line(struct rt_config *cfg, const char *line, char *why, size_t why_size);

/* Every line of a file; the reason names the file and line. */
int rt_config_file(struct rt_config *cfg, const char *path, char *why, size_t why_size);

/* Replace the CID of the *-parent endpoints (tests boot with kiln.parent_cid=1). */
void rt_config_set_parent_cid(struct rt_config *cfg, uint32_t cid);

#endif
