/* Kernel source debian-cloud:6.12: Debian's prebuilt cloud kernel plus the modules an enclave
 * needs, loaded by kiln-init in this order. Debian builds virtio_mmio without command-line device
 * discovery, so this kernel suits tests and qemu, not real enclaves (use debian-build there). */
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define CLOUD_UNAME KILN_DEBIAN_KERNEL_VERSION "-cloud-amd64"

static const char *const enclave_modules[][2] = {
    {"kernel/drivers/virtio/virtio_mmio.ko.xz", "virtio_mmio.ko.xz"},
    {"kernel/net/vmw_vsock/vsock.ko.xz", "vsock.ko.xz"},
    {"kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz",
     "vmw_vsock_virtio_transport_common.ko.xz"},
    {"kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz", "vmw_vsock_virtio_transport.ko.xz"},
    /* CID 1: in-enclave processes reach the agent's vsock services (the runtime's qemu tests) */
    {"kernel/net/vmw_vsock/vsock_loopback.ko.xz", "vsock_loopback.ko.xz"},
    {"kernel/drivers/misc/nsm.ko.xz", "nsm.ko.xz"},
    {"kernel/drivers/char/hw_random/virtio-rng.ko.xz", "virtio-rng.ko.xz"},
};
#define NMODULES (sizeof enclave_modules / sizeof *enclave_modules)

struct cloud_select {
  const char *out;
  int found[NMODULES + 2];
};

static char *select_member(void *arg, const char *member)
{
  struct cloud_select *s = arg;
  const char *m = strncmp(member, "./", 2) == 0 ? member + 2 : member;
  if (strcmp(m, "boot/vmlinuz-" CLOUD_UNAME) == 0) {
    s->found[NMODULES] = 1;
    return kiln_path_join(s->out, "bzImage");
  }
  if (strcmp(m, "boot/config-" CLOUD_UNAME) == 0) {
    s->found[NMODULES + 1] = 1;
    return kiln_path_join(s->out, "config");
  }
  static const char prefix[] = "lib/modules/" CLOUD_UNAME "/";
  if (strncmp(m, prefix, sizeof prefix - 1) != 0)
    return NULL;
  for (size_t i = 0; i < NMODULES; i++)
    if (strcmp(m + sizeof prefix - 1, enclave_modules[i][0]) == 0) {
      s->found[i] = 1;
      struct kiln_buf p = KILN_BUF_INIT;
      kiln_buf_printf(&p, "%s/modules/%s", s->out, enclave_modules[i][1]);
      return kiln_buf_detach(&p);
    }
  return NULL;
}

kiln_err kiln_kernel_debian_cloud(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                  const char *out_dir, struct kernel_result *r)
{
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_buf order = KILN_BUF_INIT;
  char *deb = NULL, *order_path = NULL;
  host->log(ctx, KILN_LOG_INFO, "fetching %s %s", KILN_DEBIAN_CLOUD_PACKAGE,
            KILN_DEBIAN_PACKAGE_VERSION);
  kiln_err rc =
      kiln_deb_fetch(ctx, host, KILN_DEBIAN_CLOUD_PACKAGE, KILN_DEBIAN_PACKAGE_VERSION, &deb, &err);
  char sha[KILN_SHA256_HEX_LEN + 1];
  if (!rc)
    rc = kiln_sha256_file(deb, sha, NULL, &err);
  struct cloud_select sel;
  memset(&sel, 0, sizeof sel);
  sel.out = out_dir;
  if (!rc)
    rc = kiln_deb_extract(deb, select_member, &sel, &err);
  for (size_t i = 0; !rc && i < NMODULES + 2; i++)
    if (!sel.found[i])
      rc = kiln_error_set(&err, KILN_E_INVALID, "%s has no %s", deb,
                          i < NMODULES ? enclave_modules[i][0] : "kernel image or config");
  for (size_t i = 0; !rc && i < NMODULES; i++)
    kiln_buf_printf(&order, "%s\n", enclave_modules[i][1]);
  if (!rc && (order_path = kiln_path_join(out_dir, "modules.order")))
    rc = kiln_write_file_atomic(order_path, order.data, order.len, 0644, &err);
  if (rc) {
    rc = host->fail(ctx, rc, "kernel debian-cloud:6.12: %s", kiln_error_msg(&err));
  } else {
    r->package = cJSON_CreateObject();
    cJSON_AddStringToObject(r->package, "name", KILN_DEBIAN_CLOUD_PACKAGE);
    cJSON_AddStringToObject(r->package, "version", KILN_DEBIAN_PACKAGE_VERSION);
    cJSON_AddStringToObject(r->package, "sha256", sha);
    r->meta = cJSON_CreateObject();
    cJSON_AddStringToObject(r->meta, "version", CLOUD_UNAME);
    cJSON_AddStringToObject(r->meta, "note",
                            "Debian's virtio_mmio lacks command-line device discovery: for tests "
                            "and qemu, not real enclaves (use debian-build:6.12 there)");
  }
  kiln_error_clear(&err);
  kiln_buf_free(&order);
  free(deb);
  free(order_path);
  return rc;
}
