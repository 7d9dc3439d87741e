/* Resource kind "instances" (status only): the deployment's running instances as status shows
 * them, each with its public address and the release it was launched with (the launch template's
 * kiln:eif-key and kiln:pcr* tags), so `kiln status` can ask each enclave for its attestation.
 * The instances themselves belong to the Auto Scaling group (res_asg.c): setup and teardown leave
 * them to it. */
#include <stdlib.h>
#include <string.h>

#include "resource.h"

static int index_of_kind(void)
{
  return kiln_aws_resource_index(&kiln_res_instances);
}

/* One instance of DescribeInstances as {id, public_address, eif_key, measurements}. */
static cJSON *instance_json(const struct kiln_xml *item)
{
  cJSON *o = cJSON_CreateObject(), *pcrs = cJSON_CreateObject();
  const char *ip = kiln_xml_text(item, "ipAddress"), *dns = kiln_xml_text(item, "dnsName");
  kiln_json_add_string(o, "id", kiln_xml_text(item, "instanceId"));
  kiln_json_add_string(o, "state", kiln_xml_text(item, "instanceState/name"));
  kiln_json_add_string(o, "public_address", ip && *ip ? ip : dns && *dns ? dns : NULL);
  const struct kiln_xml *tags = kiln_xml_child(item, "tagSet");
  for (const struct kiln_xml *t = tags ? kiln_xml_child(tags, "item") : NULL; t;
       t = kiln_xml_next_same(t)) {
    const char *key = kiln_xml_text(t, "key"), *value = kiln_xml_text(t, "value");
    if (key && value && strcmp(key, KILN_TAG_EIF_KEY) == 0)
      kiln_json_add_string(o, "eif_key", value);
    for (int i = 0; key && value && i < KILN_RELEASE_PCRS; i++)
      if (strcmp(key, kiln_release_pcr_tags[i]) == 0)
        kiln_json_add_string(pcrs, kiln_release_pcr_names[i], value);
  }
  cJSON_AddItemToObject(o, "measurements", pcrs);
  return o;
}

static kiln_err instances_find(struct kiln_walk *w, struct kiln_error *err)
{
  int i = index_of_kind();
  if (w->mode != KILN_WALK_STATUS || i < 0 || !w->env->dep.id)
    return KILN_OK;
  struct kiln_xml *doc = NULL;
  kiln_err rc = kiln_awsenv_describe_tagged(w->env, "DescribeInstances", "instance-state-name",
                                            "running", &doc, err);
  cJSON *list = rc == KILN_OK ? cJSON_CreateArray() : NULL;
  const struct kiln_xml *set = list ? kiln_xml_find(doc, "reservationSet") : NULL;
  for (const struct kiln_xml *r = set ? kiln_xml_child(set, "item") : NULL; r;
       r = kiln_xml_next_same(r)) {
    const struct kiln_xml *inst = kiln_xml_child(r, "instancesSet");
    for (inst = inst ? kiln_xml_child(inst, "item") : NULL; inst; inst = kiln_xml_next_same(inst))
      cJSON_AddItemToArray(list, instance_json(inst));
  }
  kiln_xml_free(doc);
  w->state[i] = list;
  return rc;
}

static kiln_err instances_nothing(struct kiln_walk *w, struct kiln_error *err)
{
  (void)w;
  (void)err;
  return KILN_OK;
}

static int instances_exist(const struct kiln_walk *w)
{
  (void)w;
  return 0; /* the group's instances; they alone never make a deployment */
}

static void instances_fields(const struct kiln_walk *w, cJSON *meta)
{
  int i = index_of_kind();
  if (i >= 0 && w->state[i])
    cJSON_AddItemToObject(meta, "instance_details", cJSON_Duplicate(w->state[i], 1));
}

static void instances_clear(struct kiln_walk *w)
{
  int i = index_of_kind();
  if (i >= 0) {
    cJSON_Delete(w->state[i]);
    w->state[i] = NULL;
  }
}

const struct kiln_aws_resource kiln_res_instances = {
    .name = "instances",
    .find = instances_find,
    .ensure = instances_nothing,
    .exists = instances_exist,
    .fields = instances_fields,
    .teardown = instances_nothing,
    .clear = instances_clear,
};
