#!/usr/bin/env python3
"""`kiln status`'s attestation line against moto: a deployment of a kiln-built EIF whose instance
moto describes with the public address 127.0.0.1 (an Elastic IP allocated as that address), and a
test attestation server on 127.0.0.1:<attestation_port> answering like kiln-host with documents
signed by a test CA (tests/attestation/attestlib.py) over that EIF's PCRs; --attestation-root
makes the test CA the anchor. Passing, other PCRs (the check named), the AWS root (chain),
a slow and a dead endpoint (reported per instance, status still answers promptly), and no
attestation port in kiln.json.

Usage: test_status_attest.py KILN SERVER_DIR
"""
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "attestation"))
from kilntest import check, run_case, server_env  # noqa: E402

import attestlib  # noqa: E402
import boto3  # noqa: E402

KILN, SERVER_DIR = sys.argv[1:3]
WORK = tempfile.mkdtemp(prefix="kiln-status-attest-")
APP = os.path.join(WORK, "app")
URL = server_env(SERVER_DIR, "moto-aws")["URL"]
ADMIN = {"AWS_ACCESS_KEY_ID": "AKIDADMINTEST", "AWS_SECRET_ACCESS_KEY": "admin-secret"}


class Enclave:
    """kiln-host's attestation port as the test sees it: a document for the nonce it receives,
    signed by the test CA over self.pcrs; mode "slow" answers after 10 s."""

    def __init__(self, ca):
        outer = self
        self.ca, self.pcrs, self.mode, self.nonces = ca, {}, "ok", []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                nonce = bytes.fromhex(q.get("nonce", [""])[0])
                outer.nonces.append(nonce.hex())
                if outer.mode == "slow":
                    time.sleep(10)
                body = outer.ca.document(outer.pcrs, nonce=nonce)
                self.send_response(200)
                self.send_header("Content-Type", "application/cbor")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def client(service):
    return boto3.client(service, endpoint_url=URL, region_name="us-east-1",
                        aws_access_key_id=ADMIN["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=ADMIN["AWS_SECRET_ACCESS_KEY"])


def kiln(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEPLOYMENT_ID"}
    env.update(ADMIN, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=URL, HOME=WORK, NO_COLOR="1",
               AWS_EC2_METADATA_DISABLED="true", KILN_CACHE_DIR=os.path.join(WORK, "cache"))
    p = subprocess.run([KILN, "-C", APP] + list(args), env=env, capture_output=True, text=True, timeout=timeout)
    check(not any(s in p.stderr for s in ("Sanitizer", "runtime error:")), "no sanitizer report: %s" % p.stderr[-1500:])
    return p


def ok(proc, what):
    check(proc.returncode == 0, "%s: exit %d\n%s" % (what, proc.returncode, proc.stderr[-3000:]))
    try:
        return json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    except ValueError:
        return {}


def write_app(attestation_port):
    enclave = {"cpus": 2, "memory_mib": 1024}
    if attestation_port:
        enclave["attestation_port"] = attestation_port
    with open(os.path.join(APP, "kiln.json"), "w") as f:
        json.dump({"name": "hello", "aws": {"ports": [8080]}, "enclave": enclave}, f)


def make_eif():
    d = os.path.join(WORK, "parts")
    os.makedirs(d, exist_ok=True)
    for part, size in (("kernel", 300000), ("boot", 200000), ("app", 500000)):
        with open(os.path.join(d, part), "wb") as f:
            f.write(os.urandom(size))
    out = os.path.join(APP, "hello.eif")
    subprocess.run([KILN, "eif-build", "--kernel", os.path.join(d, "kernel"), "--cmdline", "console=ttyS0",
                    "--ramdisk", os.path.join(d, "boot"), "--ramdisk", os.path.join(d, "app"), "--output", out],
                   check=True, capture_output=True)
    return out


def attestation(doc):
    return {a["instance"]: a for a in doc.get("attestation", [])}


def case_status_attestation():
    os.makedirs(APP)
    ca = attestlib.TestCA(os.path.join(WORK, "ca"))
    root = ca.path("root.pem")
    enclave = Enclave(ca)
    try:
        write_app(enclave.port)
        ok(kiln("setup"), "setup")
        d = ok(kiln("deploy", "--eif", make_eif(), "--json"), "deploy")
        instance = (d.get("instance_ids") or [""])[0]
        enclave.pcrs = attestlib.pcrs_of_eif(d.get("measurements", {}))
        ec2 = client("ec2")
        eip = ec2.allocate_address(Domain="vpc", Address="127.0.0.1")
        ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=instance, AllowReassociation=True)
        seen = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
        check(seen.get("PublicIpAddress") == "127.0.0.1", "moto describes the instance at 127.0.0.1: %s"
              % seen.get("PublicIpAddress"))

        p = kiln("status", "--attestation-root", root, "--json")
        a = attestation(ok(p, "status --json")).get(instance, {})
        check(a.get("attested") is True and a.get("result") == "attested: PCRs match build %s" % d.get("eif_key"),
              "the instance is attested against the deployed build: %s" % a)
        check(a.get("address") == "127.0.0.1" and a.get("url") == "http://127.0.0.1:%d/attestation" % enclave.port,
              "asked at the instance's address and the attestation port: %s" % a)
        check("trust anchor: %s, not the AWS Nitro root" % root in p.stderr, "the test anchor is announced")
        text = kiln("status", "--attestation-root", root)
        ok(text, "status")
        line = [l for l in text.stdout.splitlines() if l.startswith("attestation")]
        check(line == ["%-22s %s (127.0.0.1) attested: PCRs match build %s" % ("attestation", instance, d.get("eif_key"))],
              "status prints the attestation line: %s" % line)
        print("kiln status:\n" + text.stdout)
        check(len(enclave.nonces) == 2 and len(set(enclave.nonces)) == 2 and all(len(n) == 64 for n in enclave.nonces),
              "each status sends a fresh 32-byte nonce: %s" % enclave.nonces)

        other = attestlib.pcrs_of_eif(d.get("measurements", {}))
        other[0] = bytes(range(48))
        enclave.pcrs = other
        a = attestation(ok(kiln("status", "--attestation-root", root, "--json"), "status, other PCR0")).get(instance, {})
        check(a.get("attested") is False and a.get("failed_checks") == ["PCR0"] and
              a.get("result", "").startswith("not attested: PCR0"), "another PCR0 is named: %s" % a)
        enclave.pcrs = attestlib.pcrs_of_eif(d.get("measurements", {}))
        a = attestation(ok(kiln("status", "--json"), "status with the AWS root")).get(instance, {})
        check(a.get("attested") is False and "chain" in a.get("failed_checks", []), "the AWS root refuses the test CA: %s" % a)

        enclave.mode = "slow"
        started = time.monotonic()
        a = attestation(ok(kiln("status", "--attestation-root", root, "--json"), "status, slow endpoint")).get(instance, {})
        took = time.monotonic() - started
        check(a.get("attested") is False and "unreachable" in a.get("result", "") and "within 3 s" in a.get("result", ""),
              "a slow endpoint times out: %s" % a)
        check(took < 30, "status answers promptly despite it: %.1f s" % took)
        enclave.stop()
        a = attestation(ok(kiln("status", "--attestation-root", root, "--json"), "status, dead endpoint")).get(instance, {})
        check(a.get("attested") is False and a.get("result", "").startswith("unreachable: "), "a dead endpoint: %s" % a)
        write_app(None)
        st = ok(kiln("status", "--json"), "status without an attestation port")
        check("attestation" not in st and "attestation_port" in st.get("attestation_note", ""),
              "without /enclave/attestation_port nothing is asked: %s" % st.get("attestation_note"))
        p = kiln("status", "--attestation-root")
        check(p.returncode == 2 and "--attestation-root needs a value" in p.stderr, "usage: %s" % p.stderr)
    finally:
        enclave.httpd.server_close()
        ok(kiln("teardown", "--yes", "--delete-bucket"), "teardown")


run_case(globals(), "status_attestation", WORK)
