/* `kiln eif-build`: assemble an EIF from a kernel, cmdline and ramdisks, with eif_build's flags. */
#define _GNU_SOURCE /* strptime, timegm */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kiln/eif.h>

#include "cli.h"
#include "eif_json.h"
#include "util/fs.h"
#include "util/json.h"

static const char usage[] =
    "Usage: kiln eif-build --kernel FILE --cmdline TEXT --ramdisk FILE [--ramdisk FILE]...\n"
    "                      --output FILE [--kernel_config FILE] [--name N] [--version V]\n"
    "                      [--metadata FILE.json] [--arch x86_64|aarch64] [--build-time T]\n"
    "                      [--build-tool T] [--build-tool-version V] [--img-os OS]\n"
    "                      [--img-kernel K] [--algo sha256|sha384|sha512] [--pcrs-output FILE]\n"
    "\n"
    "Takes the flags of AWS's eif_build, so existing pipelines can swap it in. The first\n"
    "--ramdisk is the bootstrap ramdisk (PCR1), the others the application (PCR2). The output\n"
    "is bit-for-bit reproducible: the build time comes from --build-time (RFC 3339 or seconds),\n"
    "else SOURCE_DATE_EPOCH, else 0 (1970-01-01T00:00:00+00:00). Prints the measurements as\n"
    "nitro-cli does: {\"Measurements\": {\"HashAlgorithm\": ..., \"PCR0\": ..., ...}}.\n"
    "\n"
    "Example:\n"
    "  kiln eif-build --kernel bzImage --kernel_config bzImage.config \\\n"
    "    --cmdline \"$(cat cmdline)\" --ramdisk bootstrap.cpio --ramdisk app.cpio \\\n"
    "    --output app.eif --pcrs-output app.pcrs.json\n";

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS(Z|+00:00)" or a plain number of seconds. */
static int parse_time(const char *text, int64_t *out)
{
  char *end = NULL;
  long long secs = strtoll(text, &end, 10);
  if (*text && end && *end == '\0' && secs >= 0) {
    *out = secs;
    return 0;
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest || !(strcmp(rest, "Z") == 0 || strcmp(rest, "+00:00") == 0 || *rest == '\0'))
    return -1;
  *out = (int64_t)timegm(&tm);
  return 0;
}

enum {
  O_KERNEL = 256,
  O_CONFIG,
  O_CMDLINE,
  O_RAMDISK,
  O_OUTPUT,
  O_CERT,
  O_KEY,
  O_NAME,
  O_VERSION,
  O_METADATA,
  O_ARCH,
  O_TIME,
  O_TOOL,
  O_TOOL_VERSION,
  O_OS,
  O_IMG_KERNEL,
  O_ALGO,
  O_PCRS
};
static const struct option options[] = {
    {"kernel", required_argument, NULL, O_KERNEL},
    {"kernel_config", required_argument, NULL, O_CONFIG},
    {"cmdline", required_argument, NULL, O_CMDLINE},
    {"ramdisk", required_argument, NULL, O_RAMDISK},
    {"output", required_argument, NULL, O_OUTPUT},
    {"signing-certificate", required_argument, NULL, O_CERT},
    {"private-key", required_argument, NULL, O_KEY},
    {"name", required_argument, NULL, O_NAME},
    {"version", required_argument, NULL, O_VERSION},
    {"metadata", required_argument, NULL, O_METADATA},
    {"arch", required_argument, NULL, O_ARCH},
    {"build-time", required_argument, NULL, O_TIME},
    {"build-tool", required_argument, NULL, O_TOOL},
    {"build-tool-version", required_argument, NULL, O_TOOL_VERSION},
    {"img-os", required_argument, NULL, O_OS},
    {"img-kernel", required_argument, NULL, O_IMG_KERNEL},
    {"algo", required_argument, NULL, O_ALGO},
    {"pcrs-output", required_argument, NULL, O_PCRS},
    {NULL, 0, NULL, 0}};

struct eif_build_args {
  const char *ramdisks[KILN_EIF_MAX_SECTIONS];
  const char *output, *config, *metadata_file, *pcrs_out, *cert, *key;
};

/* eif_build's flags into b and a; returns 0 or the usage error's exit code. */
static int parse_options(struct kiln_cli *cli, struct kiln_eif_build *b, struct eif_build_args *a)
{
  optind = 0;
  opterr = 0;
  for (int c; (c = getopt_long(cli->argc, cli->argv, "", options, NULL)) != -1;) {
    switch (c) {
    case O_KERNEL: b->kernel = optarg; break;
    case O_CONFIG: a->config = optarg; break;
    case O_CMDLINE: b->cmdline = optarg; break;
    case O_RAMDISK:
      if (b->nramdisks >= KILN_EIF_MAX_SECTIONS - 3)
        return kiln_cli_usage(cli, "too many --ramdisk (at most %d)", KILN_EIF_MAX_SECTIONS - 3);
      a->ramdisks[b->nramdisks++] = optarg;
      break;
    case O_OUTPUT: a->output = optarg; break;
    case O_CERT: a->cert = optarg; break;
    case O_KEY: a->key = optarg; break;
    case O_NAME: b->metadata.image_name = optarg; break;
    case O_VERSION: b->metadata.image_version = optarg; break;
    case O_METADATA: a->metadata_file = optarg; break;
    case O_ARCH:
      if (strcmp(optarg, "x86_64") != 0 && strcmp(optarg, "aarch64") != 0)
        return kiln_cli_usage(cli, "--arch is x86_64 or aarch64, got \"%s\"", optarg);
      b->aarch64 = strcmp(optarg, "aarch64") == 0;
      break;
    case O_TIME:
      if (parse_time(optarg, &b->metadata.build_time) != 0)
        return kiln_cli_usage(cli,
                              "--build-time takes RFC 3339 (1970-01-01T00:00:00+00:00) or "
                              "seconds, got \"%s\"",
                              optarg);
      break;
    case O_TOOL: b->metadata.build_tool = optarg; break;
    case O_TOOL_VERSION: b->metadata.build_tool_version = optarg; break;
    case O_OS: b->metadata.operating_system = optarg; break;
    case O_IMG_KERNEL: b->metadata.kernel_version = optarg; break;
    case O_ALGO:
      if (strcmp(optarg, "sha384") == 0)
        b->hash = KILN_EIF_SHA384;
      else if (strcmp(optarg, "sha256") == 0)
        b->hash = KILN_EIF_SHA256;
      else if (strcmp(optarg, "sha512") == 0)
        b->hash = KILN_EIF_SHA512;
      else
        return kiln_cli_usage(cli, "--algo is sha256, sha384 or sha512, got \"%s\"", optarg);
      break;
    case O_PCRS: a->pcrs_out = optarg; break;
    default:
      return kiln_cli_usage(cli, "unknown or incomplete option \"%s\"", cli->argv[optind - 1]);
    }
  }
  if (optind < cli->argc)
    return kiln_cli_usage(cli, "unexpected argument \"%s\"", cli->argv[optind]);
  if (!b->kernel || !a->output || b->nramdisks == 0)
    return kiln_cli_usage(cli, "--kernel, --ramdisk and --output are required");
  if ((a->cert != NULL) != (a->key != NULL))
    return kiln_cli_usage(cli, "--signing-certificate and --private-key go together");
  return 0;
}

int kiln_cmd_eif_build(struct kiln_cli *cli)
{
  if (kiln_cli_wants_help(cli)) {
    fputs(usage, stdout);
    return KILN_EXIT_OK;
  }
  struct kiln_eif_build b;
  struct eif_build_args a;
  memset(&b, 0, sizeof b);
  memset(&a, 0, sizeof a);
  char *custom = NULL, *os = NULL, *kver = NULL;
  int code = 0;
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  if (sde && parse_time(sde, &b.metadata.build_time) != 0)
    return kiln_cli_usage(cli, "SOURCE_DATE_EPOCH must be a number of seconds, got \"%s\"", sde);
  b.metadata.build_tool = "kiln";
  b.metadata.build_tool_version = kiln_version();
  if ((code = parse_options(cli, &b, &a)))
    return code;
  b.signing_certificate = a.cert;
  b.private_key = a.key;
  b.ramdisks = a.ramdisks;
  struct kiln_error e = KILN_ERROR_INIT;
  if (a.config && kiln_eif_kernel_config_words(a.config, &os, &kver, &e) == KILN_OK) {
    if (!b.metadata.operating_system)
      b.metadata.operating_system = os;
    if (!b.metadata.kernel_version)
      b.metadata.kernel_version = kver;
  }
  if (!e.code && a.metadata_file) {
    if (kiln_read_file(a.metadata_file, 4096, &custom, NULL, &e) == KILN_OK)
      b.metadata.custom_json = custom;
    else
      kiln_error_prefix(&e, "--metadata (at most 4096 bytes of JSON)");
  }
  struct kiln_eif_pcrs pcrs;
  if (!e.code)
    kiln_eif_write(&b, a.output, &pcrs, &e);
  if (e.code) {
    code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    goto out;
  }
  cJSON *doc = kiln_eif_measurements_json(&pcrs);
  if (a.pcrs_out) {
    struct kiln_buf text = KILN_BUF_INIT;
    kiln_json_pretty_ordered(doc, &text);
    if (kiln_write_file_atomic(a.pcrs_out, kiln_buf_str(&text), text.len, 0644, &e) != KILN_OK)
      code = kiln_cli_fail_msg(cli, KILN_E_IO, "--pcrs-output: %s", kiln_error_msg(&e));
    kiln_buf_free(&text);
  }
  if (!code) {
    kiln_cli_print_json_ordered(doc);
    doc = NULL;
  }
  cJSON_Delete(doc);
out:
  kiln_error_clear(&e);
  free(custom);
  free(os);
  free(kver);
  return code;
}
