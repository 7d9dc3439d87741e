#!/usr/bin/env python3
"""The instance's user data, run for real in a scratch root (KILN_ROOT) with stub dnf, systemctl,
nitro-cli, aws and curl on PATH: shellcheck clean (the script and the enclave runner it writes);
it fetches and checks the EIF and kiln-host (the real static binary, which validates its
configuration), writes host.conf, allocator.yaml and the two systemd units and enables them; a
second run installs nothing; a wrong digest stops it with nothing enabled; the enclave runner
restarts nothing itself, exits when the enclave is gone, and after more than 5 starts in 10
minutes reports its instance Unhealthy; the CloudWatch agent is installed, configured for
/var/log/kiln/app.log -> /kiln/<deployment id> (stream = instance id) and started.

Usage: userdata_stub.py RENDER_USERDATA SHARE_DIR KILN_HOST_STATIC CASE"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from kilntest import check, run_case  # noqa: E402

RENDER, SHARE, HOST_BIN = sys.argv[1:4]
work = tempfile.mkdtemp(prefix="kiln-userdata-")

STUB = """#!/bin/bash
# stub: log the call; act like the real command where the script depends on it
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$(basename "$0") $*" in
  "aws "*" s3 cp "*)
    args=("$@"); src=${args[$#-2]}; dest=${args[$#-1]}
    cp "$STUB_FILES/$(basename "$src")" "$dest" ;;
  "nitro-cli describe-enclaves"*)
    n=$(cat "$STUB_DIR/running" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$STUB_DIR/running"; echo '[{"State": "RUNNING"}]'; else echo '[]'; fi ;;
  "dnf install "*amazon-cloudwatch-agent*)
    install -D -m 0755 "$0" "$KILN_ROOT/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl" ;;
  "curl "*) case "$*" in *api/token*) echo token ;; *instance-id*) echo i-0123456789abcdef0 ;; esac ;;
esac
exit 0
"""


def setup(eif_sha=None):
    stubs = os.path.join(work, "stubs")
    files = os.path.join(work, "files")
    for d in (stubs, files):
        os.makedirs(d, exist_ok=True)
    for name in ("dnf", "systemctl", "nitro-cli", "aws", "curl"):
        path = os.path.join(stubs, name)
        open(path, "w").write(STUB)
        os.chmod(path, 0o755)
    eif = os.urandom(4096)
    open(os.path.join(files, "app.eif"), "wb").write(eif)
    host = open(HOST_BIN, "rb").read()
    host_sha = hashlib.sha256(host).hexdigest()
    open(os.path.join(files, host_sha), "wb").write(host)
    app = os.path.join(work, "kiln.json")
    json.dump({"name": "app", "image": "dir:rootfs",
               "enclave": {"ports": [8080, "443:8443"], "egress": {"allow": ["api.example.com:443"]},
                           "attestation_port": 7443}}, open(app, "w"))
    p = subprocess.run([RENDER, SHARE, app, eif_sha or hashlib.sha256(eif).hexdigest(), host_sha],
                       capture_output=True, text=True)
    check(p.returncode == 0, "render: %s" % p.stderr)
    script = os.path.join(work, "userdata.sh")
    open(script, "w").write(p.stdout)
    return script, stubs, files


def run(script, stubs, files, root, **extra):
    log = os.path.join(work, "calls.log")
    env = dict(os.environ, KILN_ROOT=root, PATH=stubs + ":" + os.environ["PATH"], STUB_LOG=log,
               STUB_FILES=files, STUB_DIR=work, **extra)
    p = subprocess.run(["bash", script], capture_output=True, text=True, env=env, timeout=60)
    calls = open(log).read() if os.path.exists(log) else ""
    if os.path.exists(log):
        os.unlink(log)
    return p, calls


def case_install():
    script, stubs, files = setup()
    if shutil.which("shellcheck"):
        sc = subprocess.run(["shellcheck", "-s", "bash", script], capture_output=True, text=True)
        check(sc.returncode == 0, "shellcheck on the rendered user data:\n" + sc.stdout)
    root = os.path.join(work, "root")
    os.makedirs(root)
    p, calls = run(script, stubs, files, root)
    check(p.returncode == 0, "user data runs: %s %s" % (p.stdout[-500:], p.stderr[-500:]))
    check("dnf install -y aws-nitro-enclaves-cli" in calls, "installs nitro-cli")
    check("systemctl enable --now nitro-enclaves-allocator.service kiln-host.service kiln-enclave.service" in calls,
          "enables the allocator, kiln-host and the enclave units: %r" % calls)
    check("socat" not in open(script).read(), "no socat")
    agent = json.load(open(os.path.join(root, "opt/aws/amazon-cloudwatch-agent/etc/kiln-logs.json")))
    collected = agent["logs"]["logs_collected"]["files"]["collect_list"]
    check(collected == [{"file_path": "/var/log/kiln/app.log", "log_group_name": "/kiln/kiln-test",
                     "log_stream_name": "{instance_id}", "timezone": "UTC"}],
          "the CloudWatch agent ships app.log to /kiln/<deployment id>, one stream per instance: %s" % collected)
    check("amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:%s/opt/aws/amazon-cloudwatch-agent/etc/"
          "kiln-logs.json" % root in calls, "the agent is configured and started: %r" % calls)
    unit = open(os.path.join(root, "etc/systemd/system/kiln-enclave.service")).read()
    check("ExecStart=/opt/kiln/kiln-enclave-run" in unit and "Restart=always" in unit and
          "WantedBy=multi-user.target" in unit, "kiln-enclave.service restarts and starts at boot")
    unit = open(os.path.join(root, "etc/systemd/system/kiln-host.service")).read()
    check("ExecStart=/opt/kiln/kiln-host -c /etc/kiln/host.conf" in unit and "Restart=always" in unit,
          "kiln-host.service runs kiln-host with its configuration")
    conf = open(os.path.join(root, "etc/kiln/host.conf")).read()
    for line in ["enclave-cid 16", "ingress tcp:0.0.0.0:8080 vsock:16:8080", "ingress tcp:0.0.0.0:443 vsock:16:8443",
                 "ingress tcp:0.0.0.0:7443 vsock:16:7702", "egress-listen vsock:any:7700",
                 "logs-listen vsock:any:7701", "log-file /var/log/kiln/app.log", "allow api.example.com:443"]:
        check(line in conf.splitlines(), "host.conf has %r" % line)
    check("kiln-host: configuration valid" in p.stdout, "the installed kiln-host validated host.conf")
    check(os.access(os.path.join(root, "opt/kiln/kiln-host"), os.X_OK), "kiln-host installed executable")
    check("memory_mib: 2048" in open(os.path.join(root, "etc/nitro_enclaves/allocator.yaml")).read(), "allocator sized")
    runner = os.path.join(root, "opt/kiln/kiln-enclave-run")
    if shutil.which("shellcheck"):
        sc = subprocess.run(["shellcheck", "-s", "bash", runner], capture_output=True, text=True)
        check(sc.returncode == 0, "shellcheck on kiln-enclave-run:\n" + sc.stdout)
    # a second boot: nothing is installed again
    p, calls = run(script, stubs, files, root)
    check(p.returncode == 0 and "installed already" in p.stdout and "dnf" not in calls and "systemctl" not in calls,
          "a second run installs nothing: %r" % calls)


def case_bad_digest():
    script, stubs, files = setup(eif_sha="00" * 32)
    root = os.path.join(work, "root")
    os.makedirs(root)
    p, calls = run(script, stubs, files, root)
    check(p.returncode != 0, "a wrong EIF digest stops the user data")
    check("systemctl" not in calls and not os.path.exists(os.path.join(root, "opt/kiln/app.eif")),
          "nothing enabled, no EIF kept: %r" % calls)


def case_enclave_runner():
    script, stubs, files = setup()
    root = os.path.join(work, "root")
    os.makedirs(root)
    p, _ = run(script, stubs, files, root)
    runner = os.path.join(root, "opt/kiln/kiln-enclave-run")
    state = os.path.join(work, "state")
    os.makedirs(state)
    env = {"KILN_EIF": "/opt/kiln/app.eif", "KILN_CPUS": "2", "KILN_MEMORY_MIB": "2048", "KILN_CID": "16",
           "KILN_DEBUG_FLAG": "", "KILN_REGION": "us-east-1", "KILN_MAX_STARTS": "5", "KILN_START_WINDOW": "600",
           "KILN_STATE_DIR": state, "KILN_WATCH_SECONDS": "0.1"}
    open(os.path.join(work, "running"), "w").write("2")
    p, calls = run(runner, stubs, files, root, **env)
    check(p.returncode == 1 and "no longer running" in p.stdout, "the runner exits when the enclave is gone: %r" % p.stdout)
    check("nitro-cli run-enclave --eif-path /opt/kiln/app.eif --cpu-count 2 --memory 2048 --enclave-cid 16" in calls,
          "runs the enclave with the deployment's sizing: %r" % calls)
    check("set-instance-health" not in calls, "one start is no reason to replace the instance")
    for _ in range(5):
        p, calls = run(runner, stubs, files, root, **env)
    check("autoscaling set-instance-health --instance-id i-0123456789abcdef0 --health-status Unhealthy" in calls,
          "the 6th start in 10 minutes reports the instance Unhealthy: %r" % calls)


run_case(globals(), sys.argv[4], work)
