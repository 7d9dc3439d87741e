#!/usr/bin/env python3
"""kiln setup / deploy / plan / status / update-policy / teardown against moto's server (with our
instance-refresh extension) on 127.0.0.1, through the fault proxy that counts mutating calls.

Usage: test_byoc.py KILN SERVER_DIR CASE
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from kilntest import check, faultproxy, faultproxy_configure, run_case, server_env  # noqa: E402

import boto3  # noqa: E402

KILN, SERVER_DIR, CASE = sys.argv[1:4]
WORK = tempfile.mkdtemp(prefix="kiln-byoc-test-")
APP = os.path.join(WORK, "app")
TAG = "caution:deployment-id"
OTHER_ACCOUNT = "111111111111"
ADMIN = {"AWS_ACCESS_KEY_ID": "AKIDADMINTEST", "AWS_SECRET_ACCESS_KEY": "admin-secret"}


def env_of(name):
    return server_env(SERVER_DIR, name)


MOTO = env_of("moto-aws")["URL"]
PROXY = env_of("faults-aws")["URL"]


def proxy(path, doc=None):
    return faultproxy(PROXY, path, doc)


def configure(**settings):
    faultproxy_configure(PROXY, **settings)


def client(service, creds=ADMIN, url=MOTO, region="us-east-1"):
    return boto3.client(service, endpoint_url=url, region_name=region,
                        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=creds.get("AWS_SESSION_TOKEN"))


def other_account():
    """Credentials of another AWS account (moto: a role assumed there)."""
    c = client("sts").assume_role(RoleArn="arn:aws:iam::%s:role/other" % OTHER_ACCOUNT,
                                  RoleSessionName="kiln-test")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
            "AWS_SESSION_TOKEN": c["SessionToken"]}


def kiln_env(creds=ADMIN, endpoint=None, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEPLOYMENT_ID"}
    env.update(creds)
    env.update(AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint or PROXY, HOME=WORK,
               KILN_CACHE_DIR=os.path.join(WORK, "cache"), AWS_EC2_METADATA_DISABLED="true",
               NO_COLOR="1")
    env.update(extra)
    return env


def kiln(*args, env=None, timeout=300):
    return subprocess.run([KILN, "-C", APP] + list(args), env=env or kiln_env(),
                          capture_output=True, text=True, timeout=timeout)


def ok(proc, what):
    check(proc.returncode == 0, "%s: exit %d\n%s" % (what, proc.returncode, proc.stderr[-3000:]))
    try:
        return json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    except json.JSONDecodeError:
        return {}


def fails(proc, needle, what, code=1):
    text = proc.stdout + proc.stderr
    check(proc.returncode == code, "%s: exit %d (want %d)\n%s" % (what, proc.returncode, code, text[-1500:]))
    check(needle in text, "%s: should say %r, got:\n%s" % (what, needle, text[-1500:]))


def make_app(ports=(8080,), extra=None):
    os.makedirs(APP, exist_ok=True)
    doc = {"name": "hello", "aws": {"ports": list(ports)}, "enclave": {"cpus": 2, "memory_mib": 1024}}
    doc.update(extra or {})
    with open(os.path.join(APP, "kiln.json"), "w") as f:
        json.dump(doc, f)


def make_eif(name, seed):
    """A small real EIF (random kernel and ramdisk bytes) made with `kiln eif-build`."""
    d = os.path.join(WORK, "eif-" + name)
    os.makedirs(d, exist_ok=True)
    for part, size in (("kernel", 300000), ("boot", 200000), ("app", 500000)):
        with open(os.path.join(d, part), "wb") as f:
            f.write(os.urandom(size) if seed is None else bytes((i * seed + 7) % 251 for i in range(size)))
    out = os.path.join(APP, name + ".eif")
    subprocess.run([KILN, "eif-build", "--kernel", os.path.join(d, "kernel"), "--cmdline", "console=ttyS0",
                    "--ramdisk", os.path.join(d, "boot"), "--ramdisk", os.path.join(d, "app"),
                    "--output", out], check=True, capture_output=True)
    return out


def deployment_id():
    with open(os.path.join(APP, ".env")) as f:
        ids = [l.split("=", 1)[1].strip() for l in f if l.startswith("DEPLOYMENT_ID=")]
    check(len(ids) == 1, "one DEPLOYMENT_ID line in .env: %s" % ids)
    return ids[-1] if ids else ""


def scoped_creds():
    with open(os.path.join(APP, "deploy.env")) as f:
        return dict(l.strip().split("=", 1) for l in f if "=" in l and not l.startswith("#"))


def tagged(dep):
    """Every resource carrying the deployment tag, by kind (moto's own Describe* calls)."""
    ec2 = client("ec2")
    flt = [{"Name": "tag:" + TAG, "Values": [dep]}]
    found = {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=flt)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=flt)["Subnets"]],
        "gateways": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=flt)["InternetGateways"]],
        "route_tables": [r["RouteTableId"] for r in ec2.describe_route_tables(Filters=flt)["RouteTables"]],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]],
        "addresses": [a["AllocationId"] for a in ec2.describe_addresses(Filters=flt)["Addresses"]],
        "launch_templates": [t["LaunchTemplateId"] for t in ec2.describe_launch_templates(Filters=flt)["LaunchTemplates"]],
        "instances": [i["InstanceId"] for r in ec2.describe_instances(Filters=flt + [
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
            for i in r["Instances"]],
    }
    asg = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[dep])["AutoScalingGroups"]
    found["groups"] = [g["AutoScalingGroupName"] for g in asg]
    elb = client("elbv2")
    lbs = [l["LoadBalancerArn"] for l in elb.describe_load_balancers()["LoadBalancers"]]
    tgs = [g["TargetGroupArn"] for g in elb.describe_target_groups()["TargetGroups"]]
    tags = elb.describe_tags(ResourceArns=lbs + tgs)["TagDescriptions"] if lbs + tgs else []
    ours = {t["ResourceArn"] for t in tags if {"Key": TAG, "Value": dep} in t["Tags"]}
    found["load_balancers"] = [a for a in lbs if a in ours]
    found["target_groups"] = [a for a in tgs if a in ours]
    iam = client("iam")
    found["roles"] = [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(dep)]
    found["users"] = [u["UserName"] for u in iam.list_users()["Users"] if u["UserName"].startswith(dep)]
    found["buckets"] = [b["Name"] for b in client("s3").list_buckets()["Buckets"] if b["Name"].startswith(dep)]
    return found


def awscli_vpcs(dep):
    """Second opinion from the AWS CLI (Debian's awscli)."""
    env = kiln_env(endpoint=MOTO, AWS_DEFAULT_REGION="us-east-1")
    out = subprocess.run(["aws", "--endpoint-url", MOTO, "ec2", "describe-vpcs", "--filters",
                          "Name=tag:%s,Values=%s" % (TAG, dep), "--output", "json"],
                         env=env, capture_output=True, text=True)
    check(out.returncode == 0, "awscli describe-vpcs: %s" % out.stderr[-500:])
    return json.loads(out.stdout or "{}").get("Vpcs", [])


def plan_actions(proc):
    doc = ok(proc, "plan")
    return [a for s in doc.get("steps", []) for a in s.get("actions", [])]


# --- cases -----------------------------------------------------------------------------------

def case_end_to_end():
    make_app(ports=(8080, 443))
    configure()
    fresh = plan_actions(kiln("plan", "--action", "setup", "--json"))
    check(any(a["action"] == "create" for a in fresh), "a fresh account's plan creates things")
    print("plan for a fresh account:\n" + "\n".join("  %(action)-7s %(resource)s" % a for a in fresh))
    check(proxy("stats")["mutating"] == 0, "plan made no mutating call")
    setup = ok(kiln("setup", "--credentials-file", "deploy.env", "--json"), "setup")
    dep = deployment_id()
    check(setup.get("deployment_id") == dep, "setup reports the id it wrote to .env")
    mode = os.stat(os.path.join(APP, "deploy.env")).st_mode & 0o777
    check(mode == 0o600, "credentials file is 0600, got %o" % mode)
    creds = scoped_creds()
    check(creds.get("AWS_SECRET_ACCESS_KEY", "") not in json.dumps(setup), "secret not printed")
    found = tagged(dep)
    check(len(found["vpcs"]) == 1 and len(found["subnets"]) == 3 and len(found["security_groups"]) == 1,
          "network created once: %s" % found)
    ingress = client("ec2").describe_security_groups(GroupIds=found["security_groups"])["SecurityGroups"][0]
    check(sorted(p["FromPort"] for p in ingress["IpPermissions"]) == [443, 8080], "ports open")
    bucket = setup.get("bucket")
    s3 = client("s3")
    check(s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled", "versioning on")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    check(any("AbortIncompleteMultipartUpload" in r for r in rules), "lifecycle aborts uploads")
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    check(all(pab.values()), "public access blocked")

    check(creds.get("AWS_ROLE_ARN", "").endswith(":role/%s-deploy-role" % dep),
          "the credentials file names the deploy role: %s" % creds.get("AWS_ROLE_ARN"))
    iam = client("iam")
    user_policies = iam.list_user_policies(UserName=dep + "-deploy")["PolicyNames"]
    check(user_policies == ["kiln-assume-deploy-role"], "the user's only policy assumes the role: %s" % user_policies)
    trust = iam.get_role(RoleName=dep + "-deploy-role")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    check([s["Principal"] for s in trust["Statement"]] ==
          [{"AWS": "arn:aws:iam::%s:user/%s-deploy" % (setup.get("account_id"), dep)}],
          "the deploy role trusts exactly the deploy user: %s" % trust)

    eif_a = make_eif("a", 3)
    configure()
    d1 = ok(kiln("deploy", "--eif", eif_a, "--json", env=kiln_env(creds)), "deploy A")
    check(proxy("stats")["operations"].get("AssumeRole", 0) >= 1,
          "deploy assumed the deploy role: %s" % proxy("stats")["operations"])
    check(d1.get("launch_template_version") == 2, "deploy adds version 2: %s" % d1.get("launch_template_version"))
    check(len(d1.get("instance_ids", [])) == 1 and d1.get("eip"), "one instance with the EIP: %s" % d1)
    check(d1.get("measurements", {}).get("PCR0"), "PCRs in the deployment")
    versions = client("ec2").describe_launch_template_versions(
        LaunchTemplateId=d1["launch_template_id"], Versions=["$Latest"])["LaunchTemplateVersions"]
    check(versions[0]["LaunchTemplateData"].get("EnclaveOptions", {}).get("Enabled") is True,
          "EnclaveOptions.Enabled in the launch template")
    configure()
    again = plan_actions(kiln("plan", "--eif", eif_a, "--json", env=kiln_env(creds)))
    check(all(a["action"] in ("nothing", "call") for a in again), "plan after deploy: nothing: %s" % again)
    print("plan when up to date:\n" + "\n".join("  %(action)-7s %(resource)s" % a for a in again))
    ok(kiln("deploy", "--eif", eif_a, "--json", env=kiln_env(creds)), "deploy A again")
    check(proxy("stats")["mutating"] == 0, "re-deploy made no mutating call: %s" % proxy("stats")["operations"])

    eif_b = make_eif("b", 5)
    d2 = ok(kiln("deploy", "--eif", eif_b, "--json", env=kiln_env(creds)), "deploy B")
    check(d2.get("launch_template_version") == 3, "new version 3 for the new EIF")
    asg = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[dep])["AutoScalingGroups"][0]
    check(asg["LaunchTemplate"]["Version"] == "3", "group runs version 3: %s" % asg["LaunchTemplate"])
    check(d2.get("instance_refresh") == "Successful", "instance refresh ran: %s" % d2.get("instance_refresh"))
    check(d2.get("eif_sha256") != d1.get("eif_sha256"), "the new EIF is deployed")

    st = ok(kiln("status", "--json", env=kiln_env(creds)), "status")
    check(st.get("launch_template_version") == 3 and st.get("eip") == d2.get("eip"), "status: %s" % st)
    check(st.get("eif_sha256") == d2.get("eif_sha256") and st.get("eif_key") == d2.get("eif_key"),
          "status names the deployed EIF: %s" % st)
    check(st.get("measurements", {}).get("PCR0") == d2.get("measurements", {}).get("PCR0"),
          "status shows the deployed PCRs (from the object's metadata)")
    up = ok(kiln("update-policy", "--json"), "update-policy (nothing to change)")
    check(up.get("policy_changes") == [] and up.get("changes") == 0, "policy up to date: %s" % up.get("policy_changes"))
    # someone widened the deploy policy by hand: update-policy shows the difference and restores it
    iam = client("iam")
    user = dep + "-deploy"
    doc = iam.get_role_policy(RoleName=user + "-role", PolicyName="kiln-deploy")["PolicyDocument"]
    doc["Statement"].append({"Sid": "HandMade", "Effect": "Allow", "Action": "iam:*", "Resource": "*"})
    iam.put_role_policy(RoleName=user + "-role", PolicyName="kiln-deploy", PolicyDocument=json.dumps(doc))
    proc = kiln("update-policy", "--json")
    up = ok(proc, "update-policy after a hand edit")
    check([(c["change"], c["statement"]) for c in up.get("policy_changes", [])] == [("removed", "HandMade")],
          "the diff names the hand-made statement: %s" % up.get("policy_changes"))
    check("removed statement HandMade" in proc.stderr, "the diff is shown: %s" % proc.stderr[-600:])
    restored = iam.get_role_policy(RoleName=user + "-role", PolicyName="kiln-deploy")["PolicyDocument"]
    check(not any(st.get("Sid") == "HandMade" for st in restored["Statement"]), "policy restored")
    ok(kiln("teardown", "--yes", "--delete-bucket", "--json"), "teardown")
    left = {k: v for k, v in tagged(dep).items() if v}
    check(not left, "nothing with the tag remains: %s" % left)
    check(awscli_vpcs(dep) == [], "awscli sees no tagged VPC either")
    ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown again is safe")


def case_zero_mutation_setup():
    make_app()
    configure()
    ok(kiln("setup", "--credentials-file", "deploy.env"), "setup")
    configure()
    r = ok(kiln("setup", "--credentials-file", "deploy.env", "--json"), "setup again")
    stats = proxy("stats")
    check(stats["mutating"] == 0, "second setup: zero mutating calls, got %d: %s" % (
        stats["mutating"], [e for e in stats["log"] if e["status"] and e["method"] != "GET"][:10]))
    check(r.get("changes") == 0, "setup reports no change")
    print("second setup: %d calls, %d mutating" % (stats["requests"], stats["mutating"]))
    ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown")


def interrupted_setup(kill_at):
    make_app()
    dotenv = os.path.join(APP, ".env")
    if os.path.exists(dotenv):
        os.remove(dotenv)
    configure(kind="delay", rate=1.0, delay_ms=120)
    proc = subprocess.Popen([KILN, "-C", APP, "setup", "--credentials-file", "deploy.env"],
                            env=kiln_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and proxy("stats")["mutating"] < kill_at:
        time.sleep(0.05)
    check(proc.poll() is None, "setup was still running when killed (exit %s, %d mutating calls): %s" % (
        proc.poll(), proxy("stats")["mutating"], proc.stderr.read().decode()[-1500:] if proc.poll() is not None else ""))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    dep = deployment_id()
    configure()
    ok(kiln("setup", "--credentials-file", "deploy.env"), "setup after the kill")
    found = tagged(dep)
    want = {"vpcs": 1, "subnets": 3, "gateways": 1, "route_tables": 1, "security_groups": 1,
            "addresses": 1, "launch_templates": 1, "groups": 1, "roles": 2, "users": 1, "buckets": 1}
    counts = {k: len(found[k]) for k in want}
    check(counts == want, "killed after %d changes: end state after the re-run, nothing twice: %s" % (
        kill_at, counts))
    configure()
    ok(kiln("setup", "--credentials-file", "deploy.env"), "third setup")
    check(proxy("stats")["mutating"] == 0, "killed after %d changes: the third setup changes nothing" % kill_at)
    ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown")
    check(not any(tagged(dep).values()), "teardown after an interrupted setup removes everything")


def case_interrupted_setup():
    # in the bucket's settings, in the network, in IAM, between the deploy role and its policy
    # (setup makes about 37 changes)
    for kill_at in (3, 10, 26, 34):
        interrupted_setup(kill_at)


def case_bad_input():
    make_app()
    configure()
    env = kiln_env()
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    fails(kiln("setup", env=env), "no AWS credentials", "no credentials")
    fails(kiln("deploy", "--eif", make_eif("x", 2)), "run `kiln setup`", "deploy before setup")
    fails(kiln("setup", env=kiln_env(VPC_ID="vpc-0000000000")), "does not exist", "unknown VPC_ID")
    # a region without Nitro Enclave-capable types (moto offers no instance type in mx-central-1)
    dotenv = os.path.join(APP, ".env")
    if os.path.exists(dotenv):
        os.remove(dotenv)
    fails(kiln("setup", env=kiln_env(AWS_REGION="mx-central-1")),
          "region mx-central-1 offers none of the Nitro Enclave-capable", "region without Nitro types")
    check(not os.path.exists(dotenv), "no deployment id recorded for the refused region")
    check(not client("ec2", region="mx-central-1").describe_vpcs(
        Filters=[{"Name": "tag-key", "Values": [TAG]}])["Vpcs"], "nothing created in mx-central-1")
    # the bucket name is taken by another account: refused before anything is created
    other = other_account()
    client("s3", other).create_bucket(Bucket="kiln-taken-123456789012")
    fails(kiln("setup", env=kiln_env(DEPLOYMENT_ID="kiln-taken")),
          "bucket name kiln-taken-123456789012 is taken by another AWS account", "bucket name taken")
    check(not any(tagged("kiln-taken").values()), "nothing created for kiln-taken: %s" % tagged("kiln-taken"))
    fails(kiln("teardown", "--yes", "--delete-bucket", env=kiln_env(DEPLOYMENT_ID="kiln-taken")),
          "", "teardown of the refused id", code=0)
    check(client("s3", other).head_bucket(Bucket="kiln-taken-123456789012"),
          "teardown left the other account's bucket alone")
    fails(kiln("status", env=kiln_env(DEPLOYMENT_ID="Bad_Id!")), "deployment id", "bad id characters")
    make_app(ports=(0, 70000))
    fails(kiln("setup"), "/aws/ports/0", "invalid port", code=1)
    make_app()
    fails(kiln("teardown"), "--yes", "teardown without --yes", code=2)
    ok(kiln("setup", "--credentials-file", "deploy.env"), "setup")
    # credentials of another account for this deployment: told so, nothing created there
    proc = kiln("deploy", "--eif", make_eif("w", 9), env=kiln_env(other))
    fails(proc, OTHER_ACCOUNT, "deploy with another account's credentials")
    check("account" in proc.stderr and "kiln setup" in proc.stderr, "says what to do: %s" % proc.stderr[-800:])
    fails(kiln("status", env=kiln_env(other)), OTHER_ACCOUNT, "status with another account's credentials")
    configure(kind="respond", first_n=1, match="UpdateAutoScalingGroup",
              respond={"status": 400, "body": "<ErrorResponse><Error><Code>VcpuLimitExceeded</Code>"
                       "<Message>You have requested more vCPU capacity than your current vCPU limit"
                       "</Message></Error><RequestId>Q1</RequestId></ErrorResponse>"})
    fails(kiln("deploy", "--eif", make_eif("q", 4), env=kiln_env(scoped_creds())),
          "VcpuLimitExceeded", "quota error")
    configure()
    ok(kiln("deploy", "--eif", make_eif("q", 4), env=kiln_env(scoped_creds())), "deploy after the quota error")
    ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown")


def case_github_actions_example():
    """The shipped CI examples' command sequence: a clean checkout (only kiln.json and the .env
    setup wrote), web-identity credentials from the CI's OIDC token file, `kiln deploy --json`."""
    make_app()
    configure()
    fails(kiln("setup", "--github-repo", "org/*"), "github_repo \"org/*\": give OWNER/REPO", "a wildcard repository")
    fails(kiln("setup", "--github-repo", "org/app:ref:*"), "give OWNER/REPO", "a wildcard in the subject")
    fails(kiln("setup", "--gitlab-project", "group/app", "--gitlab-url", "http://gitlab.example.com"),
          "give the instance's https:// address", "a GitLab URL without TLS")
    fails(kiln("setup", "--gitlab-project", "group/app", "--github-repo", "org/app"), "keep one",
          "two CI systems")
    fails(kiln("setup", "--github-repo", "org/app"), "--github-ref refs/heads/main",
          "a CI role without --github-ref/--github-environment/--ci-any-ref")
    fails(kiln("setup", "--github-repo", "org/app", "--github-ref", "refs/heads/*"), "no wildcard",
          "a wildcard ref")
    fails(kiln("setup", "--github-repo", "org/app", "--github-ref", "refs/heads/main", "--ci-any-ref"),
          "give one", "two trust choices")
    check(not os.path.exists(os.path.join(APP, ".env")), "refused options create nothing, not even an id")
    setup = ok(kiln("setup", "--github-repo", "example-org/app", "--github-ref", "refs/heads/main", "--json"),
               "setup with a CI deploy role")
    role_arn = setup.get("deploy_role_arn", "")
    check(role_arn.endswith(":role/%s-deploy-ci" % deployment_id()), "setup prints the CI role: %s" % role_arn)
    role = client("iam").get_role(RoleName=role_arn.split("/")[-1])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    st = trust["Statement"][0]
    check(st["Action"] == "sts:AssumeRoleWithWebIdentity" and
          st["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com") and
          st["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"] ==
          "repo:example-org/app:ref:refs/heads/main" and
          st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com",
          "the role trusts only that repository's tokens: %s" % trust)
    providers = [p["Arn"] for p in client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    check(any(a.endswith("token.actions.githubusercontent.com") for a in providers), "OIDC provider created")
    st = ok(kiln("status", "--json"), "status")
    check(st.get("deploy_role_arn") == role_arn, "status shows the CI role: %s" % st.get("deploy_role_arn"))
    configure()
    ok(kiln("setup", "--github-repo", "example-org/app", "--github-ref", "refs/heads/main"), "setup again")
    check(proxy("stats")["mutating"] == 0, "a second setup with the CI role changes nothing: %s" % [
        e["op"] for e in proxy("stats")["log"] if e["method"] != "GET"][:20])
    share_ci = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "share", "ci")
    gh = open(os.path.join(share_ci, "github-actions.yml")).read()
    gl = open(os.path.join(share_ci, "gitlab-ci.yml")).read()
    check("kiln deploy --json" in gh and "id-token: write" in gh, "GitHub workflow deploys with OIDC")
    check("kiln deploy --json" in gl and "id_tokens:" in gl, "GitLab job deploys with OIDC")
    for wf in (gh, gl):
        check("AWS_WEB_IDENTITY_TOKEN_FILE" in wf and "AWS_ROLE_ARN" in wf, "web identity variables set")
    eif = make_eif("ci", 6)
    with open(os.path.join(APP, "kiln.json")) as f:
        doc = json.load(f)
    doc["eif"] = os.path.basename(eif)
    with open(os.path.join(APP, "kiln.json"), "w") as f:
        json.dump(doc, f)
    token = os.path.join(WORK, "oidc-token")
    with open(token, "w") as f:  # moto does not verify the token's signature
        f.write("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmV4YW1wbGUvYXBwIn0.c2lnbmF0dXJl")
    ci = kiln_env({}, AWS_ROLE_ARN=role_arn,
                  AWS_WEB_IDENTITY_TOKEN_FILE=token,
                  KILN_CACHE_DIR=os.path.join(WORK, "ci-cache"))
    configure()
    out = ok(kiln("deploy", "--json", env=ci), "kiln deploy --json as in CI")
    # one exchange per stage that talks to AWS (s3 and aws each hold their own client)
    check(proxy("stats")["operations"].get("AssumeRoleWithWebIdentity", 0) in (1, 2),
          "credentials came from the OIDC token: %s" % proxy("stats")["operations"])
    check(out.get("measurements", {}).get("PCR0") and out.get("instance_ids"), "CI output has PCRs and instances")
    ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown")
    roles = [r["RoleName"] for r in client("iam").list_roles()["Roles"]]
    check(role_arn.split("/")[-1] not in roles, "teardown deleted the CI role")


def case_build_and_deploy():
    """`kiln deploy` from the app's sources, as a CI job runs it: image -> kernel -> eif -> size ->
    s3 -> aws; the second run is all cache hits and changes nothing in AWS."""
    example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "share", "examples",
                           "hello")
    os.makedirs(os.path.join(APP, "rootfs", "bin"))
    subprocess.run([os.environ.get("CC", "cc"), "-static", "-Os", "-o", os.path.join(APP, "rootfs", "bin", "hello"),
                    os.path.join(example, "hello.c")], check=True)
    with open(os.path.join(example, "kiln.json")) as f:
        cfg = json.load(f)
    cfg["kernel"]["source"] = "debian-cloud:6.12"  # Debian's prebuilt kernel: no compile in this test
    cfg["aws"] = {"ports": [8080]}
    with open(os.path.join(APP, "kiln.json"), "w") as f:
        json.dump(cfg, f)
    configure()
    ok(kiln("setup", "--credentials-file", "deploy.env"), "setup")
    creds = scoped_creds()
    configure()
    proc = kiln("deploy", "--json", env=kiln_env(creds), timeout=900)
    d1 = ok(proc, "kiln deploy building from kiln.json")
    check(proxy("stats")["operations"].get("PutObject", 0) + proxy("stats")["operations"].get("UploadPart", 0) > 0,
          "the built EIF was uploaded")
    built = ok(kiln("build", "--json"), "kiln build after the deploy")
    pcrs = {k.upper(): v for k, v in (built.get("Measurements") or built.get("measurements") or {}).items()
            if k.upper().startswith("PCR")}
    check(pcrs.get("PCR0") and d1.get("measurements", {}).get("PCR0") == pcrs.get("PCR0"),
          "deploy reports the PCRs of the EIF kiln build makes: %s vs %s" % (d1.get("measurements"), pcrs))
    check(d1.get("eif_sha256") == built.get("sha256"), "the deployed EIF is the built one")
    configure()
    proc = kiln("deploy", "--json", env=kiln_env(creds), timeout=900)
    d2 = ok(proc, "second kiln deploy")
    for stage in ("image", "kernel", "eif"):
        check("%s: cached" % stage in proc.stderr, "%s is a cache hit the second time: %s" % (stage, proc.stderr[-800:]))
    check(proxy("stats")["mutating"] == 0, "the second deploy changes nothing: %s" % proxy("stats")["operations"])
    check(d2.get("launch_template_version") == d1.get("launch_template_version"), "same template version")
    ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown")


def case_policy_denial():
    """moto with IAM enforcement (and our resource/tag-aware evaluation, moto_scoped_iam.py): the
    scoped credentials setup wrote deploy, and reach nothing else."""
    url = env_of("moto-iam")["URL"]
    boot = client("iam", {"AWS_ACCESS_KEY_ID": "AKIDBOOT", "AWS_SECRET_ACCESS_KEY": "x"}, url)
    boot.create_user(UserName="kiln-test-admin")
    boot.put_user_policy(UserName="kiln-test-admin", PolicyName="admin", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = boot.create_access_key(UserName="kiln-test-admin")["AccessKey"]
    admin = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    make_app()
    setup = ok(kiln("setup", "--credentials-file", "deploy.env", "--github-repo", "example-org/app",
                    "--github-environment", "production", "--json",
                    env=kiln_env(admin, endpoint=url)), "setup (admin)")
    dep = deployment_id()
    scoped = scoped_creds()
    # the CI deploy role's session, as a GitHub Actions job gets it from its OIDC token (unsigned)
    ci = client("sts", admin, url).assume_role_with_web_identity(
        RoleArn=setup.get("deploy_role_arn", ""), RoleSessionName="ci",
        WebIdentityToken="eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmV4YW1wbGUtb3JnL2FwcCJ9.c2ln")["Credentials"]
    ci_role = {"AWS_ACCESS_KEY_ID": ci["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": ci["SecretAccessKey"],
               "AWS_SESSION_TOKEN": ci["SessionToken"]}
    ec2 = client("ec2", admin, url)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    other = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    client("s3", admin, url).create_bucket(Bucket="someone-elses-bucket-%s" % dep)
    lt = ec2.describe_launch_templates(LaunchTemplateNames=[dep])["LaunchTemplates"][0]["LaunchTemplateId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:" + TAG, "Values": [dep]}])["Subnets"][0]["SubnetId"]
    client("autoscaling", admin, url).create_auto_scaling_group(
        AutoScalingGroupName="other-group", LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"},
        MinSize=0, MaxSize=1, DesiredCapacity=0, VPCZoneIdentifier=subnet)

    # the deploy user's keys alone may only assume the deploy role (IAM's 2,048-character cap on a
    # user's inline policies): kiln assumes AWS_ROLE_ARN of the file; boto3 here does it by hand
    user_keys = {k: v for k, v in scoped.items() if k != "AWS_ROLE_ARN"}
    fails(kiln("deploy", "--eif", make_eif("k", 7), "--json", env=kiln_env(user_keys, endpoint=url)),
          "AccessDenied", "deploy with the user's keys without the role")
    denied_keys = client("ec2", user_keys, url)
    try:
        denied_keys.describe_instances()
        check(False, "the deploy user's keys describe instances without the role")
    except Exception as e:  # botocore ClientError
        check("not authorized" in str(e) or "UnauthorizedOperation" in str(e) or "AccessDenied" in str(e),
              "the user's keys alone are denied: %s" % str(e)[:200])
    try:
        client("sts", user_keys, url).assume_role(RoleArn="arn:aws:iam::%s:role/%s-deploy-ci" % (
            setup.get("account_id"), dep), RoleSessionName="kiln-test")
        check(False, "the deploy user assumed the CI role")
    except Exception as e:  # botocore ClientError
        check("AccessDenied" in str(e) or "not authorized" in str(e), "another role: %s" % str(e)[:200])
    s = client("sts", user_keys, url).assume_role(RoleArn=scoped["AWS_ROLE_ARN"], RoleSessionName="kiln-test")["Credentials"]
    session = {"AWS_ACCESS_KEY_ID": s["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": s["SecretAccessKey"],
               "AWS_SESSION_TOKEN": s["SessionToken"]}
    d = ok(kiln("deploy", "--eif", make_eif("p", 8), "--json", env=kiln_env(scoped, endpoint=url)),
           "deploy with the scoped credentials (the deploy role assumed)")
    check(len(d.get("instance_ids", [])) == 1, "the scoped deploy started the enclave instance")

    def denied(what, call):
        try:
            call()
        except Exception as e:  # botocore ClientError
            text = str(e)
            check("AccessDenied" in text or "UnauthorizedOperation" in text or "not authorized" in text,
                  "%s: denied, got %s" % (what, text[:300]))
            return
        check(False, "%s: should be denied for the scoped credentials" % what)

    for who, creds in (("deploy role (deploy user's session)", session), ("CI deploy role", ci_role)):
        s_ec2, s_s3 = client("ec2", creds, url), client("s3", creds, url)
        denied(who + ": terminate an untagged instance",
               lambda: s_ec2.terminate_instances(InstanceIds=[other["InstanceId"]]))
        denied(who + ": write to another bucket", lambda: s_s3.put_object(
            Bucket="someone-elses-bucket-%s" % dep, Key="x", Body=b"x"))
        denied(who + ": scale another Auto Scaling group",
               lambda: client("autoscaling", creds, url).update_auto_scaling_group(
                   AutoScalingGroupName="other-group", DesiredCapacity=1))
        denied(who + ": point the group at $Latest",
               lambda: client("autoscaling", creds, url).update_auto_scaling_group(
                   AutoScalingGroupName=dep, LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Latest"},
                   MinSize=1, MaxSize=2))
        denied(who + ": grow the group past the policy's MaxSize",
               lambda: client("autoscaling", creds, url).update_auto_scaling_group(
                   AutoScalingGroupName=dep, LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"},
                   MinSize=1, MaxSize=1000))
        denied(who + ": read a non-AMI SSM parameter",
               lambda: client("ssm", creds, url).get_parameter(Name="/prod/db-password"))
        denied(who + ": list IAM users", lambda: client("iam", creds, url).list_users())
        denied(who + ": create an IAM user", lambda: client("iam", creds, url).create_user(UserName="intruder"))
        # and the same credentials may act on the deployment's own tagged instance
        s_ec2.stop_instances(InstanceIds=d["instance_ids"])
    d2 = ok(kiln("deploy", "--eif", make_eif("r", 9), "--json", env=kiln_env(ci_role, endpoint=url)),
            "deploy with the CI deploy role's session")
    st = ok(kiln("status", "--json", env=kiln_env(scoped, endpoint=url)), "status with the scoped credentials")
    check(st.get("eif_sha256") and st.get("instance_ids"), "status shows the deployment: %s" % st)
    check(d2.get("launch_template_version", 0) > d.get("launch_template_version", 0), "the role deployed a new version")
    # the test evaluator (moto_scoped_iam.py) refuses loudly a condition key it cannot supply
    boot_admin = client("iam", admin, url)
    boot_admin.create_user(UserName="kiln-test-odd-key")
    boot_admin.put_user_policy(UserName="kiln-test-odd-key", PolicyName="odd", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Sid": "Odd", "Effect": "Allow", "Action": "ec2:DescribeVpcs",
                                                 "Resource": "*", "Condition": {"StringEquals": {"ec2:Region": "us-east-1"}}}]}))
    odd = boot_admin.create_access_key(UserName="kiln-test-odd-key")["AccessKey"]
    try:
        client("ec2", {"AWS_ACCESS_KEY_ID": odd["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": odd["SecretAccessKey"]},
               url).describe_vpcs()
        check(False, "a condition key the test evaluator does not know must fail the request")
    except Exception as e:  # botocore ClientError
        check("KilnTestUnknownConditionKey" in str(e) and "ec2:Region" in str(e),
              "an unknown condition key fails loudly, naming the key: %s" % str(e)[:300])
    print("deploy user and CI role: deploy allowed; untagged instance, other bucket, other group, $Latest, "
          "MaxSize, SSM, IAM denied; unknown condition keys fail loudly")
    # behind a load balancer: setup (admin) makes it; the scoped credentials roll out and read
    # target health, but create, delete or change no load balancer or target group
    set_aws(count=2, ports=[8080])
    ok(kiln("setup", "--credentials-file", "deploy.env", env=kiln_env(admin, endpoint=url)), "setup (admin, nlb)")
    elb_admin = client("elbv2", admin, url)
    other_tg = elb_admin.create_target_group(Name="other-tg", Protocol="TCP", Port=80, VpcId=ec2.describe_subnets(
        SubnetIds=[subnet])["Subnets"][0]["VpcId"], TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    d3 = ok(kiln("deploy", "--eif", make_eif("s", 10), "--json", env=kiln_env(scoped, endpoint=url)),
            "a rollout behind the NLB with the scoped credentials")
    check(d3.get("healthy_count") == 2, "the scoped rollout reached 2 healthy instances: %s" % d3.get("fleet"))
    ok(kiln("rollback", "--json", env=kiln_env(scoped, endpoint=url)), "kiln rollback with the scoped credentials")
    s_elb = client("elbv2", session, url)
    lb_arn = [l["LoadBalancerArn"] for l in s_elb.describe_load_balancers()["LoadBalancers"]][0]
    denied("deploy user: create a load balancer", lambda: s_elb.create_load_balancer(
        Name="intruder", Subnets=[subnet], Type="network"))
    denied("deploy user: delete the load balancer", lambda: s_elb.delete_load_balancer(LoadBalancerArn=lb_arn))
    denied("deploy user: change another target group", lambda: s_elb.modify_target_group(
        TargetGroupArn=other_tg, HealthCheckPath="/x", HealthCheckProtocol="HTTP"))
    denied("deploy user: register targets by hand", lambda: s_elb.register_targets(
        TargetGroupArn=other_tg, Targets=[{"Id": other["InstanceId"]}]))
    denied("deploy user: delete a target group", lambda: s_elb.delete_target_group(TargetGroupArn=other_tg))
    print("deploy user behind the NLB: rollout and rollback allowed; load balancer and target group changes denied")
    ok(kiln("teardown", "--yes", "--delete-bucket", env=kiln_env(admin, endpoint=url)), "teardown (admin)")


def case_test_resource():
    """A resource kind is one file and one table line: the test-only kind in
    tests/aws/res_test_marker.c (an SSM parameter), in the tests' build of the aws plugin put first
    on the plugin path, shows up in plan, setup, status and teardown; the shipped plugin lacks it."""
    env = kiln_env(KILN_PLUGIN_PATH=os.environ["KILN_TEST_RESOURCE_PLUGIN_DIR"])
    make_app()
    configure()
    fresh = plan_actions(kiln("plan", "--action", "setup", "--json", env=env))
    check(any(a["action"] == "create" and a["resource"].endswith("/test-marker") for a in fresh),
          "plan creates the test marker: %s" % fresh)
    check(proxy("stats")["mutating"] == 0, "plan made no mutating call")
    setup = ok(kiln("setup", "--json", env=env), "setup")
    dep = deployment_id()
    name = "/kiln/%s/test-marker" % dep
    check(setup.get("test_marker") == name, "setup reports the marker: %s" % setup.get("test_marker"))
    ssm = client("ssm")
    check(ssm.get_parameter(Name=name)["Parameter"]["Value"] == "kiln", "the marker exists in SSM")
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    check({"Key": TAG, "Value": dep} in tags, "the marker carries the deployment tag: %s" % tags)
    policy = client("iam").get_role_policy(RoleName=dep + "-deploy-role", PolicyName="kiln-deploy")["PolicyDocument"]
    if isinstance(policy, str):
        policy = json.loads(policy)
    sids = [st.get("Sid") for st in policy["Statement"]]
    check("ReadTheTestMarker" in sids and "DescribeWhatKilnReads" in sids and sids[-1] == "ReadTheTestMarker",
          "the deploy role's policy has the kind's statement after the base ones: %s" % sids)
    status = ok(kiln("status", "--json", env=env), "status")
    check(status.get("test_marker") == name, "status shows the marker: %s" % status.get("test_marker"))
    human = kiln("status", env=env)
    ok(human, "status for people")
    check("test marker" in human.stdout and name in human.stdout and "VPC" in human.stdout,
          "status prints the fields the resource kinds label: %s" % human.stdout[-1500:])
    shipped = ok(kiln("status", "--json"), "status with the shipped plugin")
    check("test_marker" not in shipped, "the shipped aws plugin has no test marker")
    again = plan_actions(kiln("plan", "--action", "setup", "--json", env=env))
    check(any(a["action"] == "nothing" and a["resource"] == name for a in again),
          "plan after setup: the marker is up to date: %s" % again)
    configure()
    ok(kiln("teardown", "--yes", "--delete-bucket", "--json", env=env), "teardown")
    try:
        ssm.get_parameter(Name=name)
        check(False, "teardown deleted the marker")
    except ssm.exceptions.ParameterNotFound:
        pass
    check(not any(tagged(dep).values()), "teardown removed everything: %s" % tagged(dep))


def case_aarch64_deploy():
    """kiln.json /arch aarch64: setup and deploy pick Graviton types, the arm64 AL2023 AMI parameter
    and the aarch64 kiln-host; a prebuilt EIF of the other architecture is refused before any call."""
    make_app(extra={"arch": "aarch64"})
    # kiln's lib dir with the aarch64 kiln-host; where kiln was built without c-ares for arm64,
    # a stand-in file takes its place (moto never runs it: the test checks which file is uploaded)
    real = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(KILN))), "lib", "kiln")
    lib = os.path.join(WORK, "lib")
    os.makedirs(os.path.join(lib, "aarch64"))
    os.symlink(os.path.join(real, "plugins"), os.path.join(lib, "plugins"))
    for name in ("kiln-host", "aarch64/kiln-host"):
        src = os.path.join(real, name)
        data = open(src, "rb").read() if os.path.exists(src) else b"stand-in aarch64 kiln-host\n"
        open(os.path.join(lib, name), "wb").write(data)
    arm_host = open(os.path.join(lib, "aarch64/kiln-host"), "rb").read()
    env = lambda creds=ADMIN: kiln_env(creds, KILN_LIB_DIR=lib)  # noqa: E731
    configure()
    ok(kiln("setup", "--credentials-file", "deploy.env", env=env()), "setup for aarch64")
    creds = scoped_creds()
    x86 = make_eif("x86", 5)
    fails(kiln("deploy", "--eif", x86, "--json", env=env(creds)), "/arch is aarch64",
          "an x86_64 EIF against /arch aarch64")
    arm = os.path.join(APP, "arm.eif")
    d = os.path.join(WORK, "eif-x86")
    subprocess.run([KILN, "eif-build", "--kernel", os.path.join(d, "kernel"), "--cmdline", "console=ttyS0",
                    "--ramdisk", os.path.join(d, "boot"), "--ramdisk", os.path.join(d, "app"), "--arch", "aarch64",
                    "--output", arm], check=True, capture_output=True)
    configure()
    dep = ok(kiln("deploy", "--eif", arm, "--json", env=env(creds)), "deploy of an aarch64 EIF")
    itype = dep.get("instance_type", "")
    check(itype.split(".")[0] in ("m6g", "m7g", "c6g", "c7g", "r6g"), "a Graviton type: %s" % itype)
    want_ami = client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")["Parameter"]["Value"]
    data = client("ec2").describe_launch_template_versions(
        LaunchTemplateId=dep.get("launch_template_id", ""), Versions=["$Latest"])["LaunchTemplateVersions"][0][
        "LaunchTemplateData"]
    check(data.get("ImageId") == want_ami, "the arm64 AL2023 AMI: %s vs %s" % (data.get("ImageId"), want_ami))
    check(data.get("InstanceType") == itype, "the launch template runs %s: %s" % (itype, data.get("InstanceType")))
    import hashlib
    sha = hashlib.sha256(arm_host).hexdigest()
    keys = [o["Key"] for o in client("s3").list_objects_v2(Bucket=dep_bucket())["Contents"]]
    check(any(sha in k for k in keys), "the aarch64 kiln-host (%s) is uploaded: %s" % (sha[:12], keys))
    configure()
    ok(kiln("teardown", "--yes", "--delete-bucket", env=env()), "teardown")


def dep_bucket():
    st = ok(kiln("status", "--json"), "status")
    return st.get("bucket") or [b["Name"] for b in client("s3").list_buckets()["Buckets"]
                                if deployment_id() in b["Name"]][0]


def set_aws(**aws):
    """kiln.json's /aws section (ports 8080 and 443 in /enclave/ports)."""
    with open(os.path.join(APP, "kiln.json")) as f:
        doc = json.load(f)
    doc["aws"] = aws
    with open(os.path.join(APP, "kiln.json"), "w") as f:
        json.dump(doc, f)


def group_of(dep):
    return client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[dep])["AutoScalingGroups"][0]


def next_refresh(dep, mode):
    """What the moto extension's next refresh of the group does (see moto_with_refresh.py)."""
    client("autoscaling").create_or_update_tags(Tags=[{
        "ResourceId": dep, "ResourceType": "auto-scaling-group", "Key": "kiln-test:next-refresh",
        "Value": mode, "PropagateAtLaunch": False}])


def fleet_versions(st):
    return sorted({(m.get("launch_template_version"), m.get("eif_sha256")) for m in st.get("fleet", [])})


def case_nlb_scale_out():
    """eip (1 instance) -> nlb (3 instances, HTTP health checks) -> rollouts, failed refreshes,
    kiln rollback -> eip again -> teardown."""
    make_app(extra={"enclave": {"cpus": 2, "memory_mib": 1024, "ports": [8080, 443]}})
    set_aws()
    configure()
    ok(kiln("setup", "--credentials-file", "deploy.env"), "setup (eip)")
    dep = deployment_id()
    creds = scoped_creds()
    eif_a, eif_b, eif_c = make_eif("na", 3), make_eif("nb", 5), make_eif("nc", 7)
    d1 = ok(kiln("deploy", "--eif", eif_a, "--json", env=kiln_env(creds)), "deploy A (eip)")
    check(len(d1.get("instance_ids", [])) == 1 and d1.get("eip"), "one instance behind the EIP: %s" % d1)

    set_aws(count=3, health_path="/healthz", health_port=8080)
    configure()
    proc = kiln("plan", "--action", "setup")
    ok(proc, "plan the switch to nlb (setup)")
    print("kiln plan --action setup (eip -> nlb, 3 instances):\n" + proc.stdout)
    acts = [(a["action"], a["detail"]) for a in plan_actions(kiln("plan", "--action", "setup", "--json"))]
    check(any(a == "create" and d.startswith("Network Load Balancer") for a, d in acts), "plan creates the NLB: %s" % acts)
    check(sum(a == "create" and d.startswith("target group") for a, d in acts) == 2, "two target groups: %s" % acts)
    check(any(a == "delete" and d == "Elastic IP" for a, d in acts), "plan releases the single EIP: %s" % acts)
    check(proxy("stats")["mutating"] == 0, "plans made no mutating call")
    fails(kiln("deploy", "--eif", eif_a, env=kiln_env(creds)), "run `kiln setup`", "deploy before the NLB setup")
    ok(kiln("setup", "--credentials-file", "deploy.env"), "setup (nlb)")
    elb = client("elbv2")
    found = tagged(dep)
    check(len(found["load_balancers"]) == 1 and len(found["target_groups"]) == 2 and not found["addresses"],
          "one tagged NLB, two tagged target groups, no EIP: %s" % found)
    lb = elb.describe_load_balancers(LoadBalancerArns=found["load_balancers"])["LoadBalancers"][0]
    check(lb["Type"] == "network" and len(lb["AvailabilityZones"]) == 3, "an NLB across the 3 subnets: %s" % lb)
    listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    check(sorted((l["Port"], l["Protocol"]) for l in listeners) == [(443, "TCP"), (8080, "TCP")],
          "TCP listeners on 443 and 8080: %s" % listeners)
    for g in elb.describe_target_groups(TargetGroupArns=found["target_groups"])["TargetGroups"]:
        check(g["TargetType"] == "instance" and g["Protocol"] == "TCP" and g["HealthCheckProtocol"] == "HTTP"
              and g["HealthCheckPath"] == "/healthz" and str(g["HealthCheckPort"]) == "8080",
              "instance targets, HTTP health check on 8080 /healthz: %s" % g)
    group = group_of(dep)
    check(sorted(group.get("TargetGroupARNs", [])) == sorted(found["target_groups"]), "group attached: %s" % group)
    check(group["HealthCheckType"] == "ELB" and group["HealthCheckGracePeriod"] == 300, "ELB health checks + grace")
    configure()
    again = ok(kiln("setup", "--credentials-file", "deploy.env", "--json"), "setup again (nlb)")
    check(proxy("stats")["mutating"] == 0 and again.get("changes") == 0,
          "a second nlb setup makes no mutating call: %s" % proxy("stats")["operations"])

    size = ok(kiln("size", "--eif", eif_a, "--json"), "kiln size with count 3")
    check(size.get("deployment", {}).get("count") == 3 and
          abs(size["deployment"]["price_per_hour_usd"] - 3 * size["price_per_hour_usd"]) < 1e-9,
          "kiln size prices 3 instances: %s" % size.get("deployment"))
    human = kiln("size", "--eif", eif_a)
    check("deployment: 3 instance(s)" in human.stdout and size["catalogue"]["as_of"] in human.stdout,
          "kiln size shows the deployment's cost with the catalogue date: %s" % human.stdout)
    proc = kiln("plan", "--eif", eif_a, env=kiln_env(creds))
    ok(proc, "plan the deploy to 3 instances")
    print("kiln plan (deploy, 1 -> 3 instances):\n" + proc.stdout)
    check("1 -> 3 instance(s)" in proc.stdout and "$" in proc.stdout and "as of" in proc.stdout,
          "the plan scales to 3 and shows the hourly cost with the catalogue date: %s" % proc.stdout)
    d2 = ok(kiln("deploy", "--eif", eif_a, "--json", env=kiln_env(creds)), "deploy A with count 3")
    check(len(d2.get("instance_ids", [])) == 3 and d2.get("healthy_count") == 3, "3 healthy instances: %s" % d2)
    for arn in found["target_groups"]:
        targets = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        check(sorted(t["Target"]["Id"] for t in targets) == sorted(d2["instance_ids"]),
              "the group registered its 3 instances: %s" % targets)
    version_a = d2["launch_template_version"]

    d3 = ok(kiln("deploy", "--eif", eif_b, "--json", env=kiln_env(creds)), "deploy B (refresh)")
    version_b = d3["launch_template_version"]
    refresh = client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=dep)["InstanceRefreshes"][0]
    prefs = refresh.get("Preferences", {})
    check(refresh["Status"] == "Successful" and prefs.get("MinHealthyPercentage") == 100 and
          prefs.get("InstanceWarmup") == 300 and prefs.get("AutoRollback") is True,
          "refresh asked MinHealthyPercentage 100, a warm-up and auto-rollback: %s" % refresh)
    st = ok(kiln("status", "--json", env=kiln_env(creds)), "status after B")
    check(fleet_versions(st) == [(version_b, d3["eif_sha256"])] and len(st["fleet"]) == 3 and
          all(m.get("target_health") == "healthy" for m in st["fleet"]),
          "status: 3 instances on version %s with EIF B, healthy targets: %s" % (version_b, st.get("fleet")))
    human = kiln("status", env=kiln_env(creds))
    print("kiln status:\n" + human.stdout)
    check("TARGET" in human.stdout and d3["eif_sha256"][:16] in human.stdout, "status table for people")

    next_refresh(dep, "rollback")  # the new instances fail their health checks; AWS rolls back
    proc = kiln("deploy", "--eif", eif_c, env=kiln_env(creds))
    fails(proc, "AWS rolled %s back to version %s" % (dep, version_b), "a failed refresh")
    check(group_of(dep)["LaunchTemplate"]["Version"] == str(version_b), "the group stays on version B")
    lt = client("ec2").describe_launch_templates(LaunchTemplateNames=[dep])["LaunchTemplates"][0]
    check(lt["DefaultVersionNumber"] == version_b, "the template's default is B again: %s" % lt)
    st = ok(kiln("status", "--json", env=kiln_env(creds)), "status after the rollback")
    check(fleet_versions(st) == [(version_b, d3["eif_sha256"])], "instances run B: %s" % st.get("fleet"))

    next_refresh(dep, "no-rollback")  # the refresh fails and AWS does not roll back: kiln does
    fails(kiln("deploy", "--eif", eif_c, env=kiln_env(creds)), "kiln rolled back to version %s" % version_b,
          "a failed refresh without AWS's rollback")
    check(group_of(dep)["LaunchTemplate"]["Version"] == str(version_b), "kiln returned the group to B")

    set_aws(count=3, health_path="/healthz", health_port=8080, rollout_timeout_seconds=1)
    next_refresh(dep, "hold")  # the refresh never finishes: kiln rolls it back (RollbackInstanceRefresh)
    fails(kiln("deploy", "--eif", eif_c, env=kiln_env(creds)), "the refresh was rolled back (RollbackSuccessful)",
          "a refresh past the rollout timeout")
    check(group_of(dep)["LaunchTemplate"]["Version"] == str(version_b), "AWS's rollback returned the group to B")
    set_aws(count=3, health_path="/healthz", health_port=8080)
    r = ok(kiln("rollback", "--json", env=kiln_env(creds)), "kiln rollback")
    check(r.get("group_launch_template_version") == str(version_a) and
          fleet_versions(r) == [(version_a, d2["eif_sha256"])], "rollback returns to A: %s" % r.get("fleet"))
    fails(kiln("rollback", "--to", "1", env=kiln_env(creds)), "runs no release", "rollback to the placeholder")
    fails(kiln("rollback", "--to", "99", env=kiln_env(creds)), "does not exist", "rollback to a missing version")
    r = ok(kiln("rollback", "--to", str(version_b), "--json", env=kiln_env(creds)), "kiln rollback --to B")
    check(fleet_versions(r) == [(version_b, d3["eif_sha256"])], "rollback --to B: %s" % r.get("fleet"))

    set_aws(count=1)
    configure()
    ok(kiln("setup", "--credentials-file", "deploy.env"), "setup (back to eip)")
    found = tagged(dep)
    check(not found["load_balancers"] and not found["target_groups"] and len(found["addresses"]) == 1,
          "back to eip: no NLB, no target group, one EIP: %s" % found)
    group = group_of(dep)
    check(not group.get("TargetGroupARNs") and group["HealthCheckType"] == "EC2", "group detached: %s" % group)
    d4 = ok(kiln("deploy", "--eif", eif_b, "--json", env=kiln_env(creds)), "deploy (eip, 1 instance)")
    check(len(d4.get("instance_ids", [])) == 1 and d4.get("eip_instance") == d4["instance_ids"][0],
          "one instance with the EIP: %s" % d4)
    configure()
    ok(kiln("setup", "--credentials-file", "deploy.env"), "setup again (eip)")
    check(proxy("stats")["mutating"] == 0, "eip setup after the switch changes nothing: %s" % proxy("stats")["operations"])
    set_aws(count=0)
    ok(kiln("deploy", "--eif", eif_b, env=kiln_env(creds)), "deploy with count 0 (parked)")
    st = kiln("status", env=kiln_env(creds))
    check(st.returncode == 0 and "parked" in st.stdout, "status says parked: %s" % st.stdout[-600:])
    ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown")
    left = {k: v for k, v in tagged(dep).items() if v}
    check(not left, "nothing with the tag remains (NLB, target groups, EIPs included): %s" % left)


def case_nlb_bad_input():
    make_app(extra={"enclave": {"cpus": 2, "memory_mib": 1024, "ports": [8080]}})
    configure()
    set_aws(count=5, max_count=3)
    fails(kiln("setup"), "/aws/count 5 is more than /aws/max_count 3", "count > max_count")
    set_aws(count=2, load_balancer="eip")
    fails(kiln("setup"), "\"eip\" serves one instance", "eip with 2 instances")
    set_aws(count=1, health_path="/healthz")
    fails(kiln("setup"), "/aws/health_path applies to the load balancer", "health path in eip mode")
    set_aws(count=2, health_path="/health z")
    fails(kiln("setup"), "/aws/health_path \"/health z\"", "health path with a space")
    set_aws(count=2, health_port=9999)
    fails(kiln("setup"), "/aws/health_port 9999 is not one of the public ports", "health port not public")
    make_app(ports=(), extra={"enclave": {"cpus": 2, "memory_mib": 1024, "ports": []}})
    set_aws(count=2, health_path="/healthz")
    fails(kiln("setup"), "/aws/health_path needs an HTTP port", "health path without ports")
    check(not os.path.exists(os.path.join(APP, ".env")), "refused options create nothing, not even an id")
    make_app(extra={"enclave": {"cpus": 2, "memory_mib": 1024, "ports": [8080]}})
    # a region with one zone (the proxy answers DescribeAvailabilityZones for EC2): no NLB
    one_zone = ('<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                '<requestId>z1</requestId><availabilityZoneInfo><item><zoneName>us-east-1a</zoneName>'
                '<zoneState>available</zoneState><regionName>us-east-1</regionName><zoneId>use1-az6</zoneId>'
                '</item></availabilityZoneInfo></DescribeAvailabilityZonesResponse>')
    configure(kind="respond", first_n=1000, match="DescribeAvailabilityZones",
              respond={"status": 200, "body": one_zone, "headers": {"Content-Type": "text/xml;charset=UTF-8"}})
    set_aws(count=2)
    fails(kiln("setup"), "a Network Load Balancer needs subnets in at least 2 availability zones", "NLB in one zone")
    dep = deployment_id()
    check(not tagged(dep)["load_balancers"] and len(tagged(dep)["subnets"]) == 1,
          "one zone: one subnet and no load balancer: %s" % tagged(dep))
    configure()
    set_aws()
    ok(kiln("setup"), "setup (eip)")
    check(deployment_id() == dep and len(tagged(dep)["subnets"]) >= 2,
          "the next setup converges the same deployment in every zone: %s" % tagged(dep)["subnets"])
    subnets = tagged(dep)["subnets"]
    # a load balancer of the deployment's name without its tag: refused, never used or deleted
    foreign = client("elbv2").create_load_balancer(Name=dep, Subnets=subnets, Type="network")["LoadBalancers"][0]
    set_aws(count=2)
    fails(kiln("setup"), "load balancer name %s is taken by a load balancer without this deployment's tag" % dep,
          "NLB name collision")
    client("elbv2").delete_load_balancer(LoadBalancerArn=foreign["LoadBalancerArn"])
    configure(kind="respond", first_n=1, match="CreateLoadBalancer",
              respond={"status": 400, "body": "<ErrorResponse><Error><Type>Sender</Type><Code>TooManyLoadBalancers"
                       "</Code><Message>The quota for the number of load balancers has been reached</Message>"
                       "</Error><RequestId>Q2</RequestId></ErrorResponse>"})
    fails(kiln("setup"), "TooManyLoadBalancers quota", "load balancer quota")
    configure()
    ok(kiln("setup"), "setup after the quota error")
    first = tagged(dep)["load_balancers"]
    check(len(first) == 1, "the retry created the NLB")
    set_aws(count=2, static_addresses=True)
    ok(kiln("setup"), "setup with static addresses")
    found = tagged(dep)
    check(len(found["addresses"]) == 3 and len(found["load_balancers"]) == 1 and found["load_balancers"] != first,
          "the NLB is made again with one Elastic IP per subnet: %s" % found)
    configure()
    ok(kiln("setup"), "setup again with static addresses")
    check(proxy("stats")["mutating"] == 0, "static addresses converge: %s" % proxy("stats")["operations"])
    set_aws(count=2)
    ok(kiln("setup"), "setup without static addresses")
    found = tagged(dep)
    check(not found["addresses"] and len(found["load_balancers"]) == 1, "addresses released: %s" % found)
    ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown")
    check(not any(tagged(dep).values()), "teardown removed everything: %s" % tagged(dep))


run_case(globals(), CASE, WORK)
