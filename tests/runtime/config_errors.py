#!/usr/bin/env python3
"""Bad enclave runtime settings in kiln.json are one clear error naming the JSON pointer, exit 1,
and no EIF: ports out of range, reserved (9000, 7700-7709), listed twice, malformed "PUB:APP",
egress entries that do not parse, an attestation port that is also an ingress port.

Usage: config_errors.py KILN CC"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from kilntest import check, run_case  # noqa: E402

KILN, CC = sys.argv[1:3]
work = tempfile.mkdtemp(prefix="kiln-rtcfg-")
CASES = [
    ({"ports": [70000]}, "/enclave/ports/0: a port must be an integer from 1 to 65535"),
    ({"ports": [8080, 9000]}, "/enclave/ports/1: port 9000 is reserved"),
    ({"ports": ["443:7701"]}, "/enclave/ports/0: port 7701 is reserved"),
    ({"ports": [8080, "8080:9090"]}, "/enclave/ports/1: public port 8080 is listed twice"),
    ({"ports": ["443-8443"]}, "/enclave/ports/0: \"443-8443\" is not a port or \"PUBLIC:APP\""),
    ({"ports": [{"proxy_protocol": True}]}, "/enclave/ports/0: an object needs \"port\""),
    ({"egress": {"allow": ["api.example.com"]}}, "/enclave/egress/allow/0:"),
    ({"egress": {"allow": ["ok.example.com:443", "10.0.0.0/40:1"]}}, "/enclave/egress/allow/1:"),
    ({"egress": {"deny": ["a b:1"]}}, "/enclave/egress/deny/0: spaces and # are not allowed"),
    ({"ports": [7443], "attestation_port": 7443}, "/enclave/attestation_port: 7443 is also an ingress port"),
]


def case_errors():
    app = os.path.join(work, "app")
    os.makedirs(os.path.join(app, "rootfs/bin"))
    subprocess.run([CC, "-static", "-Os", "-o", os.path.join(app, "rootfs/bin/app"), "-x", "c", "-"],
                   input=b"int main(void){return 0;}", check=True)
    env = dict(os.environ)
    env.setdefault("KILN_CACHE_DIR", os.environ.get("KILN_TEST_SHARED_CACHE") or os.path.join(work, "cache"))
    for enclave, want in CASES:
        cfg = {"name": "app", "image": "dir:rootfs", "kernel": {"source": "debian-cloud:6.12"},
               "enclave": dict({"cmd": ["/bin/app"]}, **enclave)}
        json.dump(cfg, open(os.path.join(app, "kiln.json"), "w"))
        p = subprocess.run([KILN, "-C", app, "build"], capture_output=True, text=True, env=env, timeout=600)
        check(p.returncode == 1 and want in p.stderr, "%s -> exit 1 naming %r (got %d: %s)" % (
            json.dumps(enclave), want, p.returncode, p.stderr.strip()[-300:]))
        check(not os.path.exists(os.path.join(app, "app.eif")), "%s: no EIF written" % json.dumps(enclave))


run_case(globals(), "errors", work)
