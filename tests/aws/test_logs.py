#!/usr/bin/env python3
"""kiln's CloudWatch Logs path against moto's server with IAM enforcement (log-group-aware, see
moto_logs_iam.py): setup creates the tagged log group /kiln/<id> with its retention and the
policies; events put by the test with the instance role's policy are read back by `kiln logs`
with the scoped deploy credentials, in order, over more than one page (moto pages at 10000
events); --instance narrows to one stream; --follow picks up new events and prints none twice;
another group is denied; update-policy restores an older deployment's policies; teardown removes
the group; bad input: no deployment id, no log group yet, a bad --since.

Usage: test_logs.py KILN SERVER_DIR CASE
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from kilntest import check, run_case, server_env  # noqa: E402

import boto3  # noqa: E402

KILN, SERVER_DIR, CASE = sys.argv[1:4]
WORK = tempfile.mkdtemp(prefix="kiln-logs-test-")
APP = os.path.join(WORK, "app")
TAG = "caution:deployment-id"
URL = server_env(SERVER_DIR, "moto-logs")["URL"]


def client(service, creds):
    return boto3.client(service, endpoint_url=URL, region_name="us-east-1",
                        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])


def kiln_env(creds, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEPLOYMENT_ID"}
    env.update(creds)
    env.update(AWS_REGION="us-east-1", AWS_ENDPOINT_URL=URL, HOME=WORK, AWS_EC2_METADATA_DISABLED="true",
               KILN_CACHE_DIR=os.path.join(WORK, "cache"), NO_COLOR="1")
    env.update(extra)
    return env


def kiln(*args, creds, timeout=300, **extra):
    return subprocess.run([KILN, "-C", APP] + list(args), env=kiln_env(creds, **extra), capture_output=True,
                          text=True, timeout=timeout)


def ok(proc, what):
    check(proc.returncode == 0, "%s: exit %d\n%s" % (what, proc.returncode, proc.stderr[-3000:]))
    try:
        return json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    except ValueError:
        return {}


def fails(proc, needle, what, code=1):
    text = proc.stdout + proc.stderr
    check(proc.returncode == code, "%s: exit %d (want %d)\n%s" % (what, proc.returncode, code, text[-1500:]))
    check(needle in text, "%s: should say %r, got:\n%s" % (what, needle, text[-1500:]))


_admin = []


def admin():
    """An admin user, made with the server's first unauthenticated calls (shared by the cases)."""
    if not _admin:
        # one admin per server process: a restarted server has forgotten the old one
        path = os.path.join(SERVER_DIR, "moto-logs-admin-%s.json" % server_env(SERVER_DIR, "moto-logs")["PID"])
        if os.path.exists(path):
            _admin.append(json.load(open(path)))
        else:
            boot = client("iam", {"AWS_ACCESS_KEY_ID": "AKIDBOOT", "AWS_SECRET_ACCESS_KEY": "x"})
            boot.create_user(UserName="kiln-logs-admin")
            boot.put_user_policy(UserName="kiln-logs-admin", PolicyName="admin", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            key = boot.create_access_key(UserName="kiln-logs-admin")["AccessKey"]
            _admin.append({"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
            json.dump(_admin[0], open(path, "w"))
    return _admin[0]


def make_app():
    os.makedirs(APP, exist_ok=True)
    with open(os.path.join(APP, "kiln.json"), "w") as f:
        json.dump({"name": "hello", "aws": {"ports": [8080], "log_retention_days": 14},
                   "enclave": {"cpus": 2, "memory_mib": 1024}}, f)


def deployment_id():
    with open(os.path.join(APP, ".env")) as f:
        return [l.split("=", 1)[1].strip() for l in f if l.startswith("DEPLOYMENT_ID=")][-1]


def scoped_creds():
    with open(os.path.join(APP, "deploy.env")) as f:
        return dict(l.strip().split("=", 1) for l in f if "=" in l and not l.startswith("#"))


def policy_doc(doc):
    return json.loads(doc) if isinstance(doc, str) else doc


def instance_creds(dep):
    """A user holding exactly the instance role's inline policy: what the CloudWatch agent on an
    instance may do (moto cannot hand out an instance profile's credentials)."""
    iam = client("iam", admin())
    doc = iam.get_role_policy(RoleName=dep + "-instance", PolicyName="kiln-read-eifs")["PolicyDocument"]
    name = dep + "-agent"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="as-instance-role", PolicyDocument=json.dumps(policy_doc(doc)))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def denied(what, call):
    try:
        call()
    except Exception as e:  # botocore ClientError
        check("AccessDenied" in str(e) or "not authorized" in str(e), "%s: denied, got %s" % (what, str(e)[:300]))
        return
    check(False, "%s: should be denied" % what)


def put(logs, group, stream, events):
    """events: [(timestamp ms, message)] in order, in batches as the agent sends them."""
    for i in range(0, len(events), 5000):
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": t, "message": m} for t, m in events[i:i + 5000]])


def record(t, stream, n):
    """A line as kiln-host writes it to app.log."""
    return "%s stdout %s line %d" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t / 1000)), stream, n)


def case_logs_end_to_end():
    creds_admin = admin()
    make_app()
    setup = ok(kiln("setup", "--credentials-file", "deploy.env", "--json", creds=creds_admin), "setup")
    dep = deployment_id()
    group = "/kiln/" + dep
    check(setup.get("log_group") == group and setup.get("log_retention_days") == 14,
          "setup reports the log group and its retention: %s" % {k: setup.get(k) for k in ("log_group", "log_retention_days")})
    logs = client("logs", creds_admin)
    found = [g for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] if g["logGroupName"] == group]
    check(len(found) == 1 and found[0].get("retentionInDays") == 14, "the group exists with /aws/log_retention_days: %s" % found)
    tags = logs.list_tags_log_group(logGroupName=group)["tags"]
    check(tags.get(TAG) == dep and tags.get("kiln:managed") == "true", "the group carries the deployment tag: %s" % tags)
    iam = client("iam", creds_admin)
    role = policy_doc(iam.get_role_policy(RoleName=dep + "-instance", PolicyName="kiln-read-eifs")["PolicyDocument"])
    ship = [s for s in role["Statement"] if any(a.startswith("logs:") for a in s["Action"])]
    check(len(ship) == 1 and sorted(ship[0]["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"] and
          ship[0]["Resource"].endswith(":log-group:%s:log-stream:*" % group),
          "the instance role may create streams and put events in that group only: %s" % ship)
    deploy = policy_doc(iam.get_role_policy(RoleName=dep + "-deploy-role", PolicyName="kiln-deploy")["PolicyDocument"])
    reads = [s for s in deploy["Statement"] if s.get("Sid", "").startswith("Logs")]
    check(len(reads) == 1 and all(a in ("logs:FilterLogEvents", "logs:GetLogEvents", "logs:DescribeLogStreams")
                                  for a in reads[0]["Action"]), "the deploy policy only reads logs: %s" % reads)
    again = kiln("setup", "--credentials-file", "deploy.env", "--json", creds=creds_admin)
    check(ok(again, "setup again").get("changes") == 0, "a second setup changes nothing: %s" % again.stderr[-800:])

    # the instances' agent: two streams, interleaved in time, 10500 events (more than one page)
    agent = client("logs", instance_creds(dep))
    start = int(time.time() * 1000) - 20 * 60 * 1000
    expected = []
    for stream in ("i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2"):
        agent.create_log_stream(logGroupName=group, logStreamName=stream)
    by_stream = {"i-0aaaaaaaaaaaaaaa1": [], "i-0bbbbbbbbbbbbbbb2": []}
    for n in range(10500):
        stream = "i-0aaaaaaaaaaaaaaa1" if n % 3 else "i-0bbbbbbbbbbbbbbb2"
        t = start + n * 10
        by_stream[stream].append((t, record(t, stream, n)))
        expected.append((stream, record(t, stream, n)))
    for stream, events in by_stream.items():
        put(agent, group, stream, events)
    denied("the instance role's policy: another group", lambda: agent.create_log_stream(
        logGroupName="/kiln/someone-else", logStreamName="i-0aaaaaaaaaaaaaaa1"))

    scoped = scoped_creds()
    started = time.monotonic()
    doc = ok(kiln("logs", "--since", "1h", "--json", creds=scoped), "kiln logs --json with the scoped credentials")
    got = [(e["instance"], e["message"]) for e in doc.get("events", [])]
    check(len(got) == 10500, "all 10500 events over more than one page (moto pages at 10000): %d" % len(got))
    check(got == expected, "in time order, interleaving the two instances")
    check(len({e["event_id"] for e in doc.get("events", [])}) == len(got), "each event once")
    print("kiln logs --json: %d events in %.1f s" % (len(got), time.monotonic() - started))
    lines = kiln("logs", "--since", "1h", creds=scoped).stdout.splitlines()
    check(lines[0] == "%s %s" % expected[0] and lines[-1] == "%s %s" % expected[-1] and len(lines) == 10500,
          "text: one line per event, instance id then the record: %r ... %r" % (lines[:1], lines[-1:]))
    print("kiln logs (first lines):\n" + "\n".join(lines[:3]))
    one = ok(kiln("logs", "--since", "1h", "--instance", "i-0bbbbbbbbbbbbbbb2", "--json", creds=scoped), "--instance")
    check([e["message"] for e in one.get("events", [])] == [m for _, m in by_stream["i-0bbbbbbbbbbbbbbb2"]],
          "--instance shows that instance's stream only")
    recent = ok(kiln("logs", "--since", "10m", "--json", creds=scoped), "--since 10m")
    check(recent.get("events") == [], "--since 10m: the 20-minute-old events are not shown: %d" % len(recent.get("events", [])))

    # another deployment's group: denied to the scoped credentials
    logs.create_log_group(logGroupName="/kiln/someone-else")
    logs.create_log_stream(logGroupName="/kiln/someone-else", logStreamName="i-0ccc")
    put(logs, "/kiln/someone-else", "i-0ccc", [(int(time.time() * 1000), "secret")])
    denied("scoped credentials: another group", lambda: client("logs", scoped).filter_log_events(
        logGroupName="/kiln/someone-else"))
    proc = kiln("logs", "--since", "1h", creds=scoped, DEPLOYMENT_ID="someone-else")
    fails(proc, "may not read /kiln/someone-else", "kiln logs on another deployment's group")
    check("secret" not in proc.stdout, "nothing of the other group is printed")

    # --follow: new events show up, none twice, Ctrl-C ends it
    agent.create_log_stream(logGroupName=group, logStreamName="i-0ddddddddddddddd4")
    now = int(time.time() * 1000)
    put(agent, group, "i-0ddddddddddddddd4", [(now - 5000, "before follow")])
    follow = subprocess.Popen([KILN, "-vv", "-C", APP, "logs", "--follow", "--since", "5m", "--instance",
                               "i-0ddddddddddddddd4"], env=kiln_env(scoped), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    seen = []

    def read_until(n, timeout=40):
        deadline = time.time() + timeout
        while len(seen) < n and time.time() < deadline:
            line = follow.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip("\n"))

    read_until(1)
    for batch in (["first new", "second new"], ["third new"]):
        t = int(time.time() * 1000)
        put(agent, group, "i-0ddddddddddddddd4", [(t + i, m) for i, m in enumerate(batch)])
        read_until(len(seen) + len(batch))
    time.sleep(5)  # two more polls over the same overlap window: nothing may come twice
    follow.send_signal(signal.SIGINT)
    try:
        rest, err = follow.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        follow.kill()
        rest, err = follow.communicate()
    seen += [l for l in rest.splitlines() if l]
    want = ["i-0ddddddddddddddd4 " + m for m in ("before follow", "first new", "second new", "third new")]
    check(seen == want, "--follow prints each event once, new ones as they come: %s (stderr %s)" % (seen, err[-500:]))
    check(follow.returncode == 130, "Ctrl-C ends --follow with 130: %s" % follow.returncode)
    # one session for all polls: the role is assumed and the account asked once, then each poll
    # is one FilterLogEvents call (-vv logs every request)
    calls = {op: sum(1 for l in err.splitlines() if "aws: " in l and " %s " % op in l)
             for op in ("AssumeRole", "GetCallerIdentity", "FilterLogEvents")}
    check(calls["AssumeRole"] == 1 and calls["GetCallerIdentity"] == 1 and calls["FilterLogEvents"] >= 4,
          "--follow keeps its session between polls: %s" % calls)
    print("kiln logs --follow:\n" + "\n".join(seen))

    # an older deployment: policies without the logs statements; update-policy brings them back
    old_role = dict(role, Statement=[s for s in role["Statement"] if s not in ship])
    iam.put_role_policy(RoleName=dep + "-instance", PolicyName="kiln-read-eifs", PolicyDocument=json.dumps(old_role))
    old_deploy = dict(deploy, Statement=[s for s in deploy["Statement"] if not s.get("Sid", "").startswith("Logs")])
    iam.put_role_policy(RoleName=dep + "-deploy-role", PolicyName="kiln-deploy", PolicyDocument=json.dumps(old_deploy))
    fails(kiln("logs", creds=scoped), "kiln update-policy", "an older deploy policy cannot read: says what to do")
    up = ok(kiln("update-policy", "--json", creds=creds_admin), "update-policy")
    check([c["statement"] for c in up.get("policy_changes", [])] == [reads[0]["Sid"]],
          "update-policy adds the Logs statement: %s" % up.get("policy_changes"))
    role_now = policy_doc(iam.get_role_policy(RoleName=dep + "-instance", PolicyName="kiln-read-eifs")["PolicyDocument"])
    check(role_now == role, "update-policy restores the instance role's logs statement too")
    proc = kiln("logs", "--since", "1h", "--instance", "i-0ddddddddddddddd4", "--json", creds=scoped)
    check(len(ok(proc, "kiln logs after update-policy").get("events", [])) == 4, "readable again after update-policy")
    print("kiln logs --since 1h --instance i-0ddddddddddddddd4 --json:\n" + proc.stdout)

    st = ok(kiln("status", "--json", creds=scoped), "status with the scoped credentials")
    check(st.get("log_group") == group, "status names the log group: %s" % st.get("log_group"))
    ok(kiln("teardown", "--yes", "--delete-bucket", "--json", creds=creds_admin), "teardown")
    left = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/kiln/")["logGroups"]]
    check(group not in left and "/kiln/someone-else" in left,
          "teardown deleted the deployment's group and left the other alone: %s" % left)
    fails(kiln("logs", creds=creds_admin), "no log group %s yet (region us-east-1): run `kiln setup`" % group,
          "logs after teardown")


def case_logs_bad_input():
    creds = admin()
    make_app()
    dotenv = os.path.join(APP, ".env")
    if os.path.exists(dotenv):
        os.remove(dotenv)
    fails(kiln("logs", creds=creds), "no deployment id: run `kiln setup`", "no deployment id")
    proc = kiln("logs", creds=creds, DEPLOYMENT_ID="kiln-nolog")
    fails(proc, "no log group /kiln/kiln-nolog yet (region us-east-1): run `kiln setup`", "no log group yet")
    check(proc.stdout == "", "no partial output: %r" % proc.stdout)
    fails(kiln("logs", "--since", "yesterday", creds=creds, DEPLOYMENT_ID="kiln-nolog"), "--since yesterday", "bad --since", code=2)
    fails(kiln("logs", "--instance", "i-*", creds=creds, DEPLOYMENT_ID="kiln-nolog"), "--instance i-*", "bad --instance", code=2)
    fails(kiln("logs", creds={"AWS_ACCESS_KEY_ID": "AKIDNOSUCHKEY", "AWS_SECRET_ACCESS_KEY": "x"},
               DEPLOYMENT_ID="kiln-nolog"), "InvalidClientTokenId", "unknown credentials")


run_case(globals(), CASE, WORK)
