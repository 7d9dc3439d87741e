/* `kiln init`: write a kiln.json for the application directory (never overwrites one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"

int kiln_cmd_init(struct kiln_cli *cli)
{
  const char *image = NULL, *name = NULL;
  for (int i = 1; i < cli->argc; i++) {
    if (strcmp(cli->argv[i], "--image") == 0 && i + 1 < cli->argc)
      image = cli->argv[++i];
    else if (strcmp(cli->argv[i], "--name") == 0 && i + 1 < cli->argc)
      name = cli->argv[++i];
    else
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", cli->argv[i]);
  }
  struct kiln *k = kiln_cli_open(cli);
  if (!k)
    return KILN_EXIT_FAILURE;
  int code = KILN_EXIT_OK;
  char *path = kiln_path_join(kiln_app_dir(k), "kiln.json");
  char *dockerfile = kiln_path_join(kiln_app_dir(k), "Dockerfile");
  struct kiln_buf text = KILN_BUF_INIT, src = KILN_BUF_INIT, q = KILN_BUF_INIT;
  if (!path || !dockerfile) {
    code = kiln_cli_fail_msg(cli, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  if (kiln_path_exists(path)) {
    code = kiln_cli_fail_msg(cli, KILN_E_INVALID,
                             "%s already exists; edit it, or remove it to start over", path);
    goto out;
  }
  if (!name)
    name = kiln_app_name(k);
  int build = !image && kiln_path_exists(dockerfile);
  if (!image) {
    kiln_buf_puts(&src, build ? "build of ./Dockerfile" : "dir:rootfs");
    image = kiln_buf_str(&src);
  }
  kiln_buf_puts(&text, "{\n  \"name\": ");
  kiln_json_quote(name, &text);
  kiln_buf_puts(&text, ",\n  \"image\": ");
  if (build)
    kiln_buf_puts(&text, "{ \"build\": { \"context\": \".\", \"dockerfile\": \"Dockerfile\", "
                         "\"target\": null, \"args\": {}, \"platform\": \"linux/amd64\" } }");
  else
    kiln_json_quote(image, &text);
  kiln_buf_puts(&text, ",\n"
                       "  \"enclave\": {\n"
                       "    \"cpus\": 2,\n"
                       "    \"memory_mib\": 1024,\n"
                       "    \"cmd\": null,\n"
                       "    \"env\": {},\n"
                       "    \"debug\": false\n"
                       "  },\n"
                       "  \"kernel\": { \"source\": \"debian-build:6.12\" },\n"
                       "  \"aws\": { \"region\": \"us-east-1\", \"ports\": [443], \"count\": 1 }\n"
                       "}\n");
  struct kiln_error e = KILN_ERROR_INIT;
  if (kiln_write_file_atomic(path, text.data, text.len, 0644, &e)) {
    code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    kiln_error_clear(&e);
    goto out;
  }
  if (cli->json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "path", path);
    cJSON_AddStringToObject(doc, "name", name);
    cJSON *written = cJSON_Parse(text.data);
    cJSON_AddItemToObject(doc, "image", cJSON_DetachItemFromObjectCaseSensitive(written, "image"));
    cJSON_Delete(written);
    kiln_cli_print_json(doc);
  } else {
    printf("wrote %s (image: %s)\nnext: kiln build\n", path, image);
  }
out:
  kiln_buf_free(&text);
  kiln_buf_free(&src);
  kiln_buf_free(&q);
  free(path);
  free(dockerfile);
  kiln_free(k);
  return code;
}
