/* `kiln describe`: an EIF's header, sections, PCRs and metadata (nitro-cli describe-eif JSON). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/eif.h>
#include <kiln/enclave_runtime.h>

#include "cli.h"
#include "eif_json.h"

static const char *section_name(uint16_t t)
{
  static const char *const names[] = {"invalid", "kernel",    "cmdline",
                                      "ramdisk", "signature", "metadata"};
  return t <= 5 ? names[t] : "unknown";
}

/* The enclave runtime measured into the bootstrap ramdisk (kiln's init only): ports and egress
 * list as kiln-agent enforces them, and the reserved vsock ports. */
static void print_runtime(const char *file, const struct kiln_eif_info *info)
{
  char *conf = NULL;
  struct kiln_error e = KILN_ERROR_INIT;
  if (kiln_eif_agent_conf(file, info, &conf, &e) != KILN_OK)
    fprintf(stderr, "kiln describe: %s\n", kiln_error_msg(&e));
  kiln_error_clear(&e);
  if (!conf)
    return;
  printf("runtime (kiln-agent.conf, measured in PCR0 and PCR1):\n");
  for (char *save = NULL, *line = strtok_r(conf, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save))
    if (!strncmp(line, "ingress ", 8) || !strncmp(line, "allow ", 6) || !strncmp(line, "deny ", 5))
      printf("  %s\n", line);
  printf("  vsock ports: %d heartbeat, %d egress, %d logs, %d attestation (%d-%d reserved)\n",
         KILN_HEARTBEAT_PORT, KILN_VSOCK_EGRESS_PORT, KILN_VSOCK_LOGS_PORT,
         KILN_VSOCK_ATTESTATION_PORT, KILN_VSOCK_RESERVED_FIRST, KILN_VSOCK_RESERVED_LAST);
  free(conf);
}

int kiln_cmd_describe(struct kiln_cli *cli)
{
  const char *file = NULL;
  int check_crc = 1;
  for (int i = 1; i < cli->argc; i++) {
    if (strcmp(cli->argv[i], "--no-crc-check") == 0)
      check_crc = 0;
    else if (cli->argv[i][0] == '-' || file)
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", cli->argv[i]);
    else
      file = cli->argv[i];
  }
  if (!file)
    return kiln_cli_usage(cli, "name the EIF file to describe");
  struct kiln_eif_info info;
  struct kiln_error e = KILN_ERROR_INIT;
  if (kiln_eif_read(file, check_crc, KILN_EIF_SHA384, &info, &e) != KILN_OK) {
    int code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    kiln_error_clear(&e);
    return code;
  }
  cJSON *doc = kiln_eif_describe_json(&info);
  if (cli->json) {
    kiln_cli_print_json_ordered(doc); /* nitro-cli's key order, not sorted */
    doc = NULL;
  } else {
    printf("%s: EIF version %u, %s, %u sections, %llu bytes, CRC %s\n", file, info.version,
           (info.flags & 1) ? "aarch64" : "x86_64", info.num_sections,
           (unsigned long long)info.file_size, info.crc_ok ? "ok" : "MISMATCH");
    for (uint16_t i = 0; i < info.num_sections; i++)
      printf("  section %2u %-9s offset %10llu size %10llu\n", i,
             section_name(info.sections[i].type), (unsigned long long)info.sections[i].offset,
             (unsigned long long)info.sections[i].size);
    printf("PCR0 %s\nPCR1 %s\nPCR2 %s\n", info.pcrs.pcr0, info.pcrs.pcr1, info.pcrs.pcr2);
    if (info.has_signature && info.pcrs.pcr8[0])
      printf("PCR8 %s\n", info.pcrs.pcr8);
    if (info.has_signature)
      printf("signature: %s\n",
             info.signature_ok ? "valid (COSE_Sign1 ES384 over PCR0)" : info.signature_error);
    if (info.cmdline)
      printf("cmdline: %s\n", info.cmdline);
    if (info.metadata)
      printf("metadata: %s\n", info.metadata);
    print_runtime(file, &info);
  }
  cJSON_Delete(doc);
  kiln_eif_info_clear(&info);
  return KILN_EXIT_OK;
}
