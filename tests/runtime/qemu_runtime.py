#!/usr/bin/env python3
"""The enclave runtime proven from inside, under qemu (this machine has no vhost-vsock): an EIF of
a test app (rt_guest.c) with ports 8080/8081 and an egress list boots with kiln.parent_cid=1, so
kiln-agent's parent is a kiln-host the app starts inside the guest, over vsock loopback. The app
reports each check as a RESULT line on the console. Also: changing only the egress list changes
PCR0 and PCR1 (the measured bootstrap ramdisk) and not PCR2.

Usage: qemu_runtime.py KILN CC KILN_HOST_STATIC CASE"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from kilntest import check, eif_parts, run_case  # noqa: E402

KILN, CC, HOST_BIN, CASE = sys.argv[1:5]
HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_SOURCE = os.environ.get("KILN_TEST_KERNEL", "debian-cloud:6.12")
work = tempfile.mkdtemp(prefix="kiln-rtq-")


def make_app(allow):
    app = os.path.join(work, "app")
    shutil.rmtree(app, ignore_errors=True)
    root = os.path.join(app, "rootfs")
    for d in ("bin", "etc", "tmp", "root", "dev", "proc", "sys", "run"):
        os.makedirs(os.path.join(root, d))
    subprocess.run([CC, "-static", "-O2", "-o", os.path.join(root, "bin/rt_guest"),
                    os.path.join(HERE, "rt_guest.c")], check=True)
    shutil.copy(HOST_BIN, os.path.join(root, "bin/kiln-host"))
    open(os.path.join(root, "etc/passwd"), "w").write("root:x:0:0:root:/root:/bin/sh\n")
    open(os.path.join(root, "etc/group"), "w").write("root:x:0:\n")
    cfg = {"name": "rt", "image": "dir:rootfs",
           "enclave": {"cmd": ["/bin/rt_guest"], "env": {}, "ports": [8080, "8081:8081"],
                       "egress": {"allow": allow, "deny": ["evil.example.com:*"]}},
           "kernel": {"source": KERNEL_SOURCE}}
    json.dump(cfg, open(os.path.join(app, "kiln.json"), "w"))
    env = dict(os.environ)
    env.setdefault("KILN_CACHE_DIR", os.environ.get("KILN_TEST_SHARED_CACHE") or os.path.join(work, "cache"))
    p = subprocess.run([KILN, "-C", app, "build", "--json"], capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        raise SystemExit("kiln build failed")
    return json.loads(p.stdout)


def case_inside():
    built = make_app(["127.0.0.1:9090"])
    kernel, cmdline, ramdisks = eif_parts(built["eif"])
    check(b"kiln-agent.conf" in ramdisks[0] and b"allow 127.0.0.1:9090" in ramdisks[0],
          "the egress list is in the measured bootstrap ramdisk")
    kpath, rpath = os.path.join(work, "bzImage"), os.path.join(work, "initrd")
    open(kpath, "wb").write(kernel)
    open(rpath, "wb").write(b"".join(ramdisks))
    cmd = ["qemu-system-x86_64", "-M", "q35", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
           "-kernel", kpath, "-initrd", rpath, "-append", cmdline + " kiln.heartbeat=off kiln.parent_cid=1"]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, errors="replace")
        out = p.stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        check(False, "the guest powered off within 600 s")
    print("== boot: %.1f s under TCG ==" % (time.time() - t0))
    keep = ("RESULT", "kiln-agent", "kiln-init", "Killed", "Out of memory", "segfault", "BUG", "Call Trace")
    print("\n".join(l for l in out.splitlines() if any(k in l for k in keep)))
    results = {}
    for line in out.splitlines():
        i = line.find("RESULT ")
        if i >= 0:
            parts = line[i:].split(" ", 3)
            if len(parts) >= 3:
                results.setdefault(parts[1], []).append(parts[2])
    for name in ["env", "home", "hostname", "path", "umask", "nofile", "stdin", "ingress_http", "ingress_1000",
                 "ingress_256mib", "egress_connect", "egress_plain_http", "egress_denied", "egress_imds",
                 "attestation_503", "log_records", "done"]:
        check(name in results and all(r == "ok" for r in results[name]), "in the enclave: %s %s" % (name, results.get(name)))
    check("started kiln-agent" in out, "kiln-init starts kiln-agent")
    check("application exited with status 0" in out, "the test app exits 0")


def case_pcr_change():
    first = make_app(["127.0.0.1:9090"])
    second = make_app(["127.0.0.1:9090", "api.example.com:443"])
    m1, m2 = first["Measurements"], second["Measurements"]
    print("egress list changed: PCR0 %s -> %s; PCR1 %s -> %s; PCR2 %s -> %s" % (
        m1["PCR0"][:16], m2["PCR0"][:16], m1["PCR1"][:16], m2["PCR1"][:16], m1["PCR2"][:16], m2["PCR2"][:16]))
    check(m1["PCR0"] != m2["PCR0"] and m1["PCR1"] != m2["PCR1"], "PCR0 and PCR1 change with the egress list")
    check(m1["PCR2"] == m2["PCR2"], "PCR2 (the app's ramdisk) does not")
    d = subprocess.run([KILN, "describe", second["eif"]], capture_output=True, text=True)
    for line in ["runtime (kiln-agent.conf, measured in PCR0 and PCR1):",
                 "  ingress vsock:any:8080 tcp:127.0.0.1:8080", "  ingress vsock:any:8081 tcp:127.0.0.1:8081",
                 "  allow 127.0.0.1:9090", "  allow api.example.com:443", "  deny evil.example.com:*",
                 "  vsock ports: 9000 heartbeat, 7700 egress, 7701 logs, 7702 attestation (7700-7709 reserved)"]:
        check(line in d.stdout.splitlines(), "kiln describe shows %r:\n%s" % (line, d.stdout[-600:]))


if not shutil.which("qemu-system-x86_64"):
    sys.exit("qemu-system-x86_64 is missing: apt-get install qemu-system-x86 (tests/run installs it)")
run_case(globals(), CASE, work)
