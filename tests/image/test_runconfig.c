/* Unit tests of the run config: argv semantics (docker and nitro-cli), argv[0] resolution against
 * the image PATH inside the tree, env overrides, WorkingDir and User lookups. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "image.h"
#include "util/fs.h"

static struct img_tree *tree;

static void add(const char *path, uint32_t mode, const char *content)
{
  struct kiln_error err = KILN_ERROR_INIT;
  struct img_node *dir = NULL;
  const char *slash = strrchr(path, '/');
  CHECK_INT(KILN_OK,
            img_tree_walk_dirs(tree, tree->root, path, (size_t)(slash - path), 1, 1, &dir, &err));
  struct img_inode *ino = img_inode_new(tree, mode, 0, 0);
  if (S_ISLNK(mode)) {
    ino->target = strdup(content);
  } else if (S_ISREG(mode)) {
    ino->spool_off = img_spool_tell(tree->spool);
    ino->size = strlen(content);
    CHECK_INT(KILN_OK, img_spool_append(tree->spool, content, strlen(content), &err));
  }
  CHECK_INT(KILN_OK, img_node_add(tree, dir, slash + 1, strlen(slash + 1), ino, 1, NULL, &err));
  img_inode_unref(ino);
  kiln_error_clear(&err);
}

struct tcase {
  const char *name;
  const char *config; /* image config JSON */
  const char *cmd;    /* /enclave/cmd JSON or NULL */
  const char *env;    /* /enclave/env JSON or NULL */
  int nitro;
  const char *want_argv, *want_env, *want_workdir, *want_user; /* joined by spaces */
  const char *want_err;
};

static const struct tcase cases[] = {
    {"Entrypoint ++ Cmd with argv[0] found in the image PATH",
     "{\"config\":{\"Entrypoint\":[\"node\"],\"Cmd\":[\"app.js\"],\"Env\":[\"PATH=/usr/local/bin:/"
     "usr/bin\"]}}",
     NULL, NULL, 0, "/usr/local/bin/node app.js", "PATH=/usr/local/bin:/usr/bin", "/", "0:0", NULL},
    {"nitro-cli mode takes Cmd alone when both are set",
     "{\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"/bin/sh\"]}}", NULL, NULL, 1,
     "/bin/sh", "", "/", "0:0", NULL},
    {"nitro-cli mode falls back to Entrypoint",
     "{\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-e\"]}}", NULL, NULL, 1, "/bin/sh -e", "", "/",
     "0:0", NULL},
    {"argv[0] found through a symlink keeps the PATH name",
     "{\"config\":{\"Cmd\":[\"python3\"],\"Env\":[\"PATH=/usr/bin\"]}}", NULL, NULL, 0,
     "/usr/bin/python3", "PATH=/usr/bin", "/", "0:0", NULL},
    {"no PATH in Env searches Docker's default PATH", "{\"config\":{\"Cmd\":[\"sh\"]}}", NULL, NULL,
     0, "/bin/sh", "", "/", "0:0", NULL},
    {"argv[0] not in PATH is refused", "{\"config\":{\"Cmd\":[\"missing\"]}}", NULL, NULL, 0, NULL,
     NULL, NULL, NULL, "not in the image's PATH"},
    {"a non-executable command is refused", "{\"config\":{\"Cmd\":[\"/data/notexec\"]}}", NULL,
     NULL, 0, NULL, NULL, NULL, NULL, "not an executable"},
    {"relative argv[0] with a slash resolves against WorkingDir",
     "{\"config\":{\"Cmd\":[\"./run.sh\"],\"WorkingDir\":\"/app\"}}", NULL, NULL, 0, "/app/run.sh",
     "", "/app", "0:0", NULL},
    {"image with no Entrypoint/Cmd is refused", "{\"config\":{}}", NULL, NULL, 0, NULL, NULL, NULL,
     NULL, "no Entrypoint or Cmd"},
    {"/enclave/cmd overrides the image", "{\"config\":{\"Cmd\":[\"missing\"]}}",
     "[\"/bin/sh\",\"-c\",\"x\"]", NULL, 0, "/bin/sh -c x", "", "/", "0:0", NULL},
    {"/enclave/env overrides and adds variables",
     "{\"config\":{\"Cmd\":[\"/bin/sh\"],\"Env\":[\"A=1\",\"B=2\"]}}", NULL,
     "{\"B\":\"3\",\"C\":\"4\"}", 0, "/bin/sh", "A=1 B=3 C=4", "/", "0:0", NULL},
    {"env value with a newline is refused",
     "{\"config\":{\"Cmd\":[\"/bin/sh\"],\"Env\":[\"A=x\\ny\"]}}", NULL, NULL, 0, NULL, NULL, NULL,
     NULL, "newline"},
    {"User by name gets uid and primary gid from /etc/passwd",
     "{\"config\":{\"Cmd\":[\"/bin/sh\"],\"User\":\"app\"}}", NULL, NULL, 0, "/bin/sh", "", "/",
     "1000:1001", NULL},
    {"User name:group resolves the group in /etc/group",
     "{\"config\":{\"Cmd\":[\"/bin/sh\"],\"User\":\"app:staff\"}}", NULL, NULL, 0, "/bin/sh", "",
     "/", "1000:50", NULL},
    {"numeric User uid:gid is taken as is",
     "{\"config\":{\"Cmd\":[\"/bin/sh\"],\"User\":\"123:456\"}}", NULL, NULL, 0, "/bin/sh", "", "/",
     "123:456", NULL},
    {"numeric uid alone takes the gid of its /etc/passwd line",
     "{\"config\":{\"Cmd\":[\"/bin/sh\"],\"User\":\"1000\"}}", NULL, NULL, 0, "/bin/sh", "", "/",
     "1000:1001", NULL},
    {"unknown user name is refused", "{\"config\":{\"Cmd\":[\"/bin/sh\"],\"User\":\"nobody\"}}",
     NULL, NULL, 0, NULL, NULL, NULL, NULL, "no such user"},
};

static char *join(char **list, size_t n)
{
  struct kiln_buf b = KILN_BUF_INIT;
  for (size_t i = 0; i < n; i++)
    kiln_buf_printf(&b, "%s%s", i ? " " : "", list[i]);
  kiln_buf_append(&b, "", 0);
  return kiln_buf_detach(&b);
}

int main(void)
{
  struct kiln_error err = KILN_ERROR_INIT;
  struct img_spool *spool = NULL;
  CHECK_INT(KILN_OK, img_spool_new(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", &spool, &err));
  CHECK_INT(KILN_OK, img_tree_new(spool, &tree, &err));
  add("/bin/sh", S_IFREG | 0755, "#!");
  add("/usr/local/bin/node", S_IFREG | 0755, "node");
  add("/usr/bin/python3.11", S_IFREG | 0755, "py");
  add("/usr/bin/python3", S_IFLNK | 0777, "python3.11");
  add("/data/notexec", S_IFREG | 0644, "x");
  add("/app/run.sh", S_IFREG | 0755, "#!");
  add("/etc/passwd", S_IFREG | 0644, "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n");
  add("/etc/group", S_IFREG | 0644, "root:x:0:\nstaff:x:50:app\n");
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct tcase *tc = &cases[i];
    CHECK_CASE(tc->name);
    cJSON *config = cJSON_Parse(tc->config);
    cJSON *cmd = tc->cmd ? cJSON_Parse(tc->cmd) : NULL,
          *env = tc->env ? cJSON_Parse(tc->env) : NULL;
    struct img_run_overrides ov = {.cmd = cmd, .env = env, .nitro_cli_mode = tc->nitro};
    struct img_runconfig rc;
    kiln_err r = img_runconfig_build(tree, config, &ov, &rc, &err);
    if (tc->want_err) {
      CHECK(r != KILN_OK);
      CHECK_CONTAINS(tc->want_err, kiln_error_msg(&err));
    } else {
      CHECK_INT(0, r);
      if (r)
        fprintf(stderr, "  error: %s\n", kiln_error_msg(&err));
      char *argv = join(rc.argv, rc.argc), *envs = join(rc.env, rc.envc), user[32];
      snprintf(user, sizeof(user), "%u:%u", rc.uid, rc.gid);
      CHECK_STR(tc->want_argv, argv);
      CHECK_STR(tc->want_env, envs);
      CHECK_STR(tc->want_workdir, rc.workdir);
      CHECK_STR(tc->want_user, user);
      free(argv);
      free(envs);
    }
    img_runconfig_clear(&rc);
    kiln_error_clear(&err);
    cJSON_Delete(config);
    cJSON_Delete(cmd);
    cJSON_Delete(env);
  }
  img_tree_free(tree);
  img_spool_free(spool);
  return check_done();
}
