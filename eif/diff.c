/* Why two EIFs differ: compare the header and every section by size and SHA-256, then read each
 * differing ramdisk pair as cpio (libarchive, streamed from the EIF) into per-path records of
 * type, mode, owner, size, content hash and link target, and merge them in path order. Memory
 * holds records, never file contents. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/eif_diff.h"
#include "util/hash.h"

#define DIFF_CHUNK (1u << 16)

/* Reads [off, end) of fd for libarchive. */
struct range_reader {
  int fd;
  uint64_t off, end;
  char buf[DIFF_CHUNK];
};

static la_ssize_t range_read(struct archive *a, void *ud, const void **out)
{
  struct range_reader *r = ud;
  size_t want = r->end - r->off < DIFF_CHUNK ? (size_t)(r->end - r->off) : DIFF_CHUNK;
  *out = r->buf;
  if (want == 0)
    return 0;
  ssize_t n;
  do
    n = pread(r->fd, r->buf, want, (off_t)r->off);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (a)
      archive_set_error(a, errno, "read failed");
    return -1;
  }
  r->off += (uint64_t)n;
  return n;
}

struct record {
  char *path;
  struct kiln_eif_diff_entry e;
};

struct record_list {
  struct record *v;
  size_t n, cap;
};

static void records_free(struct record_list *l)
{
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].path);
    free(l->v[i].e.link);
  }
  free(l->v);
  memset(l, 0, sizeof(*l));
}

static int cmp_records(const void *x, const void *y)
{
  return strcmp(((const struct record *)x)->path, ((const struct record *)y)->path);
}

static kiln_err hash_data(struct archive *a, struct kiln_eif_diff_entry *e, const char *file,
                          const char *path, struct kiln_error *err)
{
  EVP_MD_CTX *sha = EVP_MD_CTX_new();
  const void *buf;
  size_t len;
  la_int64_t off;
  int r;
  if (!sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
    EVP_MD_CTX_free(sha);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  e->size = 0;
  while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
    EVP_DigestUpdate(sha, buf, len);
    e->size += len;
  }
  unsigned char md[32];
  EVP_DigestFinal_ex(sha, md, NULL);
  EVP_MD_CTX_free(sha);
  if (r != ARCHIVE_EOF)
    return kiln_error_set(err, KILN_E_INVALID, "%s: ramdisk entry %s: %s", file, path,
                          archive_error_string(a));
  kiln_hex_encode(md, sizeof(md), e->sha256);
  return KILN_OK;
}

static kiln_err add_record(struct record_list *l, struct archive *a, struct archive_entry *ae,
                           const char *file, struct kiln_error *err)
{
  const char *name = archive_entry_pathname(ae);
  if (!name)
    return kiln_error_set(err, KILN_E_INVALID, "%s: a ramdisk entry has no name", file);
  while (name[0] == '.' && name[1] == '/')
    name += 2;
  while (name[0] == '/')
    name++;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 256;
    void *p = realloc(l->v, cap * sizeof(*l->v));
    if (!p)
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    l->v = p;
    l->cap = cap;
  }
  struct record *r = &l->v[l->n];
  memset(r, 0, sizeof(*r));
  const char *link = archive_entry_symlink(ae);
  if (!link)
    link = archive_entry_hardlink(ae);
  r->path = strdup(*name ? name : ".");
  r->e.link = link ? strdup(link) : NULL;
  if (!r->path || (link && !r->e.link)) {
    free(r->path);
    free(r->e.link);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  l->n++;
  r->e.present = 1;
  r->e.mode = (uint32_t)archive_entry_mode(ae);
  r->e.uid = (uint32_t)archive_entry_uid(ae);
  r->e.gid = (uint32_t)archive_entry_gid(ae);
  if (S_ISREG(r->e.mode))
    return hash_data(a, &r->e, file, r->path, err);
  return KILN_OK;
}

/* Every entry of the cpio archive in section s of fd, sorted by path. */
static kiln_err read_ramdisk(int fd, const char *file, const struct kiln_eif_section *s,
                             struct record_list *l, struct kiln_error *err)
{
  struct range_reader *rr = malloc(sizeof(*rr));
  struct archive *a = archive_read_new();
  struct archive_entry *ae;
  kiln_err rc = KILN_OK;
  if (!rr || !a) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  rr->fd = fd;
  rr->off = s->offset + KILN_EIF_SECTION_HEADER_SIZE;
  rr->end = rr->off + s->size;
  archive_read_support_format_cpio(a);
  archive_read_support_filter_all(a);
  if (archive_read_open(a, rr, NULL, range_read, NULL) != ARCHIVE_OK) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: a ramdisk is not a cpio archive: %s", file,
                        archive_error_string(a));
    goto out;
  }
  int r;
  while (!rc && (r = archive_read_next_header(a, &ae)) == ARCHIVE_OK)
    rc = add_record(l, a, ae, file, err);
  if (!rc && r != ARCHIVE_EOF)
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: damaged ramdisk cpio: %s", file,
                        archive_error_string(a));
  if (!rc)
    qsort(l->v, l->n, sizeof(*l->v), cmp_records);
out:
  if (a)
    archive_read_free(a);
  free(rr);
  return rc;
}

static unsigned compare_entries(const struct kiln_eif_diff_entry *a,
                                const struct kiln_eif_diff_entry *b)
{
  unsigned what = 0;
  if ((a->mode & S_IFMT) != (b->mode & S_IFMT))
    return KILN_EIF_DIFF_TYPE;
  if ((a->mode & 07777) != (b->mode & 07777))
    what |= KILN_EIF_DIFF_MODE;
  if (a->uid != b->uid || a->gid != b->gid)
    what |= KILN_EIF_DIFF_OWNER;
  if (a->size != b->size || strcmp(a->sha256, b->sha256) != 0)
    what |= KILN_EIF_DIFF_CONTENT;
  if ((a->link || b->link) && (!a->link || !b->link || strcmp(a->link, b->link) != 0))
    what |= KILN_EIF_DIFF_LINK;
  return what;
}

/* Move one side's record into a diff entry (taking its strings). */
static void take(struct kiln_eif_diff_entry *dst, struct record *r)
{
  *dst = r->e;
  r->e.link = NULL;
}

static kiln_err add_path(struct kiln_eif_diff_ramdisk *rd, size_t max, struct record *ra,
                         struct record *rb, unsigned what, struct kiln_error *err)
{
  rd->total++;
  if (max && rd->npaths >= max)
    return KILN_OK;
  void *p = realloc(rd->paths, (rd->npaths + 1) * sizeof(*rd->paths));
  if (!p)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  rd->paths = p;
  struct kiln_eif_diff_path *d = &rd->paths[rd->npaths];
  memset(d, 0, sizeof(*d));
  if (!(d->path = strdup(ra ? ra->path : rb->path)))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  rd->npaths++;
  d->what = what;
  if (ra)
    take(&d->a, ra);
  if (rb)
    take(&d->b, rb);
  return KILN_OK;
}

/* Merge two sorted record lists into the ramdisk's differing paths. */
static kiln_err merge(struct record_list *la, struct record_list *lb, size_t max,
                      struct kiln_eif_diff_ramdisk *rd, struct kiln_error *err)
{
  size_t i = 0, j = 0;
  kiln_err rc = KILN_OK;
  while (!rc && (i < la->n || j < lb->n)) {
    int c = i == la->n ? 1 : j == lb->n ? -1 : strcmp(la->v[i].path, lb->v[j].path);
    if (c < 0) {
      rc = add_path(rd, max, &la->v[i++], NULL, KILN_EIF_DIFF_ONLY_A, err);
    } else if (c > 0) {
      rc = add_path(rd, max, NULL, &lb->v[j++], KILN_EIF_DIFF_ONLY_B, err);
    } else {
      unsigned what = compare_entries(&la->v[i].e, &lb->v[j].e);
      if (what)
        rc = add_path(rd, max, &la->v[i], &lb->v[j], what, err);
      i++, j++;
    }
  }
  return rc;
}

static kiln_err hash_section(int fd, const char *file, const struct kiln_eif_section *s,
                             char out[65], struct kiln_error *err)
{
  struct range_reader *rr = malloc(sizeof(*rr));
  EVP_MD_CTX *sha = EVP_MD_CTX_new();
  kiln_err rc = KILN_OK;
  if (!rr || !sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  rr->fd = fd;
  rr->off = s->offset + KILN_EIF_SECTION_HEADER_SIZE;
  rr->end = rr->off + s->size;
  const void *buf;
  la_ssize_t n;
  while ((n = range_read(NULL, rr, &buf)) > 0)
    EVP_DigestUpdate(sha, buf, (size_t)n);
  if (n < 0 || rr->off != rr->end) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot read %s: %s", file,
                        n < 0 ? strerror(errno) : "truncated");
    goto out;
  }
  unsigned char md[32];
  EVP_DigestFinal_ex(sha, md, NULL);
  kiln_hex_encode(md, sizeof(md), out);
out:
  EVP_MD_CTX_free(sha);
  free(rr);
  return rc;
}

static const char *section_name(const struct kiln_eif_info *info, unsigned i)
{
  static const char *const names[] = {"invalid", "kernel",    "cmdline",
                                      "ramdisk", "signature", "metadata"};
  uint16_t t = info->sections[i].type;
  if (t != KILN_EIF_SECTION_RAMDISK)
    return t <= 5 ? names[t] : "unknown";
  unsigned before = 0, after = 0;
  for (unsigned k = 0; k < info->num_sections; k++)
    if (info->sections[k].type == KILN_EIF_SECTION_RAMDISK)
      k<i ? before++ : k> i ? after++ : 0;
  return after == 0 && before > 0   ? "application ramdisk"
         : before == 0 && after > 0 ? "bootstrap ramdisk"
                                    : "ramdisk";
}

void kiln_eif_diff_clear(struct kiln_eif_diff *d)
{
  for (size_t r = 0; r < d->nramdisks; r++) {
    struct kiln_eif_diff_ramdisk *rd = &d->ramdisks[r];
    for (size_t i = 0; i < rd->npaths; i++) {
      free(rd->paths[i].path);
      free(rd->paths[i].a.link);
      free(rd->paths[i].b.link);
    }
    free(rd->paths);
  }
  free(d->ramdisks);
  free(d->sections);
  memset(d, 0, sizeof(*d));
}

const char *kiln_eif_diff_what_name(unsigned bit)
{
  switch (bit) {
  case KILN_EIF_DIFF_ONLY_A: return "only in A";
  case KILN_EIF_DIFF_ONLY_B: return "only in B";
  case KILN_EIF_DIFF_TYPE: return "type";
  case KILN_EIF_DIFF_CONTENT: return "content";
  case KILN_EIF_DIFF_MODE: return "mode";
  case KILN_EIF_DIFF_OWNER: return "owner";
  case KILN_EIF_DIFF_LINK: return "link target";
  }
  return "?";
}

static void fill_side(struct kiln_eif_diff_section_side *side, const struct kiln_eif_info *info,
                      unsigned i)
{
  if (i >= info->num_sections)
    return;
  side->present = 1;
  side->type = info->sections[i].type;
  side->size = info->sections[i].size;
}

/* Compare the differing ramdisk pair at section i path by path. */
static kiln_err diff_ramdisk(int fa, int fb, const char *a, const char *b,
                             const struct kiln_eif_info *ia, const struct kiln_eif_info *ib,
                             unsigned i, size_t max, struct kiln_eif_diff *out,
                             struct kiln_error *err)
{
  struct record_list la = {0}, lb = {0};
  void *p = realloc(out->ramdisks, (out->nramdisks + 1) * sizeof(*out->ramdisks));
  if (!p)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  out->ramdisks = p;
  struct kiln_eif_diff_ramdisk *rd = &out->ramdisks[out->nramdisks++];
  memset(rd, 0, sizeof(*rd));
  rd->section = i;
  rd->name = out->sections[i].name;
  kiln_err rc = read_ramdisk(fa, a, &ia->sections[i], &la, err);
  if (!rc)
    rc = read_ramdisk(fb, b, &ib->sections[i], &lb, err);
  if (!rc)
    rc = merge(&la, &lb, max, rd, err);
  records_free(&la);
  records_free(&lb);
  return rc;
}

static kiln_err compare_sections(int fa, int fb, const char *a, const char *b,
                                 const struct kiln_eif_info *ia, const struct kiln_eif_info *ib,
                                 size_t max, struct kiln_eif_diff *out, struct kiln_error *err)
{
  size_t n = ia->num_sections > ib->num_sections ? ia->num_sections : ib->num_sections;
  if (!(out->sections = calloc(n ? n : 1, sizeof(*out->sections))))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  out->nsections = n;
  for (unsigned i = 0; i < n; i++) {
    struct kiln_eif_diff_section *s = &out->sections[i];
    kiln_err rc = KILN_OK;
    s->index = i;
    s->name = section_name(i < ia->num_sections ? ia : ib, i);
    fill_side(&s->a, ia, i);
    fill_side(&s->b, ib, i);
    if (s->a.present)
      rc = hash_section(fa, a, &ia->sections[i], s->a.sha256, err);
    if (!rc && s->b.present)
      rc = hash_section(fb, b, &ib->sections[i], s->b.sha256, err);
    if (rc)
      return rc;
    s->same = s->a.present && s->b.present && s->a.type == s->b.type && s->a.size == s->b.size &&
              ia->sections[i].flags == ib->sections[i].flags &&
              strcmp(s->a.sha256, s->b.sha256) == 0;
    if (!s->same && out->first < 0)
      out->first = (int)i;
    if (!s->same && s->a.present && s->b.present && s->a.type == KILN_EIF_SECTION_RAMDISK &&
        s->b.type == KILN_EIF_SECTION_RAMDISK &&
        (rc = diff_ramdisk(fa, fb, a, b, ia, ib, i, max, out, err)))
      return rc;
  }
  return KILN_OK;
}

kiln_err kiln_eif_diff(const char *a, const char *b, size_t max_paths, struct kiln_eif_diff *out,
                       struct kiln_error *err)
{
  struct kiln_eif_info ia, ib;
  int fa = -1, fb = -1;
  memset(out, 0, sizeof(*out));
  memset(&ia, 0, sizeof(ia));
  memset(&ib, 0, sizeof(ib));
  out->first = -1;
  kiln_err rc = kiln_eif_read(a, 0, KILN_EIF_SHA384, &ia, err);
  if (!rc)
    rc = kiln_eif_read(b, 0, KILN_EIF_SHA384, &ib, err);
  if (!rc && ((fa = open(a, O_RDONLY | O_CLOEXEC)) < 0 || (fb = open(b, O_RDONLY | O_CLOEXEC)) < 0))
    rc = kiln_error_set(err, KILN_E_IO, "cannot open %s: %s", fa < 0 ? a : b, strerror(errno));
  if (!rc) {
    out->header_same = ia.version == ib.version && ia.flags == ib.flags &&
                       ia.default_mem == ib.default_mem && ia.default_cpus == ib.default_cpus &&
                       ia.num_sections == ib.num_sections;
    rc = compare_sections(fa, fb, a, b, &ia, &ib, max_paths, out, err);
  }
  if (!rc)
    out->identical = out->header_same && out->first < 0 && ia.file_size == ib.file_size &&
                     ia.crc_stored == ib.crc_stored;
  if (rc)
    kiln_eif_diff_clear(out);
  if (fa >= 0)
    close(fa);
  if (fb >= 0)
    close(fb);
  kiln_eif_info_clear(&ia);
  kiln_eif_info_clear(&ib);
  return rc;
}
