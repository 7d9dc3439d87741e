#!/usr/bin/env python3
"""The credential chain against real sources: temporary HOME with ~/.aws files, credential_process
programs, a loopback IMDSv2 and container-credentials responder started by this test, and STS
(AssumeRole, AssumeRoleWithWebIdentity) on moto's server.

Usage: test_credentials.py CREDS_PROBE SERVER_DIR CASE
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from kilntest import check, faultproxy, faultproxy_configure, run_case, server_env  # noqa: E402

PROBE, SERVER_DIR, CASE = sys.argv[1:4]
WORK = tempfile.mkdtemp(prefix="kiln-creds-test-")
HOME = os.path.join(WORK, "home")
os.makedirs(os.path.join(HOME, ".aws"))


def write(rel, text, mode=0o644):
    path = os.path.join(HOME, rel)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def probe(times=1, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=HOME, AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1")
    env.update({k: v for k, v in env_extra.items() if v is not None})
    for k, v in env_extra.items():
        if v is None:
            env.pop(k, None)
    p = subprocess.run([PROBE, str(times)], env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, (json.loads(p.stdout) if p.returncode == 0 else {}), p.stderr


def expect(env, key_id, source, what):
    rc, doc, err = probe(**env)
    check(rc == 0, "%s: resolved (stderr: %s)" % (what, err.strip()))
    check(doc.get("access_key_id") == key_id, "%s: key %s, got %s" % (what, key_id, doc.get("access_key_id")))
    check(source in doc.get("source", ""), "%s: source %r, got %r" % (what, source, doc.get("source")))
    return doc


def refuse(env, needle, what):
    rc, _, err = probe(**env)
    check(rc == 1, "%s: fails" % what)
    check(needle in err, "%s: message should contain %r, got: %s" % (what, needle, err.strip()))


class Responder(BaseHTTPRequestHandler):
    """IMDSv2 (token required) and a container credentials endpoint (Authorization required)."""
    protocol_version = "HTTP/1.1"
    token = "imds-token-123"
    expiration = "2099-01-01T00:00:00Z"
    credential_fetches = 0

    def log_message(self, *a):
        pass

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def creds(self, key):
        Responder.credential_fetches += 1
        return json.dumps({"AccessKeyId": key, "SecretAccessKey": "s", "Token": "t",
                           "Expiration": Responder.expiration})

    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, self.token)
        return self.reply(400, "")

    def do_GET(self):
        if self.path.startswith("/latest/"):
            if self.headers.get("X-aws-ec2-metadata-token") != self.token:
                return self.reply(401, "")
            if self.path == "/latest/meta-data/iam/security-credentials/":
                return self.reply(200, "enclave-host-role\n")
            if self.path == "/latest/meta-data/iam/security-credentials/enclave-host-role":
                return self.reply(200, self.creds("AKIDFROMIMDS"))
            return self.reply(404, "")
        if self.path == "/container-creds":
            if self.headers.get("Authorization") != "container-secret":
                return self.reply(403, "")
            return self.reply(200, self.creds("AKIDFROMCONTAINER"))
        return self.reply(404, "")


def responder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Responder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % server.server_address[1]


# --- cases -----------------------------------------------------------------------------------

def case_environment_and_files():
    write(".aws/credentials", "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = x\n"
          "# a comment\n[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = y\n"
          "[half]\naws_access_key_id = AKIDHALF\n")
    write(".aws/config", "[default]\nregion = eu-west-1\n[profile dev]\nregion = us-west-2\n"
          "aws_access_key_id = AKIDIGNORED\n")
    expect({"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "z"}, "AKIDENV", "environment",
           "environment wins over files")
    expect({}, "AKIDDEFAULT", "profile default", "default profile")
    expect({"AWS_PROFILE": "dev"}, "AKIDDEV", "profile dev", "AWS_PROFILE; credentials file wins")
    refuse({"AWS_ACCESS_KEY_ID": "AKIDONLY"}, "AWS_SECRET_ACCESS_KEY", "half the environment pair")
    refuse({"AWS_PROFILE": "half"}, "aws_secret_access_key", "half a profile")
    refuse({"AWS_PROFILE": "nosuch"}, "AWS_PROFILE=nosuch", "unknown profile")
    alt = write("alt-credentials", "[default]\naws_access_key_id = AKIDALT\naws_secret_access_key = a\n")
    expect({"AWS_SHARED_CREDENTIALS_FILE": alt}, "AKIDALT", "profile default", "AWS_SHARED_CREDENTIALS_FILE")
    bad = write("bad-config", "[profile x]\nthis line has no equals sign\n")
    refuse({"AWS_CONFIG_FILE": bad, "AWS_PROFILE": "x"}, "bad-config:2", "malformed INI names file:line")
    os.remove(os.path.join(HOME, ".aws", "credentials"))
    os.remove(os.path.join(HOME, ".aws", "config"))
    refuse({}, "no AWS credentials: tried environment", "nothing anywhere lists what was tried")
    other = write("other-config", "[profile dev]\nregion = us-east-2\n")
    refuse({"AWS_PROFILE": "ci", "AWS_CONFIG_FILE": other, "AWS_SHARED_CREDENTIALS_FILE": alt},
           "neither %s nor %s" % (other, alt), "an unknown profile names the files actually read")


def case_credential_process():
    ok_script = write("ok.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
                      "\"SecretAccessKey\": \"p\", \"SessionToken\": \"st\", "
                      "\"Expiration\": \"2099-01-01T00:00:00Z\"}'\n", 0o755)
    fail_script = write("fail.sh", "#!/bin/sh\necho 'vault is sealed' >&2\nexit 3\n", 0o755)
    junk_script = write("junk.sh", "#!/bin/sh\necho not json\n", 0o755)
    write(".aws/config", "[profile proc]\ncredential_process = %s\n[profile fail]\ncredential_process = %s\n"
          "[profile junk]\ncredential_process = %s\n" % (ok_script, fail_script, junk_script))
    doc = expect({"AWS_PROFILE": "proc"}, "AKIDPROC", "process", "credential_process")
    check(doc.get("has_session_token") and doc.get("expires") == 4070908800, "token and expiry kept: %s" % doc)
    refuse({"AWS_PROFILE": "fail"}, "vault is sealed", "failing process shows its stderr")
    refuse({"AWS_PROFILE": "junk"}, "not JSON", "bad process output")


def case_imds_and_container():
    url = responder()
    doc = expect({"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": url},
                 "AKIDFROMIMDS", "instance metadata", "IMDSv2 with a token")
    check(doc.get("expires") == 4070908800, "IMDS credentials expire (refreshed by the client)")
    expect({"AWS_CONTAINER_CREDENTIALS_FULL_URI": url + "/container-creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-secret"},
           "AKIDFROMCONTAINER", "container", "container credentials with a token")
    token = write("ctoken", "container-secret\n")
    expect({"AWS_CONTAINER_CREDENTIALS_FULL_URI": url + "/container-creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": token},
           "AKIDFROMCONTAINER", "container", "container token from a file")
    refuse({"AWS_CONTAINER_CREDENTIALS_FULL_URI": url + "/container-creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"}, "HTTP 403", "wrong container token")
    refuse({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/creds"}, "https or a loopback",
           "container URI off loopback refused")


def case_refresh():
    """Credentials expiring within 5 minutes are fetched again before use; others are not."""
    import time as _time
    url = responder()
    env = {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": url}
    Responder.expiration = "2099-01-01T00:00:00Z"
    Responder.credential_fetches = 0
    rc, _, err = probe(3, **env)
    check(rc == 0 and Responder.credential_fetches == 1, "far expiry: fetched once, got %d (%s)" % (
        Responder.credential_fetches, err))
    Responder.expiration = _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(_time.time() + 120))
    Responder.credential_fetches = 0
    rc, _, err = probe(3, **env)
    check(rc == 0 and Responder.credential_fetches == 3, "expiring: fetched before each use, got %d (%s)" % (
        Responder.credential_fetches, err))


def case_sts_roles():
    moto = server_env(SERVER_DIR, "moto-aws")["URL"]
    write(".aws/credentials", "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = b\n")
    write(".aws/config", "[profile deployer]\nrole_arn = arn:aws:iam::123456789012:role/deployer\n"
          "source_profile = base\nrole_session_name = kiln-test\n"
          "[profile loop-a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = loop-b\n"
          "[profile loop-b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = loop-a\n")
    rc, doc, err = probe(AWS_PROFILE="deployer", AWS_ENDPOINT_URL=moto)
    check(rc == 0, "AssumeRole: %s" % err)
    check(doc.get("access_key_id") not in ("", None, "AKIDBASE") and doc.get("has_session_token"),
          "AssumeRole gives new session credentials: %s" % doc)
    check("assumed role" in doc.get("source", ""), "source says assumed role: %s" % doc)
    refuse({"AWS_PROFILE": "loop-a", "AWS_ENDPOINT_URL": moto}, "a loop?", "source_profile loop")
    token = write("web-token", "eyJ-test-oidc-token\n")
    rc, doc, err = probe(AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_ARN="arn:aws:iam::123456789012:role/ci",
                         AWS_ENDPOINT_URL=moto)
    check(rc == 0 and doc.get("has_session_token") and "web identity" in doc.get("source", ""),
          "AssumeRoleWithWebIdentity: %s %s" % (doc, err))
    refuse({"AWS_WEB_IDENTITY_TOKEN_FILE": token}, "AWS_ROLE_ARN", "web identity without a role")
    # keys in the environment with AWS_ROLE_ARN (the deploy credentials file): that role is assumed
    rc, doc, err = probe(AWS_ACCESS_KEY_ID="AKIDDEPLOYUSER", AWS_SECRET_ACCESS_KEY="d",
                         AWS_ROLE_ARN="arn:aws:iam::123456789012:role/deploy-role", AWS_ENDPOINT_URL=moto)
    check(rc == 0 and doc.get("access_key_id") not in ("", None, "AKIDDEPLOYUSER") and doc.get("has_session_token")
          and "assumed role (environment)" in doc.get("source", ""),
          "environment keys + AWS_ROLE_ARN: the role assumed: %s %s" % (doc, err))
    rc, doc, err = probe(AWS_ACCESS_KEY_ID="AKIDDEPLOYUSER", AWS_SECRET_ACCESS_KEY="d", AWS_ENDPOINT_URL=moto)
    check(rc == 0 and doc.get("access_key_id") == "AKIDDEPLOYUSER" and doc.get("source") == "environment",
          "environment keys without AWS_ROLE_ARN stay static: %s %s" % (doc, err))


REFUSED = ('<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security '
           'token included in the request is invalid.</Message></Error><RequestId>r-1</RequestId></ErrorResponse>')


def case_sts_settling():
    """Deploy credentials `kiln setup` just made: STS refuses them while IAM learns the new key
    (a fault proxy of ours in front of moto answers the first AssumeRole calls with IAM's error);
    kiln asks again until they are 90 s old. Older or undated keys get the refusal at once."""
    proxy = server_env(SERVER_DIR, "faults-aws")["URL"]
    deploy = dict(AWS_ACCESS_KEY_ID="AKIDNEWDEPLOYUSER", AWS_SECRET_ACCESS_KEY="d", AWS_ENDPOINT_URL=proxy,
                  AWS_ROLE_ARN="arn:aws:iam::123456789012:role/dep-deploy-role")
    refusal = {"status": 403, "body": REFUSED, "headers": {"Content-Type": "text/xml"}}
    faultproxy_configure(proxy, kind="respond", respond=refusal, match=" AssumeRole$", first_n=2)
    t0 = time.time()
    rc, doc, err = probe(KILN_CREDENTIALS_CREATED=str(int(time.time()) - 2), **deploy)
    calls = faultproxy(proxy, "stats")["operations"].get("AssumeRole")
    check(rc == 0 and doc.get("has_session_token") and "assumed role" in doc.get("source", ""),
          "fresh keys: the role is assumed after two refusals: %s %s" % (doc, err))
    check(calls == 3, "fresh keys: STS was asked three times, got %s" % calls)
    check(err.count("STS refused the deploy credentials made") == 2 and "InvalidClientTokenId" in err,
          "each wait is logged with IAM's code: %s" % err)
    check(time.time() - t0 < 30, "the two waits are short (1 s, 2 s)")
    for what, created in (("keys made ten minutes ago", str(int(time.time()) - 600)), ("undated keys", None)):
        faultproxy_configure(proxy, kind="respond", respond=refusal, match=" AssumeRole$", first_n=1)
        rc, doc, err = probe(KILN_CREDENTIALS_CREATED=created, **deploy)
        calls = faultproxy(proxy, "stats")["operations"].get("AssumeRole")
        check(rc == 1 and "InvalidClientTokenId" in err and "dep-deploy-role" in err,
              "%s: the refusal is the answer, naming the role: %s" % (what, err.strip()))
        check(calls == 1, "%s: STS was asked once, got %s" % (what, calls))
    # a refusal that outlasts the settling time ends with IAM's error, not a hang
    faultproxy_configure(proxy, kind="respond", respond=refusal, match=" AssumeRole$", first_n=100)
    t0 = time.time()
    rc, doc, err = probe(KILN_CREDENTIALS_CREATED=str(int(time.time()) - 86), **deploy)
    check(rc == 1 and "InvalidClientTokenId" in err and time.time() - t0 < 15,
          "a refusal past the settling time is final (%.1f s): %s" % (time.time() - t0, err.strip()[-300:]))
    faultproxy_configure(proxy)


run_case(globals(), CASE, WORK)
