#!/usr/bin/env python3
"""The scoped policies, evaluated by an independent IAM simulator (@cloud-copilot/iam-simulate via
simulate.mjs): kiln sets a deployment up on moto's server, `kiln setup --print-policy --json`
renders its deploy, instance-role and bucket policies, and
every row of calls.json is decided: the calls kiln makes with the deploy credentials allowed,
setup's calls and the attacks of the `denied` list refused. Prints the table.

update_policy_migrates: a deployment whose deploy user, CI role and instance role carry the
policies of kiln before issue 15 (the *-before-issue-15.json.tmpl files, rendered as that kiln
did): `kiln update-policy` shows the changed statements, writes kiln's policies, and a second run
changes nothing.

Usage: test_policy.py KILN SERVER_DIR NODE_DIR CASE   (CASE: table | unknown_keys_fail |
       update_policy_migrates | refuses_without_network | deploy_without_group_says_setup)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from kilntest import check, run_case, server_env  # noqa: E402

KILN, SERVER_DIR, NODE_DIR, CASE = sys.argv[1:5]
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix="kiln-policy-test-")
APP = os.path.join(WORK, "app")
ADMIN = {"AWS_ACCESS_KEY_ID": "AKIDADMINTEST", "AWS_SECRET_ACCESS_KEY": "admin-secret"}
MOTO = server_env(SERVER_DIR, "moto-aws")["URL"]


def kiln(*args, raw=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEPLOYMENT_ID"}
    env.update(ADMIN, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=MOTO, HOME=WORK, NO_COLOR="1",
               KILN_CACHE_DIR=os.path.join(WORK, "cache"), AWS_EC2_METADATA_DISABLED="true")
    p = subprocess.run([KILN, "-C", APP] + list(args), env=env, capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, "kiln %s: exit %d\n%s" % (" ".join(args), p.returncode, p.stderr[-3000:]))
    return p if raw else json.loads(p.stdout)


def simulate(doc):
    """Run simulate.mjs beside the evaluator's node_modules (ESM resolves packages from the
    script's own directory); returns (exit code, output)."""
    script = os.path.join(NODE_DIR, "kiln-simulate-%d.mjs" % os.getpid())
    shutil.copyfile(os.path.join(HERE, "simulate.mjs"), script)
    path = os.path.join(WORK, "cases.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    try:
        p = subprocess.run(["node", script, path], capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(script)
    return p.returncode, p.stdout + p.stderr


def deployment(*setup_args):
    """Set a deployment up; its values and rendered policies."""
    os.makedirs(APP, exist_ok=True)
    with open(os.path.join(APP, "kiln.json"), "w") as f:
        json.dump({"name": "hello", "aws": {"ports": [8080]}, "enclave": {"cpus": 2, "memory_mib": 1024}}, f)
    setup = kiln("setup", "--json", *setup_args)
    shown = kiln("setup", "--print-policy", "--json")
    v = {"account": shown["account_id"], "region": shown["region"], "dep": shown["deployment_id"],
         "tag": shown["tag_key"], "bucket": shown["bucket"], "asg": shown["asg_name"],
         "role": shown["instance_role"], "user": shown["deploy_user"], "vpc": setup["vpc_id"],
         "subnet": setup["subnet_ids"][0], "sg": setup["security_group_id"], "lt": setup["launch_template_id"]}
    v["profile"] = "arn:aws:iam::%s:instance-profile/%s" % (v["account"], v["role"])
    v["asg_arn"] = ("arn:aws:autoscaling:%s:%s:autoScalingGroup:11111111-2222-3333-4444-555555555555:"
                    "autoScalingGroupName/%s" % (v["region"], v["account"], v["asg"]))
    policies = {"deploy": shown["policy"], "instance": shown["instance_role_policy"], "bucket": shown["bucket_policy"],
                "user": inline_policies(iam_client(), "user", v["user"]).get("kiln-assume-deploy-role")}
    return v, policies


def iam_client():
    import boto3
    return boto3.client("iam", endpoint_url=MOTO, region_name="us-east-1", aws_access_key_id=ADMIN["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=ADMIN["AWS_SECRET_ACCESS_KEY"])


def inline_policies(iam, kind, name):
    """{policy name: document} of the user's or role's inline policies as attached."""
    out = {}
    if kind == "user":
        for n in iam.list_user_policies(UserName=name)["PolicyNames"]:
            out[n] = iam.get_user_policy(UserName=name, PolicyName=n)["PolicyDocument"]
    else:
        for n in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            out[n] = iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"]
    return {n: json.loads(d) if isinstance(d, str) else d for n, d in out.items()}


# IAM's size limits, counted without whitespace: all inline policies of a user together 2,048
# characters, of a role 10,240, a role's trust policy 2,048 (IAM User Guide, "IAM and AWS STS
# quotas").
INLINE_LIMIT = {"user": 2048, "role": 10240}


def iam_size(doc):
    return len(re.sub(r"\s", "", json.dumps(doc, separators=(",", ":"))))


def check_inline_sizes(v):
    """Every user and role of the deployment: its inline policies fit IAM's limit. Prints the sizes."""
    iam = iam_client()
    owners = [("user", v["user"]), ("role", v["user"] + "-role"), ("role", v["user"] + "-ci"), ("role", v["role"])]
    for kind, name in owners:
        try:
            docs = inline_policies(iam, kind, name)
        except iam.exceptions.NoSuchEntityException:
            continue
        sizes = {n: iam_size(d) for n, d in docs.items()}
        total = sum(sizes.values())
        print("%s %s: inline policies %s = %d characters without whitespace (limit %d)" % (
            kind, name, sizes, total, INLINE_LIMIT[kind]))
        check(total <= INLINE_LIMIT[kind], "%s %s: inline policies of %d characters exceed IAM's %d" % (
            kind, name, total, INLINE_LIMIT[kind]))
        if kind == "role":  # a role's trust policy: 2,048 by default
            trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
            size = iam_size(json.loads(trust) if isinstance(trust, str) else trust)
            print("role %s: trust policy %d characters without whitespace (limit 2048)" % (name, size))
            check(size <= 2048, "role %s: a trust policy of %d characters exceeds IAM's 2048" % (name, size))


def fill(x, v):
    if isinstance(x, str):
        for k, val in v.items():
            x = x.replace("{%s}" % k, val)
        return x
    if isinstance(x, list):
        return [fill(i, v) for i in x]
    if isinstance(x, dict):
        return {fill(k, v): fill(i, v) for k, i in x.items()}
    return x


def cases(table, v):
    out = []
    for row in table["calls"]:
        if row["creds"] == "user":  # authorized by a role's trust, not by these policies
            continue
        principal = {"instance": "instance", "deploy-user": "user"}.get(row["creds"], "deploy")
        expect = ("allow" if row["creds"] in ("deploy", "instance", "deploy-user") or row.get("allowed_for_deploy")
                  else "deny")
        reqs = [{"action": row["action"], "resource": row["resource"], "ctx": row.get("ctx", {})}]
        reqs += [{"action": a, "resource": r, "ctx": c} for a, r, c in row.get("also", [])]
        what = "%s call %s" % ("kiln's" if expect == "allow" else "setup's", row["api"])
        out.append({"case": what, "principal": principal, "expect": expect, "requests": fill(reqs, v)})
    for row in table["denied"]:
        out.append({"case": row["case"], "principal": row.get("principal", "deploy"), "expect": "deny",
                    "requests": fill([{"action": row["action"], "resource": row["resource"],
                                       "ctx": row.get("ctx", {})}], v)})
    return out


def document(v, policies, table):
    return {"policies": policies, "account": v["account"], "bucket": v["bucket"],
            "principals": {"deploy": "arn:aws:sts::%s:assumed-role/%s-role/kiln-1" % (v["account"], v["user"]),
                           "user": "arn:aws:iam::%s:user/%s" % (v["account"], v["user"]),
                           "instance": "arn:aws:sts::%s:assumed-role/%s/i-0123456789abcdef0" % (v["account"], v["role"])},
            "cases": cases(table, v)}


def load_table():
    with open(os.path.join(HERE, "calls.json")) as f:
        return json.load(f)


def case_table():
    v, policies = deployment("--github-repo", "example-org/app", "--github-ref", "refs/heads/main")
    code, out = simulate(document(v, policies, load_table()))
    print(out)
    for name, doc in sorted(policies.items()):
        print("%s policy: %d characters without whitespace" % (name, iam_size(doc)))
    check_inline_sizes(v)
    check(code == 0, "every call kiln makes is allowed and every listed attack denied (see the table)")
    for sid in ("ThisGroupOnANumberedVersionInItsSubnets", "LaunchFromThisTemplateOnly",
                "LatestAmazonLinuxAmiParameterOnly", "PassOnlyTheInstanceRole"):
        check(sid in out, "the table names statement %s as decisive somewhere" % sid)


def case_unknown_keys_fail():
    """The checks can fail: a policy conditioning on a key AWS does not have for the action
    (autoscaling:LaunchTemplate does not exist), and a request context with one, are problems."""
    v, policies = deployment()
    bad = json.loads(json.dumps(policies))
    for st in bad["deploy"]["Statement"]:
        if st.get("Sid") == "ThisGroupOnANumberedVersionInItsSubnets":
            st["Condition"]["ArnEquals"] = {"autoscaling:LaunchTemplate": "arn:aws:ec2:*:*:launch-template/x"}
    table = {"calls": [], "denied": [{"case": "invented key", "action": "autoscaling:StartInstanceRefresh",
                                      "resource": "{asg_arn}", "ctx": {"autoscaling:DesiredLaunchTemplate": "$Latest"}}]}
    code, out = simulate(document(v, bad, table))
    print(out)
    check(code == 1, "an unknown condition key fails the run: exit %d" % code)
    check("condition key autoscaling:LaunchTemplate is not one autoscaling:UpdateAutoScalingGroup has" in out,
          "the policy's invented key is named")
    check("context key autoscaling:DesiredLaunchTemplate is not one AWS sends" in out,
          "the request's invented key is named")


def case_refuses_without_network():
    """No silent "*": with the deployment's launch template gone, update-policy refuses to render
    (and attach) a policy, naming what is missing and `kiln setup`; print-policy shows a preview."""
    import boto3
    v, _ = deployment()
    boto3.client("ec2", endpoint_url=MOTO, region_name="us-east-1", aws_access_key_id=ADMIN["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=ADMIN["AWS_SECRET_ACCESS_KEY"]).delete_launch_template(LaunchTemplateId=v["lt"])
    env = {k: val for k, val in os.environ.items() if not k.startswith("AWS_")}
    env.update(ADMIN, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=MOTO, HOME=WORK, NO_COLOR="1",
               AWS_EC2_METADATA_DISABLED="true")
    p = subprocess.run([KILN, "-C", APP, "update-policy"], env=env, capture_output=True, text=True, timeout=300)
    print(p.stderr)
    check(p.returncode == 1 and "has no launch template" in p.stderr and "run `kiln setup`" in p.stderr,
          "update-policy without the launch template refuses: exit %d" % p.returncode)
    preview = subprocess.run([KILN, "-C", APP, "setup", "--print-policy"], env=env, capture_output=True, text=True,
                             timeout=300)
    check(preview.returncode == 0 and "lt-CREATED-BY-SETUP" in preview.stdout and "placeholders" in preview.stderr,
          "print-policy previews with a named placeholder: %s" % preview.stderr[-300:])


def case_deploy_without_group_says_setup():
    """A deploy path that needs setup's rights (the Auto Scaling group is gone) ends with "run
    `kiln setup`" before any call the scoped credentials could not make."""
    import boto3
    v, _ = deployment("--credentials-file", "deploy.env")
    boto3.client("autoscaling", endpoint_url=MOTO, region_name="us-east-1",
                 aws_access_key_id=ADMIN["AWS_ACCESS_KEY_ID"], aws_secret_access_key=ADMIN["AWS_SECRET_ACCESS_KEY"]
                 ).delete_auto_scaling_group(AutoScalingGroupName=v["asg"], ForceDelete=True)
    d = os.path.join(WORK, "eif")
    os.makedirs(d)
    for part, size in (("kernel", 300000), ("boot", 200000)):
        with open(os.path.join(d, part), "wb") as f:
            f.write(bytes((i * 7 + 3) % 251 for i in range(size)))
    eif = os.path.join(APP, "p.eif")
    subprocess.run([KILN, "eif-build", "--kernel", os.path.join(d, "kernel"), "--cmdline", "console=ttyS0",
                    "--ramdisk", os.path.join(d, "boot"), "--output", eif], check=True, capture_output=True)
    with open(os.path.join(APP, "deploy.env")) as f:
        scoped = dict(l.strip().split("=", 1) for l in f if "=" in l and not l.startswith("#"))
    env = {k: val for k, val in os.environ.items() if not k.startswith("AWS_")}
    env.update(scoped, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=MOTO, HOME=WORK, NO_COLOR="1",
               KILN_CACHE_DIR=os.path.join(WORK, "cache"), AWS_EC2_METADATA_DISABLED="true")
    p = subprocess.run([KILN, "-C", APP, "deploy", "--eif", eif], env=env, capture_output=True, text=True, timeout=300)
    print(p.stderr[-800:])
    check(p.returncode == 1 and "has no Auto Scaling group" in p.stderr and "run `kiln setup`" in p.stderr
          and "AccessDenied" not in p.stderr, "deploy without the group says run `kiln setup`: exit %d" % p.returncode)


def case_update_policy_migrates():
    import boto3
    v, _ = deployment("--github-repo", "example-org/app", "--github-ref", "refs/heads/main")
    iam = boto3.client("iam", endpoint_url=MOTO, region_name="us-east-1",
                       aws_access_key_id=ADMIN["AWS_ACCESS_KEY_ID"], aws_secret_access_key=ADMIN["AWS_SECRET_ACCESS_KEY"])
    old = {}
    for name in ("deploy", "instance-role"):
        with open(os.path.join(HERE, "%s-policy-before-issue-15.json.tmpl" % name)) as f:
            text = f.read()
        for key, value in {"deployment_id": v["dep"], "tag_key": v["tag"], "region": v["region"],
                           "account_id": v["account"], "vpc_id": v["vpc"], "bucket": v["bucket"],
                           "asg_name": v["asg"], "instance_role": v["role"]}.items():
            text = text.replace("{{%s}}" % key, value)
        old[name] = json.dumps(json.loads(text))
    # kiln before the deploy role: no role, the deploy policy on the user itself
    iam.delete_role_policy(RoleName=v["user"] + "-role", PolicyName="kiln-deploy")
    iam.delete_role(RoleName=v["user"] + "-role")
    iam.delete_user_policy(UserName=v["user"], PolicyName="kiln-assume-deploy-role")
    iam.put_user_policy(UserName=v["user"], PolicyName="kiln-deploy", PolicyDocument=old["deploy"])
    iam.put_role_policy(RoleName=v["user"] + "-ci", PolicyName="kiln-deploy", PolicyDocument=old["deploy"])
    iam.put_role_policy(RoleName=v["role"], PolicyName="kiln-read-eifs", PolicyDocument=old["instance-role"])
    p = kiln("update-policy", raw=True)
    print(p.stderr)
    text = p.stderr
    for change in ("added statement ThisGroupOnANumberedVersionInItsSubnets", "removed statement ThisAutoScalingGroupOnly",
                   "removed statement ReadOnlyDescribe", "added statement LatestAmazonLinuxAmiParameterOnly",
                   "removed statement ManageTaggedSecurityGroupRules", "changed statement EifObjectsInTheDeploymentBucket",
                   "added statement LaunchAmazonImages"):
        check(change in text, "update-policy shows: %s" % change)
    for change in ("create %s-role" % v["user"], "delete %s" % v["user"]):
        check(change in text, "update-policy moves the policy to the deploy role: %s" % change)
    check(list(inline_policies(iam, "user", v["user"])) == ["kiln-assume-deploy-role"],
          "the deploy user keeps only its assume-role policy")
    check_inline_sizes(v)

    def attached():
        user = iam.get_role_policy(RoleName=v["user"] + "-role", PolicyName="kiln-deploy")["PolicyDocument"]
        role = iam.get_role_policy(RoleName=v["user"] + "-ci", PolicyName="kiln-deploy")["PolicyDocument"]
        inst = iam.get_role_policy(RoleName=v["role"], PolicyName="kiln-read-eifs")["PolicyDocument"]
        return [json.loads(d) if isinstance(d, str) else d for d in (user, role, inst)]
    user, role, inst = attached()
    shown = kiln("setup", "--print-policy", "--json")
    check(user == shown["policy"] and role == shown["policy"], "the deploy role and the CI role carry kiln's policy")
    check(inst == shown["instance_role_policy"], "the instance role carries kiln's policy")
    again = kiln("update-policy", "--json")
    check(again.get("policy_changes") == [] and again.get("changes") == 0,
          "a second update-policy changes nothing: %s changes, %s" % (again.get("changes"), again.get("policy_changes")))


run_case(globals(), CASE, WORK)
