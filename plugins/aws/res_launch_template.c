/* Resource kind "launch-template": the deployment's launch template. setup makes version 1 (a
 * placeholder type, no EIF yet) so the scoped deploy credentials only add versions; deploy
 * (fleet.c) adds a version per release. status reads which EIF the newest version runs. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resource.h"
#include "s3.h"

/* "#!/bin/sh\necho 'kiln: no EIF deployed yet'\n" in base64 */
#define PLACEHOLDER_USER_DATA "IyEvYmluL3NoCmVjaG8gJ2tpbG46IG5vIEVJRiBkZXBsb3llZCB5ZXQnCg=="

/* What a version runs, from the tags it gives its instances (kiln:eif-key, kiln:eif-sha256,
 * kiln:pcr0...): recorded by deploy, never read back out of the user data's text. */
static void release_of_tags(struct kiln_fleet *f, const struct kiln_xml *data)
{
  for (const struct kiln_xml *spec = kiln_awsenv_items(data, "tagSpecificationSet"); spec;
       spec = kiln_xml_next_same(spec)) {
    const char *type = kiln_xml_text(spec, "resourceType");
    if (!type || strcmp(type, "instance") != 0)
      continue;
    for (const struct kiln_xml *t = kiln_awsenv_items(spec, "tagSet"); t;
         t = kiln_xml_next_same(t)) {
      const char *key = kiln_xml_text(t, "key"), *value = kiln_xml_text(t, "value");
      char **slot = NULL;
      if (!key || !value)
        continue;
      if (strcmp(key, KILN_TAG_EIF_KEY) == 0)
        slot = &f->eif_key;
      else if (strcmp(key, KILN_TAG_EIF_SHA256) == 0)
        slot = &f->eif_sha256;
      for (int i = 0; i < KILN_RELEASE_PCRS && !slot; i++)
        if (strcmp(key, kiln_release_pcr_tags[i]) == 0)
          slot = &f->pcrs[i];
      if (slot && !*slot)
        *slot = strdup(value);
    }
  }
}

kiln_err kiln_fleet_find_template(struct kiln_awsenv *env, struct kiln_fleet *f,
                                  struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_aws_error_info info;
  struct kiln_xml *doc = NULL;
  kiln_aws_params_add(&p, "LaunchTemplateName.1", env->names.launch_template);
  kiln_err rc = kiln_aws_query(env->c, "ec2", "DescribeLaunchTemplates", &p, &doc, &info, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK && strstr(info.code, "NotFound")) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  if (rc != KILN_OK)
    return rc;
  f->lt_id = kiln_awsenv_dup(kiln_awsenv_first(doc, "launchTemplateId"));
  const char *latest = kiln_awsenv_first(doc, "latestVersionNumber");
  const char *def = kiln_awsenv_first(doc, "defaultVersionNumber");
  f->lt_latest = latest ? atol(latest) : 0;
  f->lt_default = def ? atol(def) : 0;
  kiln_xml_free(doc);
  if (!f->lt_id)
    return KILN_OK;
  kiln_aws_params_add(&p, "LaunchTemplateId", f->lt_id);
  kiln_aws_params_add(&p, "LaunchTemplateVersion.1", "$Latest");
  rc = kiln_awsenv_read(env, "ec2", "DescribeLaunchTemplateVersions", &p, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc == KILN_OK) {
    const struct kiln_xml *data = kiln_xml_find(doc, "launchTemplateData");
    f->lt_user_data = kiln_awsenv_dup(kiln_xml_text(data, "userData"));
    release_of_tags(f, data);
    f->lt_instance_type = kiln_awsenv_dup(kiln_xml_text(data, "instanceType"));
    f->lt_image_id = kiln_awsenv_dup(kiln_xml_text(data, "imageId"));
    const char *enclave = kiln_xml_text(data, "enclaveOptions/enabled");
    f->lt_enclave = enclave && strcmp(enclave, "true") == 0;
  }
  kiln_xml_free(doc);
  return rc;
}

/* status: the deployed EIF's PCRs, from the version's tags, else from its S3 object's metadata
 * (x-amz-meta-pcr0..., for versions made before the tags). */
static void find_measurements(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_s3_object obj = {0};
  for (int i = 0; i < KILN_RELEASE_PCRS; i++)
    if (w->fleet.pcrs[i]) {
      if (!w->measurements)
        w->measurements = cJSON_CreateObject();
      cJSON_AddStringToObject(w->measurements, kiln_release_pcr_names[i], w->fleet.pcrs[i]);
    }
  if (w->measurements)
    return;
  if (w->bucket_exists && w->fleet.eif_key &&
      kiln_s3_head(w->env->c, w->env->names.bucket, w->fleet.eif_key, &obj, err) == KILN_OK) {
    static const char *const pcrs[][2] = {
        {"pcr0", "PCR0"}, {"pcr1", "PCR1"}, {"pcr2", "PCR2"}, {"pcr8", "PCR8"}};
    w->measurements = cJSON_CreateObject();
    for (size_t i = 0; i < obj.nmeta; i++)
      for (size_t j = 0; j < 4; j++)
        if (strcmp(obj.meta[i].name, pcrs[j][0]) == 0)
          cJSON_AddStringToObject(w->measurements, pcrs[j][1], obj.meta[i].value);
  }
  kiln_error_clear(err);
  kiln_s3_object_clear(&obj);
}

static kiln_err lt_find(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = kiln_fleet_find_template(w->env, &w->fleet, err);
  if (rc == KILN_OK && w->mode == KILN_WALK_STATUS)
    find_measurements(w, err);
  return rc;
}

static kiln_err lt_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_fleet *f = &w->fleet;
  const struct kiln_network *net = &w->net;
  const char *pinned_ami = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(w->opts, "ami"));
  const char *placeholder_type = w->placeholder_type;
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char *ami = NULL;
  kiln_err rc = KILN_OK;
  if (!f->lt_id) {
    rc = pinned_ami ? ((ami = strdup(pinned_ami)) ? KILN_OK : KILN_E_NOMEM)
                    : kiln_fleet_latest_ami(env, &ami, err);
    struct kiln_release placeholder = {.instance_type = placeholder_type};
    if (rc == KILN_OK) {
      kiln_awsenv_announce(env, "create", env->names.launch_template,
                           "launch template (version 1: no EIF yet; deploy adds versions)");
      kiln_fleet_template_data(env, net, &placeholder, ami, PLACEHOLDER_USER_DATA, &p);
      kiln_aws_params_add(&p, "LaunchTemplateName", env->names.launch_template);
      kiln_awsenv_tag_spec(env, &p, 1, "launch-template", env->names.launch_template);
      /* a new instance profile takes seconds to be usable: retry while EC2 does not know it */
      for (int attempt = 0; attempt < 10; attempt++) {
        rc = kiln_awsenv_mutate(env, "ec2", "CreateLaunchTemplate", &p, env->names.launch_template,
                                NULL, &doc, err);
        if (rc == KILN_OK || !strstr(kiln_error_msg(err), "IamInstanceProfile"))
          break;
        kiln_error_clear(err);
        env->mutations--;
        kiln_aws_client_log(env->c, KILN_LOG_INFO,
                            "instance profile not visible to EC2 yet; retrying");
        sleep(3);
      }
      if (rc == KILN_OK && !env->dry_run) {
        f->lt_id = kiln_awsenv_dup(kiln_awsenv_first(doc, "launchTemplateId"));
        f->lt_latest = 1;
      }
      kiln_xml_free(doc);
    }
    kiln_aws_params_clear(&p);
  }
  free(ami);
  return rc;
}

static int lt_exists(const struct kiln_walk *w)
{
  return w->fleet.lt_id != NULL;
}

static void lt_fields(const struct kiln_walk *w, cJSON *meta)
{
  kiln_json_add_string(meta, "launch_template_id", w->fleet.lt_id);
  if (w->fleet.lt_latest)
    cJSON_AddNumberToObject(meta, "launch_template_version", (double)w->fleet.lt_latest);
  kiln_doc_label(meta, "launch_template_id", "launch template");
  kiln_doc_label(meta, "launch_template_version", "  version");
  if (w->mode != KILN_WALK_STATUS)
    return;
  kiln_json_add_string(meta, "eif_key", w->fleet.eif_key);
  kiln_json_add_string(meta, "eif_sha256", w->fleet.eif_sha256);
  kiln_doc_label(meta, "eif_key", "EIF");
  kiln_doc_label(meta, "eif_sha256", "EIF sha256");
  if (w->measurements)
    cJSON_AddItemToObject(meta, "measurements", cJSON_Duplicate(w->measurements, 1));
}

static kiln_err lt_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_fleet *f = &w->fleet;
  kiln_err rc = KILN_OK;
  if (rc == KILN_OK && f->lt_id)
    rc = kiln_awsenv_delete(env, "ec2", "DeleteLaunchTemplate", "LaunchTemplateId", f->lt_id,
                            "launch template", err);
  return rc;
}

const struct kiln_aws_resource kiln_res_launch_template = {
    .name = "launch-template",
    .find = lt_find,
    .ensure = lt_ensure,
    .exists = lt_exists,
    .fields = lt_fields,
    .teardown = lt_teardown,
};
