/* The enclave runtime's settings in kiln.json (/enclave/ports, /enclave/egress,
 * /enclave/attestation_port, with /aws/ports as the older place of the public ports), checked
 * once and turned into the two configuration files: kiln-agent's /kiln-agent.conf, measured into
 * the EIF's bootstrap ramdisk, and kiln-host's /etc/kiln/host.conf on the parent. The vsock ports
 * are fixed here: 7700 egress, 7701 logs, 7702 attestation; 9000 is nitro-cli's heartbeat. */
#ifndef KILN_ENCLAVE_RUNTIME_H
#define KILN_ENCLAVE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/error.h"

#define KILN_VSOCK_EGRESS_PORT 7700
#define KILN_VSOCK_LOGS_PORT 7701
#define KILN_VSOCK_ATTESTATION_PORT 7702
#define KILN_VSOCK_RESERVED_FIRST 7700
#define KILN_VSOCK_RESERVED_LAST 7709
#define KILN_HEARTBEAT_PORT 9000
#define KILN_ENCLAVE_PARENT_CID 3
/* The CID kiln deploys the enclave with (nitro-cli run-enclave --enclave-cid). */
#define KILN_ENCLAVE_CID 16
/* Where kiln-host writes the enclave's log records on the parent. */
#define KILN_HOST_LOG_FILE "/var/log/kiln/app.log"

struct kiln_enclave_port {
  uint16_t pub;       /* TCP port on the parent (and in the security group) */
  uint16_t app;       /* the app's TCP port in the enclave = the vsock port */
  int proxy_protocol; /* a PROXY v2 header with the client's address goes first */
};

struct kiln_enclave_runtime {
  struct kiln_enclave_port *ports;
  size_t nports;
  char **allow, **deny; /* egress entries as written */
  size_t nallow, ndeny;
  uint16_t attestation_port; /* 0 = not exposed on the parent */
};

/* Read and check the settings from the whole kiln.json document (NULL: none). Errors name the
 * JSON pointer and what is wrong. */
kiln_err kiln_enclave_runtime_load(const cJSON *config, struct kiln_enclave_runtime *rt,
                                   struct kiln_error *err);
void kiln_enclave_runtime_free(struct kiln_enclave_runtime *rt);

/* kiln-agent's configuration (malloc'd text). */
char *kiln_enclave_agent_conf(const struct kiln_enclave_runtime *rt);

/* kiln-host's configuration for an enclave with this CID, ingress listening on listen_ip
 * ("0.0.0.0" on an instance, "127.0.0.1" for run-local); log_file may be NULL. */
char *kiln_enclave_host_conf(const struct kiln_enclave_runtime *rt, uint32_t enclave_cid,
                             const char *listen_ip, const char *log_file);

struct kiln_eif_info;

/* The kiln-agent.conf measured into an EIF's bootstrap ramdisk (malloc'd text), or *text = NULL
 * when the EIF has none (another init). */
kiln_err kiln_eif_agent_conf(const char *eif_path, const struct kiln_eif_info *info, char **text,
                             struct kiln_error *err);

#endif
