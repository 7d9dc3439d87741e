/* The CLI's command and option table: every command's arguments, options and help text. */
#include "command_doc.h"

#include <string.h>

const struct kiln_cli_option kiln_cli_global_options[] = {
    {"-C", NULL, "DIR", "run as if started in the application directory DIR", "dir"},
    {"--json", NULL, NULL, "print exactly one JSON document on stdout (logs stay on stderr)", NULL},
    {"--verbose", "-v", NULL, "more logging (-vv: debug)", NULL},
    {"--quiet", "-q", NULL, "errors only", NULL},
    {"--no-cache", NULL, NULL, "run every stage even when its result is cached", NULL},
    {"--plugin-path", NULL, "P", "extra plugin directories or files, ':'-separated", "dir"},
    {"--version", NULL, NULL, "print kiln's version", NULL},
    {"--help", "-h", NULL, "show how to use kiln or the command", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

#define END_OPTIONS                                                                                \
  {                                                                                                \
    NULL, NULL, NULL, NULL, NULL                                                                   \
  }
#define OPT_REGION                                                                                 \
  {                                                                                                \
    "--region", NULL, "REGION",                                                                    \
        "AWS region (wins over AWS_REGION, the profile's and kiln.json's)", NULL                   \
  }
#define OPT_PROFILE                                                                                \
  {                                                                                                \
    "--profile", NULL, "NAME", "AWS profile (else AWS_PROFILE, else default)", NULL                \
  }
#define OPT_SET_STAGE                                                                              \
  {                                                                                                \
    "--set", NULL, "STAGE.KEY=VALUE",                                                              \
        "override a stage option, e.g. kernel.source=debian-cloud:6.12", NULL                      \
  }

static const struct kiln_cli_option build_options[] = {
    {"--output", "-o", "FILE", "write the EIF here instead of <app>/<name>.eif", "file"},
    {"--arch", NULL, "ARCH",
     "x86_64 or aarch64 (Graviton): the enclave's CPU architecture (default: kiln.json /arch)",
     "x86_64 aarch64"},
    OPT_SET_STAGE,
    END_OPTIONS};

static const struct kiln_cli_option describe_options[] = {
    {"--no-crc-check", NULL, NULL, "describe a file whose CRC does not match (CheckCRC false)",
     NULL},
    END_OPTIONS};

static const struct kiln_cli_option verify_options[] = {
    {"--pcrs", NULL, "EXPECTED.json", "compare with these PCRs instead of rebuilding", "file"},
    {"--reuse-cache", NULL, NULL,
     "rebuild with this machine's step cache instead of a fresh one (cached steps are not "
     "rebuilt; the result says so)",
     NULL},
    {"--attestation", NULL, "FILE|URL",
     "check a live enclave's attestation document (a file, or kiln-host's attestation URL)",
     "file"},
    {"--eif", NULL, "FILE.eif", "with --attestation: expect this EIF's PCRs instead of a rebuild",
     "file"},
    {"--root", NULL, "CA.pem", "with --attestation: trust this root instead of AWS's (announced)",
     "file"},
    {"--at", NULL, "TIME", "with --attestation: verification time, RFC 3339 (default now)", NULL},
    {"--max-skew", NULL, "DURATION",
     "with --attestation: how far the document's timestamp may be from that time (default 5m)",
     NULL},
    {"--nonce", NULL, "HEX", "with --attestation FILE: the nonce the document must echo", NULL},
    {"--timeout", NULL, "SECONDS", "with --attestation URL: seconds to wait (default 10)", NULL},
    {"--allow-debug", NULL, NULL, "with --attestation: accept a debug-mode enclave (all-zero PCRs)",
     NULL},
    END_OPTIONS};

static const struct kiln_cli_option eif_build_options[] = {
    {"--kernel", NULL, "FILE", "the kernel image (bzImage; Image on aarch64); required", "file"},
    {"--kernel_config", NULL, "FILE",
     "the kernel's .config: OperatingSystem and KernelVersion come from its third line", "file"},
    {"--cmdline", NULL, "TEXT", "the kernel command line", NULL},
    {"--ramdisk", NULL, "FILE",
     "a ramdisk, repeatable (required): the first is the bootstrap one (PCR1), the rest the "
     "application (PCR2)",
     "file"},
    {"--output", NULL, "FILE", "where to write the EIF; required", "file"},
    {"--signing-certificate", NULL, "CERT.pem", "sign with this certificate (sets PCR8)", "file"},
    {"--private-key", NULL, "KEY.pem", "the certificate's P-384 private key", "file"},
    {"--name", NULL, "NAME", "ImageName in the metadata (default: the kernel file's name)", NULL},
    {"--version", NULL, "VERSION", "ImageVersion in the metadata (default 1.0)", NULL},
    {"--metadata", NULL, "FILE.json", "CustomMetadata: a JSON file of at most 4096 bytes", "file"},
    {"--arch", NULL, "ARCH", "x86_64 (default) or aarch64", "x86_64 aarch64"},
    {"--build-time", NULL, "TIME",
     "BuildTime: RFC 3339 or seconds (else SOURCE_DATE_EPOCH, else 0)", NULL},
    {"--build-tool", NULL, "NAME", "BuildTool in the metadata (default kiln)", NULL},
    {"--build-tool-version", NULL, "VERSION", "BuildToolVersion (default kiln's version)", NULL},
    {"--img-os", NULL, "OS", "OperatingSystem in the metadata (default: from --kernel_config)",
     NULL},
    {"--img-kernel", NULL, "KERNEL",
     "KernelVersion in the metadata (default: from --kernel_config)", NULL},
    {"--algo", NULL, "HASH", "measurement hash: sha384 (default), sha256 or sha512",
     "sha384 sha256 sha512"},
    {"--sha256", NULL, NULL, "eif_build's spelling of --algo sha256", NULL},
    {"--sha384", NULL, NULL, "eif_build's spelling of --algo sha384", NULL},
    {"--sha512", NULL, NULL, "eif_build's spelling of --algo sha512", NULL},
    {"--pcrs-output", NULL, "FILE", "also write the measurements JSON to FILE", "file"},
    END_OPTIONS};

static const struct kiln_cli_option sign_options[] = {
    {"--key", NULL, "KEY.pem", "the P-384 private key; required", "file"},
    {"--cert", NULL, "CERT.pem", "the certificate to embed (defines PCR8); required", "file"},
    {"--output", "-o", "OUT.eif", "write the signed EIF here instead of in place", "file"},
    END_OPTIONS};

static const struct kiln_cli_option image_options[] = {
    {"--output", "-o", "FILE", "where to write the cpio (default rootfs.cpio)", "file"},
    {"--platform", NULL, "OS/ARCH",
     "which image of a multi-platform index (default: kiln.json /arch's)", NULL},
    {"--cmd-mode", NULL, "MODE", "docker (ENTRYPOINT + CMD) or nitro-cli (CMD else ENTRYPOINT)",
     "docker nitro-cli"},
    {"--insecure-registry", NULL, "HOST", "allow plain HTTP to this registry, repeatable", NULL},
    {"--set", NULL, "KEY=VALUE", "override an image stage option", NULL},
    END_OPTIONS};

static const struct kiln_cli_option size_options[] = {
    {"--cpus", NULL, "N", "enclave vCPUs (default kiln.json /enclave/cpus, else 2)", NULL},
    {"--memory", NULL, "SIZE", "enclave memory: 512M, 14G, or MiB (default 1024)", NULL},
    {"--family", NULL, "F[,F...]", "only these instance families, e.g. m5,c6i", NULL},
    {"--arch", NULL, "ARCH", "x86_64 or aarch64", "x86_64 aarch64"},
    {"--eif", NULL, "FILE", "raise memory to at least 4x this EIF's size", "file"},
    {"--catalogue", NULL, "FILE", "another instance catalogue (JSON like share's)", "file"},
    END_OPTIONS};

static const struct kiln_cli_option upload_options[] = {
    {"--part-size", NULL, "MIB", "part size in MiB (default 16; 5 to 5120)", NULL},
    {"--parallel", NULL, "N", "parts in flight at once (default 8; 1 to 64)", NULL},
    {"--resumable", NULL, NULL, "keep a failed upload for a later resume instead of aborting it",
     NULL},
    OPT_REGION,
    OPT_PROFILE,
    END_OPTIONS};

static const struct kiln_cli_option plan_options[] = {
    {"--action", NULL, "ACTION", "plan deploy (default), setup or teardown",
     "deploy setup teardown"},
    {"--eif", NULL, "FILE", "plan deploying this prebuilt EIF", "file"},
    OPT_REGION,
    OPT_PROFILE,
    OPT_SET_STAGE,
    END_OPTIONS};

static const struct kiln_cli_option setup_options[] = {
    {"--credentials-file", NULL, "FILE",
     "write the deploy user's new access key here (0600, KEY=VALUE lines; never printed)", "file"},
    {"--github-repo", NULL, "OWNER/REPO",
     "also a deploy role only GitHub Actions of OWNER/REPO can assume (OIDC); with one of "
     "--github-ref, --github-environment, --ci-any-ref",
     NULL},
    {"--github-ref", NULL, "REF",
     "trust only this ref's jobs, e.g. refs/heads/main (token sub repo:OWNER/REPO:ref:REF)", NULL},
    {"--github-environment", NULL, "NAME",
     "trust only jobs of this GitHub environment (sub repo:OWNER/REPO:environment:NAME; "
     "recommended, with required reviewers)",
     NULL},
    {"--gitlab-project", NULL, "GROUP/PROJECT",
     "the same for GitLab CI jobs of this project; with --gitlab-ref or --ci-any-ref", NULL},
    {"--gitlab-ref", NULL, "REF", "trust only jobs of this branch (or tag) of the project", NULL},
    {"--gitlab-ref-type", NULL, "TYPE", "branch (default) or tag: what --gitlab-ref names", NULL},
    {"--gitlab-url", NULL, "URL", "the GitLab instance (default https://gitlab.com)", NULL},
    {"--ci-any-ref", NULL, NULL,
     "trust every branch, tag and pull request of the repository/project (repo:OWNER/REPO:*)",
     NULL},
    {"--print-policy", NULL, NULL, "print the scoped deploy policy and change nothing", NULL},
    OPT_REGION,
    OPT_PROFILE,
    OPT_SET_STAGE,
    END_OPTIONS};

static const struct kiln_cli_option deploy_options[] = {
    {"--eif", NULL, "FILE", "deploy this prebuilt EIF (or \"eif\": \"FILE\" in kiln.json)", "file"},
    OPT_REGION,
    OPT_PROFILE,
    OPT_SET_STAGE,
    END_OPTIONS};

static const struct kiln_cli_option aws_options[] = {OPT_REGION, OPT_PROFILE, OPT_SET_STAGE,
                                                     END_OPTIONS};

static const struct kiln_cli_option status_options[] = {
    OPT_REGION,
    OPT_PROFILE,
    OPT_SET_STAGE,
    {"--attestation-root", NULL, "CA.pem",
     "tests and forensics only: trust this root instead of AWS's for the attestation lines "
     "(announced)",
     "file"},
    END_OPTIONS};

static const struct kiln_cli_option logs_options[] = {
    {"--follow", "-f", NULL, "keep reading: poll for new events until Ctrl-C (each printed once)",
     NULL},
    {"--since", NULL, "WHEN",
     "start at this duration before now (90s, 10m, 2h, 1d) or RFC 3339 time (default 10m)", NULL},
    {"--instance", NULL, "ID", "only this instance's stream (its instance id)", NULL},
    OPT_REGION,
    OPT_PROFILE,
    END_OPTIONS};

static const struct kiln_cli_option rollback_options[] = {
    {"--to", NULL, "VERSION",
     "the launch template version to return to (default: the one before the running version)",
     NULL},
    OPT_REGION,
    OPT_PROFILE,
    OPT_SET_STAGE,
    END_OPTIONS};

static const struct kiln_cli_option teardown_options[] = {
    {"--yes", NULL, NULL, "do not ask (needed when stdin is not a terminal)", NULL},
    {"--delete-bucket", NULL, NULL, "also delete the EIF bucket and its EIFs", NULL},
    OPT_REGION,
    OPT_PROFILE,
    OPT_SET_STAGE,
    END_OPTIONS};

static const struct kiln_cli_option diff_options[] = {
    {"--max-paths", NULL, "N", "list at most N differing paths per ramdisk (default 1000)", NULL},
    END_OPTIONS};

static const struct kiln_cli_option run_local_options[] = {
    {"--eif", NULL, "FILE", "boot this EIF instead of the app's (kiln.json is then optional)",
     "file"},
    {"--cpus", NULL, "N", "virtual CPUs (default: /enclave/cpus, else 2)", NULL},
    {"--memory", NULL, "SIZE", "memory, e.g. 512M or 2G (default: /enclave/memory_mib, else 512M)",
     NULL},
    {"--qemu", NULL, "PATH", "the qemu-system-x86_64 to use (default: from $PATH)", "file"},
    {"--timeout", NULL, "SECONDS", "power the VM off after SECONDS and fail", NULL},
    END_OPTIONS};

static const struct kiln_cli_option run_options[] = {
    {"--set", NULL, "KEY=VALUE", "override one of the stage's options (JSON when it parses)", NULL},
    {"--input", NULL, "KIND=FILE", "give FILE, read in place, as the stage's input of KIND (eif)",
     "file"},
    END_OPTIONS};

static const struct kiln_cli_option init_options[] = {
    {"--image", NULL, "SOURCE", "the container image to build from", NULL},
    {"--name", NULL, "NAME", "the app's name (default: the directory's)", NULL},
    END_OPTIONS};

static const struct kiln_cli_option help_options[] = {
    {"--man", NULL, NULL, "print the man page kiln.1 (roff)", NULL},
    {"--completion", NULL, "SHELL", "print the completion script for bash or zsh", "bash zsh"},
    END_OPTIONS};

static const struct kiln_cli_option no_options[] = {END_OPTIONS};

static const struct kiln_cli_doc docs[] = {
    {"build", NULL,
     "Builds the application's enclave image from kiln.json: the image stage turns the container\n"
     "image into the application ramdisk, the kernel stage provides the enclave kernel (the\n"
     "default, debian-build:6.12, compiles Debian's linux-source once: about 10 minutes on 2\n"
     "cores, then cached), and the eif stage assembles the EIF with kiln's init. Unchanged inputs\n"
     "are cache hits and give a bit-identical EIF; kiln.lock records what was resolved.\n"
     "\n"
     "Writes <app>/<name>.eif (or -o FILE) and prints PCR0, PCR1 and PCR2.\n"
     "\n"
     "Examples:\n"
     "  kiln build\n"
     "  kiln -C examples/hello build -o /tmp/hello.eif --json\n"
     "  kiln build --set kernel.source=debian-cloud:6.12\n",
     build_options},
    {"describe", "FILE.eif",
     "Validates the EIF (magic, version, section table, CRC) and recomputes its measurements\n"
     "while reading it once. --json prints nitro-cli describe-eif's document (EifVersion,\n"
     "Measurements, IsSigned, CheckCRC, ImageName, ImageVersion, Metadata). A damaged file is an\n"
     "error; --no-crc-check describes it anyway and reports CheckCRC false.\n"
     "\n"
     "Examples:\n"
     "  kiln describe hello.eif\n"
     "  kiln describe hello.eif --json | jq -r .Measurements.PCR0\n",
     describe_options},
    {"verify", "[FILE.eif]",
     "Without --pcrs: rebuilds the app (kiln.json, pinned by kiln.lock) in a fresh temporary\n"
     "cache, so no step comes from this machine's earlier outputs (only downloads pinned by\n"
     "sha256 are reused; --reuse-cache uses the step cache instead and says so), and checks that\n"
     "FILE has exactly the rebuilt bytes and PCRs. When they differ it names the first differing\n"
     "EIF section (kernel, bootstrap ramdisk = init and kiln-agent, application ramdisk = rootfs)\n"
     "and paths, and the toolchain of the build and of the rebuild (kiln.lock records it; the\n"
     "host toolchain makes PCRs depend on the machine). -v or --json count the steps rebuilt.\n"
     "With --pcrs: reads FILE, recomputes its measurements and compares PCR0/1/2 (and PCR8 when\n"
     "present) with EXPECTED.json, in nitro-cli's form ({\"Measurements\": {...}} or the inner\n"
     "object), e.g. values from an attestation document.\n"
     "\n"
     "With --attestation FILE|URL (no FILE.eif): proves that a live enclave runs the EIF. A URL\n"
     "(kiln-host's attestation port) is fetched with a fresh random nonce (GET URL?nonce=HEX); a\n"
     "FILE holds a document (CBOR or base64). Checks, one line each: the certificate chain from\n"
     "the document's leaf through its cabundle to the pinned AWS Nitro root\n"
     "(share/kiln/attestation; cabundle[0] is never trusted on its own), every certificate valid\n"
     "at the verification time, CA and key usage constraints, the COSE ES384 signature, the\n"
     "timestamp within --max-skew of that time, the nonce (URL, or --nonce for a FILE), no debug\n"
     "mode (all-zero PCRs fail unless --allow-debug), and PCR0/1/2 (+PCR8 when the EIF is\n"
     "signed) against the expected PCRs: rebuilt from kiln.json + kiln.lock by default, or\n"
     "--pcrs FILE, or --eif FILE.\n"
     "Exit status 0 when everything matches, 1 with the differing values otherwise; --json gives\n"
     "every check with its result.\n"
     "\n"
     "Examples:\n"
     "  kiln verify hello.eif\n"
     "  kiln verify hello.eif --pcrs expected-pcrs.json\n"
     "  kiln verify --attestation http://203.0.113.7:7443/attestation\n"
     "  kiln verify --attestation doc.cbor --eif hello.eif --at 2022-11-09T23:00:00Z\n"
     "\n"
     "  $ kiln verify --attestation http://203.0.113.7:7443/attestation --pcrs expected.json\n"
     "  ok      chain            CN=i-0abc...-enc0123.eu-west-1.aws -> 3 intermediate(s) -> ...\n"
     "  ok      signature        COSE_Sign1 ES384 verifies with the leaf certificate's key\n"
     "  ok      nonce            the document echoes the nonce sent\n"
     "  FAIL    PCR0             differs from the expected value\n"
     "                           expected 8a1b...  actual 22f9...\n",
     verify_options},
    {"diff", "A.eif B.eif",
     "Compares two EIFs section by section (size and SHA-256) and names the first section that\n"
     "differs. Ramdisks that differ are read as cpio archives and compared path by path: a path\n"
     "is listed when it exists on one side only, or its type, content (size, SHA-256), mode,\n"
     "owner or link target differ. Use it to find what makes two builds of the same app differ:\n"
     "typical culprits are build timestamps, package-manager caches and logs, .pyc files and\n"
     "build ids. Up to N paths per ramdisk are listed (default 1000; the count is always total).\n"
     "Exit status 0 when the files are identical, 1 when they differ (or on an error).\n"
     "\n"
     "Examples:\n"
     "  kiln diff hello.eif /tmp/rebuilt/hello.eif\n"
     "  kiln diff a.eif b.eif --json | jq '.ramdisks[].paths[].path'\n",
     diff_options},
    {"eif-build", NULL,
     "Takes the flags of AWS's eif_build, so existing pipelines can swap it in; every option\n"
     "after the command is eif-build's own (--version is the image's version: `kiln --version`\n"
     "prints kiln's). The first --ramdisk is the bootstrap ramdisk (PCR1), the others the\n"
     "application (PCR2). The output is bit-for-bit reproducible: the build time comes from\n"
     "--build-time (RFC 3339 or seconds), else SOURCE_DATE_EPOCH, else 0\n"
     "(1970-01-01T00:00:00+00:00). Prints the measurements as nitro-cli does:\n"
     "{\"Measurements\": {\"HashAlgorithm\": ..., \"PCR0\": ..., ...}}.\n"
     "\n"
     "Example:\n"
     "  kiln eif-build --kernel bzImage --kernel_config bzImage.config \\\n"
     "    --cmdline \"$(cat cmdline)\" --ramdisk bootstrap.cpio --ramdisk app.cpio \\\n"
     "    --name app --version 2.1 --output app.eif --pcrs-output app.pcrs.json\n",
     eif_build_options},
    {"sign", "FILE.eif",
     "Adds (or replaces) the EIF's signature: a COSE_Sign1 ES384 signature over PCR0 with the\n"
     "P-384 KEY, and CERT embedded, which defines PCR8. Kernel, cmdline, metadata and ramdisks\n"
     "are kept byte for byte, so PCR0, PCR1 and PCR2 do not change. Writes FILE in place (via a\n"
     "temporary file) unless -o is given. Prints the measurements, PCR8 included.\n"
     "\n"
     "Example:\n"
     "  openssl ecparam -name secp384r1 -genkey -noout -out key.pem\n"
     "  openssl req -new -x509 -key key.pem -out cert.pem -days 365 -subj /CN=release\n"
     "  kiln sign hello.eif --key key.pem --cert cert.pem\n",
     sign_options},
    {"image", "[SOURCE]",
     "Turns a container image into the enclave's application ramdisk: a deterministic newc cpio\n"
     "holding rootfs/ (the flattened image), cmd, env and kiln-run. No Docker daemon is needed\n"
     "except for docker-daemon: sources. SOURCE defaults to kiln.json's /image/source.\n"
     "\n"
     "Sources:\n"
     "  docker-daemon:NAME[:TAG]             an image in the local Docker (or podman) daemon\n"
     "  docker-archive:FILE[:NAME:TAG]       a `docker save` tarball\n"
     "  oci:DIR[:REF]  oci-archive:FILE[:REF] an OCI image layout (directory or tar)\n"
     "  docker://[REGISTRY/]REPO[:TAG|@DIGEST] a registry (credentials from "
     "~/.docker/config.json)\n"
     "  dir:PATH                             a directory tree (command from /enclave/cmd)\n"
     "\n"
     "Registries are reached over HTTPS; plain HTTP only for loopback hosts and the hosts given\n"
     "with --insecure-registry.\n"
     "\n"
     "Output: the image digest, argv, env, entry count and size; -o defaults to rootfs.cpio.\n"
     "\n"
     "Examples:\n"
     "  kiln image docker://alpine:3.20 -o rootfs.cpio\n"
     "  kiln image docker-archive:app.tar --platform linux/arm64 --json\n"
     "  kiln image oci:build/oci:v1 --cmd-mode nitro-cli   (CMD else ENTRYPOINT, like nitro-cli)\n"
     "  SOURCE_DATE_EPOCH=1700000000 kiln image dir:out -o rootfs.cpio\n"
     "  kiln image docker://registry.lan:5000/app:1 --insecure-registry registry.lan:5000\n",
     image_options},
    {"size", NULL,
     "Chooses the cheapest EC2 instance type that can host an enclave of N vCPUs and SIZE\n"
     "memory, from kiln's catalogue (share/kiln/instance-types.json: on-demand prices with\n"
     "their source and date). The parent instance keeps CPU 0's core (2 vCPUs with SMT) and\n"
     "2 GiB; enclave CPUs are whole cores; types with fewer than 4 vCPUs cannot run enclaves.\n"
     "With --eif, memory is raised to at least 4x the EIF's size (nitro-cli error E26).\n"
     "SIZE: 512M, 14G, 14GiB, or a plain number of MiB. Defaults: kiln.json /enclave, else\n"
     "2 CPUs and 1024 MiB.\n"
     "\n"
     "Output: the instance type, the enclave's CPUs and memory, the values for\n"
     "/etc/nitro_enclaves/allocator.yaml, and the runner-up.\n"
     "\n"
     "Examples:\n"
     "  kiln size --cpus 2 --memory 14G --family m5      -> m5.xlarge\n"
     "  kiln size --cpus 6 --memory 30G --family m5 --json\n"
     "  kiln size --cpus 4 --memory 8G --arch aarch64\n"
     "  kiln size --eif app.eif                          (size for this EIF)\n",
     size_options},
    {"upload", "FILE s3://BUCKET[/KEY]",
     "Upload FILE to S3 the way `kiln deploy` uploads EIFs: nothing is sent when the object\n"
     "already holds the same bytes (its SHA-256 for content-addressed keys, else its CRC32C\n"
     "checksums as S3 reports them); files above one part go up as a parallel multipart upload\n"
     "with a CRC32C checksum per part, read straight from the file. An interrupted upload\n"
     "(Ctrl-C, kill, network loss) resumes when the same command runs again and sends only the\n"
     "missing parts; other failures abort the upload unless --resumable keeps it (`kiln status`\n"
     "lists kept uploads).\n"
     "\n"
     "Without KEY (or with KEY ending in '/'), the key is content-addressed:\n"
     "  [KEY]eifs/<FILE name without .eif>/<sha256>.eif\n"
     "\n"
     "Credentials, region and endpoint come from the usual AWS settings (AWS_ACCESS_KEY_ID...,\n"
     "AWS_PROFILE, web identity, container or instance credentials; AWS_ENDPOINT_URL_S3).\n"
     "\n"
     "Examples:\n"
     "  kiln upload app.eif s3://my-eifs/                 (content-addressed key)\n"
     "  kiln upload app.eif s3://my-eifs/releases/v1.eif --parallel 16\n"
     "  AWS_ENDPOINT_URL=http://127.0.0.1:9000 kiln upload big.bin s3://test/big.bin --json\n",
     upload_options},
    {"plan", NULL,
     "Resolve everything `kiln deploy` would do (or `kiln setup`, `kiln teardown` with --action)\n"
     "and list each AWS change as create / update / delete, or nothing when a resource is up to\n"
     "date. Only read-only AWS calls are made. After setup and deploy with nothing changed, the\n"
     "plan says \"nothing to do\".\n"
     "\n"
     "Examples:\n"
     "  kiln plan                       (what the next deploy changes)\n"
     "  kiln plan --action setup        (what setup would create in a fresh account)\n"
     "  kiln plan --json\n",
     plan_options},
    {"setup", NULL,
     "Create (or complete) the deployment's environment in your AWS account, every resource\n"
     "tagged caution:deployment-id=<id>: a VPC with one public subnet per zone (up to 3),\n"
     "internet gateway and routes, a security group with /aws/ports open, the EIF bucket\n"
     "(private, versioned, encrypted, incomplete uploads aborted), the instance role and\n"
     "profile, and a deploy user whose policy only reaches this deployment's resources.\n"
     "A new deployment id is written to the app's .env (DEPLOYMENT_ID=...). Running setup\n"
     "again changes nothing that is already right. Needs broad (admin-like) credentials once;\n"
     "`kiln deploy` then runs with the scoped ones. --json prints the ids (deployment_id, VPC,\n"
     "subnets, bucket, roles).\n"
     "With /aws/count > 1 (or /aws/load_balancer \"nlb\") setup also makes a Network Load\n"
     "Balancer across the subnets with one TCP listener per public port, a target group per port\n"
     "(TCP health checks, or HTTP on /aws/health_path), and attaches the Auto Scaling group with\n"
     "ELB health checks; /aws/static_addresses gives it one Elastic IP per zone. Switching back\n"
     "to \"eip\" deletes them again.\n"
     "\n"
     "Examples:\n"
     "  kiln setup --credentials-file kiln-deploy.env\n"
     "  kiln setup --github-repo my-org/my-app --github-environment production\n"
     "                                             # then AWS_ROLE_ARN=<CI deploy role> in CI\n",
     setup_options},
    {"deploy", NULL,
     "Build the app's EIF (cache hits when nothing changed), size the instance (memory at least\n"
     "4x the EIF, plus the host's reserve), upload the EIF to the deployment's bucket, write a "
     "new\n"
     "launch template version (Nitro Enclaves on, user data that fetches the EIF, checks its\n"
     "SHA-256 and runs it), point the Auto Scaling group at it with a rolling instance refresh,\n"
     "and keep the Elastic IP on a serving instance. Nothing changes when nothing differs.\n"
     "The refresh keeps capacity (MinHealthyPercentage 100, a warm-up): new instances must pass\n"
     "the health checks before old ones go; deploy waits, showing instances healthy / total,\n"
     "and a failed refresh ends back at the previous version (AWS's auto-rollback, or kiln's).\n"
     "/aws/count sets the instances (0 parks the deployment).\n"
     "--json prints the deployment (ids, EIF key and digest, PCRs, instances, EIP).\n"
     "\n"
     "Run it with the scoped credentials `kiln setup` wrote; it is the whole CI job:\n"
     "  set -a; . ./kiln-deploy.env; set +a; kiln deploy --json\n"
     "\n"
     "See also: kiln plan (what deploy would change), kiln status, kiln teardown.\n",
     deploy_options},
    {"status", NULL,
     "Show the deployment's resources found by their tag: network, bucket, roles, the launch\n"
     "template's newest version, the Auto Scaling group's instances and refresh, the Elastic IP,\n"
     "the log group, and incomplete multipart uploads in the bucket (left by interrupted\n"
     "uploads).\n"
     "\n"
     "When kiln.json sets /enclave/attestation_port, each instance's enclave is asked for an\n"
     "attestation document at http://<public address>:<port>/attestation with a fresh nonce\n"
     "(3 s timeout), verified like `kiln verify --attestation` against the PCRs recorded with the\n"
     "release the instance runs: \"attested: PCRs match build <EIF>\", or the failing check, or\n"
     "\"unreachable\". --json adds them as \"attestation\": [{instance, address, attested, "
     "result,\n"
     "failed_checks}].\n",
     status_options},
    {"logs", NULL,
     "Print the enclave's output (the app's stdout and stderr and kiln-init's lines, as kiln-host\n"
     "writes them to /var/log/kiln/app.log on each instance) from the CloudWatch Logs group\n"
     "/kiln/<deployment id>, where each instance's CloudWatch agent ships it (one stream per\n"
     "instance id). One line per event: the instance id, then the record. Reads with the scoped\n"
     "deploy credentials (their policy may read this group only); a deployment set up by an\n"
     "older kiln needs `kiln setup` (creates the group) and `kiln update-policy` once.\n"
     "--follow polls every 2 s (slower while CloudWatch throttles) and never prints an event\n"
     "twice. --json prints {log_group, since, events: [{time, instance, message, event_id}]};\n"
     "with --follow, one such event object per line.\n"
     "\n"
     "Examples:\n"
     "  kiln logs --since 1h\n"
     "  kiln logs --follow --instance i-0123456789abcdef0\n",
     logs_options},
    {"rollback", NULL,
     "Return the deployment's instances to an earlier release: the launch template's default\n"
     "version and the Auto Scaling group go back to VERSION (default: the version before the\n"
     "running one), and an instance refresh with MinHealthyPercentage 100 replaces the instances,\n"
     "new ones first, waiting until they pass the health checks. A refresh still running is\n"
     "rolled back by AWS (RollbackInstanceRefresh). Works with the scoped deploy credentials.\n"
     "`kiln deploy` rolls back by itself when a refresh fails.\n"
     "\n"
     "Examples:\n"
     "  kiln rollback              the version before the running one\n"
     "  kiln rollback --to 4       launch template version 4 (`kiln status` lists versions)\n",
     rollback_options},
    {"update-policy", NULL,
     "Render the deploy user's tag-scoped policy from share/policies for the existing deployment\n"
     "(DEPLOYMENT_ID / VPC_ID from the environment, .env or kiln.json), show the difference to\n"
     "the attached one, and replace it when it differs. Needs IAM rights (like setup).\n",
     aws_options},
    {"teardown", NULL,
     "Delete every resource tagged with the deployment id, in dependency order: Auto Scaling\n"
     "group and instances, launch template, Elastic IP, security group, subnets, route table,\n"
     "internet gateway, the VPC (not one given by VPC_ID), the instance role and profile and\n"
     "the deploy user. The bucket and its EIFs stay unless --delete-bucket. Resources without\n"
     "the tag are never touched. Safe to run again. Asks first on a terminal; elsewhere it needs\n"
     "--yes.\n"
     "\n"
     "Example:\n"
     "  kiln teardown --yes --delete-bucket\n",
     teardown_options},
    {"run-local", NULL,
     "Boots the application's enclave image on this machine in qemu (microvm, the machine closest\n"
     "to a Nitro enclave: no PCI, virtio-mmio devices announced on the kernel command line), with\n"
     "the enclave's CPUs and memory from kiln.json /enclave (default 2 CPUs, 512 MiB). The serial\n"
     "console streams to stdout: kiln-init's lines and the application's output. kiln run-local\n"
     "exits with the application's exit status (128+N when a signal N killed it, 1 when\n"
     "kiln-init failed). Ctrl-C powers the VM off and exits 130.\n"
     "\n"
     "Without --eif it boots <app>/<name>.eif, building it first the way `kiln build` does when\n"
     "it is missing or out of date (cached stages make that quick). It uses KVM when /dev/kvm\n"
     "works, else qemu's emulator (slower). Where /dev/vhost-vsock exists (modprobe vhost_vsock)\n"
     "the VM gets a vsock device (enclave CID 16) and kiln-host runs beside it as on the parent\n"
     "instance: each port of /enclave/ports listens on 127.0.0.1, egress follows\n"
     "/enclave/egress, the app's log records go to stderr. Without it the run is console-only.\n"
     "With --json the console goes to stderr and stdout has {exit_status, console_lines, seconds,\n"
     "vsock}. Needs qemu: sudo apt-get install qemu-system-x86\n"
     "\n"
     "Examples:\n"
     "  kiln run-local                         build if needed, boot, exit with the app's status\n"
     "  kiln -C share/examples/hello run-local --memory 1G\n"
     "  kiln run-local --eif hello.eif --timeout 60 --json\n"
     "  curl localhost:8080                    (with vhost-vsock: the app's port 8080)\n",
     run_local_options},
    {"run", "STAGE",
     "Runs one stage on its own, with its options from the kiln.json section named like the\n"
     "stage, overridden by --set (values are JSON when they parse as JSON, else strings;\n"
     "nested keys use dots). --input gives a file as the stage's input of KIND (e.g. eif),\n"
     "read in place. The result is cached like any pipeline step.\n"
     "\n"
     "Examples:\n"
     "  kiln run size --set cpus=6 --set memory_mib=30720\n"
     "  kiln run kernel --set source=debian-cloud:6.12\n"
     "  kiln run image --set source=oci:./layout:latest --json\n"
     "  kiln run s3 --input eif=app.eif --set bucket=my-eifs\n",
     run_options},
    {"plugins", NULL,
     "Lists every plugin kiln loaded (search order: --plugin-path, $KILN_PLUGIN_PATH,\n"
     "<app>/.kiln/plugins, the installed lib/kiln/plugins, then kiln.json /plugins) with\n"
     "each stage's summary and the artifact kinds it consumes and produces.\n"
     "\n"
     "Examples:\n"
     "  kiln plugins\n"
     "  kiln plugins --json | jq '.plugins[].stages[].name'\n",
     no_options},
    {"init", NULL,
     "Writes kiln.json in the application directory (-C DIR, default: here) with every section\n"
     "filled with a working example value, so you can edit rather than look things up.\n"
     "It refuses to overwrite an existing kiln.json.\n"
     "\n"
     "Image sources: docker-daemon:NAME[:TAG], docker-archive:FILE, oci:DIR[:REF],\n"
     "oci-archive:FILE[:REF], docker://REGISTRY/REPO[:TAG|@DIGEST], dir:PATH.\n"
     "Default: when a Dockerfile is present, {\"build\": \".\"}: kiln build runs the Dockerfile\n"
     "on the Docker daemon itself (no docker build first); else dir:rootfs.\n"
     "\n"
     "Examples:\n"
     "  kiln init\n"
     "  kiln init --image docker://ghcr.io/acme/api:1.4 --name api\n",
     init_options},
    {"help", "[COMMAND]",
     "Without COMMAND: the overview of every command. With it: how that command works (the same\n"
     "as `kiln COMMAND --help`). --json prints the whole command and option table; --man and\n"
     "--completion print what `cmake --install` installs as kiln.1 and the shell completions.\n"
     "\n"
     "Examples:\n"
     "  kiln help eif-build\n"
     "  kiln help --completion bash > ~/.local/share/bash-completion/completions/kiln\n",
     help_options},
    {"version", NULL,
     "Prints kiln's version (the same as `kiln --version`; with --json as {\"version\": ...}).\n",
     no_options},
    {NULL, NULL, NULL, NULL}};

const struct kiln_cli_doc *kiln_cli_doc_find(const char *name)
{
  for (const struct kiln_cli_doc *d = docs; d->name; d++)
    if (strcmp(d->name, name) == 0)
      return d;
  return NULL;
}

const struct kiln_cli_option *kiln_cli_doc_option(const struct kiln_cli_doc *doc, const char *arg,
                                                  int *inline_value)
{
  *inline_value = 0;
  for (const struct kiln_cli_option *o = doc ? doc->options : NULL; o && o->name; o++) {
    const char *spellings[] = {o->name, o->alias};
    for (int s = 0; s < 2; s++) {
      size_t n = spellings[s] ? strlen(spellings[s]) : 0;
      if (!n || strncmp(arg, spellings[s], n) != 0)
        continue;
      if (arg[n] == '\0')
        return o;
      if (arg[n] == '=' && o->value && n > 2) {
        *inline_value = 1;
        return o;
      }
    }
  }
  return NULL;
}
