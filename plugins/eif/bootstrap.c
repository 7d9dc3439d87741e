/* The bootstrap ramdisk: `dev/`, `init`, `kiln-agent` and `kiln-agent.conf` (kiln's init only),
 * `modules/<file>` for each module in load order, and `modules.order` listing them, written with
 * kiln_cpio in sorted order with fixed metadata. */
#include "bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln_cpio.h"
#include "util/buf.h"
#include "util/fs.h"

struct cpio_sink {
  struct kiln_cpio *c;
  struct kiln_error *err;
};

static kiln_err write_to_cpio(void *arg, const void *data, size_t len)
{
  struct cpio_sink *s = arg;
  return kiln_cpio_write_data(s->c, data, len, s->err);
}

/* Add one file entry streamed from path. */
static kiln_err add_file(struct kiln_cpio *c, const char *name, const char *path, uint32_t perm,
                         struct kiln_error *err)
{
  struct stat st;
  int fd = kiln_open_regular(path, &st, err);
  if (fd < 0)
    return err->code;
  kiln_err rc = kiln_cpio_add_file(c, name, perm, 0, 0, (uint64_t)st.st_size, err);
  struct cpio_sink sink = {c, err};
  if (!rc)
    rc = kiln_read_stream(fd, path, write_to_cpio, &sink, err);
  close(fd);
  return rc;
}

static int compare_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Module file names from the order file, validated (plain names, present in modules_dir). */
static kiln_err read_order(const char *modules_dir, const char *order_path, char ***names,
                           size_t *count, char **order_text, struct kiln_error *err)
{
  *names = NULL;
  *count = 0;
  *order_text = NULL;
  if (!order_path || !kiln_path_exists(order_path))
    return KILN_OK;
  kiln_err rc = kiln_read_file(order_path, 1u << 20, order_text, NULL, err);
  if (rc)
    return rc;
  char *copy = strdup(*order_text);
  if (!copy)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  char *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
    if (!*line)
      continue;
    if (strchr(line, '/') || strcmp(line, ".") == 0 || strcmp(line, "..") == 0) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "%s: \"%s\" must be a plain file name in the modules directory",
                          order_path, line);
      break;
    }
    char *p = modules_dir ? kiln_path_join(modules_dir, line) : NULL;
    if (!p || !kiln_path_exists(p))
      rc = kiln_error_set(err, KILN_E_NOT_FOUND, "%s lists %s, which is not in %s", order_path,
                          line, modules_dir ? modules_dir : "(no modules directory)");
    free(p);
    char **grown = rc ? NULL : realloc(*names, (*count + 1) * sizeof **names);
    if (!rc && (!grown || !(grown[*count] = strdup(line))))
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    if (grown)
      *names = grown;
    if (!rc)
      (*count)++;
  }
  free(copy);
  return rc;
}

/* kiln-agent and its configuration, right after init. */
static kiln_err add_agent(struct kiln_cpio *c, const struct kiln_bootstrap *b,
                          struct kiln_error *err)
{
  if (!b->agent_path)
    return KILN_OK;
  kiln_err rc = add_file(c, "kiln-agent", b->agent_path, 0755, err);
  size_t n = b->agent_conf ? strlen(b->agent_conf) : 0;
  if (!rc)
    rc = kiln_cpio_add_file(c, "kiln-agent.conf", 0644, 0, 0, n, err);
  if (!rc && n)
    rc = kiln_cpio_write_data(c, b->agent_conf, n, err);
  return rc;
}

kiln_err kiln_bootstrap_write(const char *out_path, const struct kiln_bootstrap *b,
                              struct kiln_error *err)
{
  const char *init_path = b->init_path, *modules_dir = b->modules_dir;
  const char *order_path = b->order_path;
  int64_t mtime = b->mtime;
  char **names = NULL, *order_text = NULL, *tmp = NULL;
  size_t count = 0;
  struct kiln_cpio *c = NULL;
  kiln_err rc = read_order(modules_dir, order_path, &names, &count, &order_text, err);
  if (rc)
    goto out;
  struct kiln_buf t = KILN_BUF_INIT;
  kiln_buf_printf(&t, "%s.tmp", out_path);
  tmp = kiln_buf_detach(&t);
  if (!tmp || (rc = kiln_cpio_open_path(tmp, mtime, &c, err)))
    goto out;
  /* Fixed order, parents first: dev, init, kiln-agent, kiln-agent.conf, modules, modules/...,
   * modules.order. */
  rc = kiln_cpio_add_dir(c, "dev", 0755, 0, 0, err);
  if (!rc)
    rc = add_file(c, "init", init_path, 0755, err);
  if (!rc)
    rc = add_agent(c, b, err);
  if (!rc && count) {
    char **sorted = malloc(count * sizeof *sorted);
    if (!sorted) {
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
      goto out;
    }
    memcpy(sorted, names, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, compare_names);
    rc = kiln_cpio_add_dir(c, "modules", 0755, 0, 0, err);
    for (size_t i = 0; i < count && !rc; i++) {
      if (i && strcmp(sorted[i], sorted[i - 1]) == 0)
        continue; /* listed twice: one copy of the file */
      struct kiln_buf name = KILN_BUF_INIT;
      kiln_buf_printf(&name, "modules/%s", sorted[i]);
      char *src = kiln_path_join(modules_dir, sorted[i]);
      rc = src ? add_file(c, kiln_buf_str(&name), src, 0644, err) : KILN_E_NOMEM;
      free(src);
      kiln_buf_free(&name);
    }
    free(sorted);
    if (!rc) {
      size_t n = strlen(order_text);
      rc = kiln_cpio_add_file(c, "modules.order", 0644, 0, 0, n, err);
      if (!rc)
        rc = kiln_cpio_write_data(c, order_text, n, err);
    }
  }
  if (!rc)
    rc = kiln_cpio_close(c, err);
  if (!rc && rename(tmp, out_path) != 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
out:
  kiln_cpio_free(c);
  if (rc && tmp)
    unlink(tmp);
  free(tmp);
  for (size_t i = 0; i < count; i++)
    free(names[i]);
  free(names);
  free(order_text);
  return rc;
}
