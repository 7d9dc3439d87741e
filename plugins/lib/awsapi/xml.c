/* AWS XML responses parsed with expat into a small bounded tree (names without namespace prefix).
 */
#include "xml.h"

#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "util/buf.h"

#define XML_MAX_BYTES (16u << 20)
#define XML_MAX_DEPTH 64
#define XML_MAX_NODES 500000

struct xml_builder {
  struct kiln_xml *root;
  struct kiln_xml *stack[XML_MAX_DEPTH];
  struct kiln_xml *last_child[XML_MAX_DEPTH];
  struct kiln_buf text[XML_MAX_DEPTH];
  int depth;
  size_t nodes;
  int failed; /* 1: out of memory, 2: too deep, 3: too many elements, 4: two roots */
  XML_Parser parser;
};

void kiln_xml_free(struct kiln_xml *x)
{
  while (x) {
    struct kiln_xml *next = x->next;
    kiln_xml_free(x->child);
    free(x->name);
    free(x->text);
    free(x);
    x = next;
  }
}

static void fail(struct xml_builder *b, int why)
{
  if (!b->failed)
    b->failed = why;
  XML_StopParser(b->parser, XML_FALSE);
}

static void on_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
  struct xml_builder *b = data;
  (void)attrs;
  if (b->failed)
    return;
  if (b->depth >= XML_MAX_DEPTH)
    return fail(b, 2);
  if (++b->nodes > XML_MAX_NODES)
    return fail(b, 3);
  if (b->depth == 0 && b->root)
    return fail(b, 4);
  struct kiln_xml *node = calloc(1, sizeof(*node));
  const char *local = strrchr(name, ':');
  if (!node || !(node->name = strdup(local ? local + 1 : name))) {
    free(node);
    return fail(b, 1);
  }
  if (b->depth == 0) {
    b->root = node;
  } else {
    struct kiln_xml *parent = b->stack[b->depth - 1];
    if (b->last_child[b->depth - 1])
      b->last_child[b->depth - 1]->next = node;
    else
      parent->child = node;
    b->last_child[b->depth - 1] = node;
  }
  b->stack[b->depth] = node;
  b->last_child[b->depth] = NULL;
  kiln_buf_reset(&b->text[b->depth]);
  b->depth++;
}

static void on_end(void *data, const XML_Char *name)
{
  struct xml_builder *b = data;
  (void)name;
  if (b->failed || b->depth == 0)
    return;
  b->depth--;
  struct kiln_xml *node = b->stack[b->depth];
  node->text = kiln_buf_detach(&b->text[b->depth]);
  if (!node->text && !(node->text = strdup("")))
    fail(b, 1);
}

static void on_text(void *data, const XML_Char *s, int len)
{
  struct xml_builder *b = data;
  if (b->failed || b->depth == 0)
    return;
  if (kiln_buf_append(&b->text[b->depth - 1], s, (size_t)len) != KILN_OK)
    fail(b, 1);
}

kiln_err kiln_xml_parse(const char *data, size_t len, const char *what, struct kiln_xml **out,
                        struct kiln_error *err)
{
  struct xml_builder b;
  kiln_err rc = KILN_OK;
  memset(&b, 0, sizeof(b));
  *out = NULL;
  if (len > XML_MAX_BYTES)
    return kiln_error_set(err, KILN_E_REMOTE, "%s: XML document of %zu bytes is larger than %u",
                          what, len, XML_MAX_BYTES);
  b.parser = XML_ParserCreate("UTF-8");
  if (!b.parser)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory creating an XML parser");
  XML_SetUserData(b.parser, &b);
  XML_SetElementHandler(b.parser, on_start, on_end);
  XML_SetCharacterDataHandler(b.parser, on_text);
  enum XML_Status st = XML_Parse(b.parser, data ? data : "", (int)len, XML_TRUE);
  if (b.failed == 1) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory parsing %s", what);
  } else if (b.failed) {
    rc = kiln_error_set(err, KILN_E_REMOTE, "%s is not a usable XML document: %s", what,
                        b.failed == 2   ? "nested too deeply"
                        : b.failed == 3 ? "too many elements"
                                        : "more than one root element");
  } else if (st != XML_STATUS_OK || !b.root) {
    rc = kiln_error_set(err, KILN_E_REMOTE, "%s is not well-formed XML (line %lu: %s)", what,
                        (unsigned long)XML_GetCurrentLineNumber(b.parser),
                        b.root || len ? XML_ErrorString(XML_GetErrorCode(b.parser))
                                      : "empty document");
  }
  for (int i = 0; i < XML_MAX_DEPTH; i++)
    kiln_buf_free(&b.text[i]);
  XML_ParserFree(b.parser);
  if (rc != KILN_OK) {
    kiln_xml_free(b.root);
    return rc;
  }
  *out = b.root;
  return KILN_OK;
}

const struct kiln_xml *kiln_xml_child(const struct kiln_xml *x, const char *name)
{
  for (const struct kiln_xml *c = x ? x->child : NULL; c; c = c->next)
    if (strcmp(c->name, name) == 0)
      return c;
  return NULL;
}

const struct kiln_xml *kiln_xml_path(const struct kiln_xml *x, const char *path)
{
  const char *p = path;
  while (x && *p) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    const struct kiln_xml *found = NULL;
    for (const struct kiln_xml *c = x->child; c && !found; c = c->next)
      if (strlen(c->name) == len && memcmp(c->name, p, len) == 0)
        found = c;
    x = found;
    p += len + (slash ? 1 : 0);
  }
  return x;
}

const char *kiln_xml_text(const struct kiln_xml *x, const char *path)
{
  const struct kiln_xml *n = kiln_xml_path(x, path);
  return n ? n->text : NULL;
}

const struct kiln_xml *kiln_xml_next_same(const struct kiln_xml *x)
{
  for (const struct kiln_xml *c = x ? x->next : NULL; c; c = c->next)
    if (strcmp(c->name, x->name) == 0)
      return c;
  return NULL;
}

const struct kiln_xml *kiln_xml_find(const struct kiln_xml *x, const char *name)
{
  for (; x; x = x->next) {
    if (strcmp(x->name, name) == 0)
      return x;
    const struct kiln_xml *inner = kiln_xml_find(x->child, name);
    if (inner)
      return inner;
  }
  return NULL;
}

kiln_err kiln_xml_escape(struct kiln_buf *out, const char *s)
{
  kiln_err rc = KILN_OK;
  for (; *s && rc == KILN_OK; s++) {
    switch (*s) {
    case '&': rc = kiln_buf_puts(out, "&amp;"); break;
    case '<': rc = kiln_buf_puts(out, "&lt;"); break;
    case '>': rc = kiln_buf_puts(out, "&gt;"); break;
    case '"': rc = kiln_buf_puts(out, "&quot;"); break;
    case '\'': rc = kiln_buf_puts(out, "&apos;"); break;
    case '\r': rc = kiln_buf_puts(out, "&#13;"); break; /* a raw CR would be read back as LF */
    default: rc = kiln_buf_putc(out, *s);
    }
  }
  return rc;
}
