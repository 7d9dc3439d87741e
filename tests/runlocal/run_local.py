#!/usr/bin/env python3
"""`kiln run-local` tests: build the bundled example (or a small test app) with the debian-cloud
kernel (no kernel compile; $KILN_TEST_SHARED_CACHE shares the fetched kernel) and boot it through
the command: the console shows the app's line, the app's exit status is kiln's, --eif boots a
given file, --json prints one document, SIGINT powers the VM off (130, no qemu left, temp dir
gone), --timeout stops it, a missing qemu names the package, bad ports are refused.

Usage: run_local.py KILN CC CASE    (kernel source from $KILN_TEST_KERNEL, default debian-cloud:6.12)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from kilntest import check, console_lines, eif_parts, run_case  # noqa: E402

KILN, CC, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNEL_SOURCE = os.environ.get("KILN_TEST_KERNEL", "debian-cloud:6.12")
work = tempfile.mkdtemp(prefix="kiln-runlocal-")
TMP = os.path.join(work, "tmp")  # kiln run-local's TMPDIR: its temp dir and qemu's files live here
os.makedirs(TMP)
VSOCK = os.path.exists("/dev/vhost-vsock")
NOTICE = "/dev/vhost-vsock is not available"

# A test app that prints a line and sleeps, to be interrupted while it runs.
SLEEPER_C = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("sleeper: ready\n"); fflush(stdout); sleep(3600); return 0; }
"""
# A test app that dies by a signal (SIGSEGV, 11).
CRASHER_C = r"""
#include <signal.h>
#include <stdio.h>
int main(void) { printf("crasher: going down\n"); fflush(stdout); raise(SIGSEGV); return 0; }
"""


def newc(entries):
    """A newc cpio archive from (path, mode, data) entries."""
    out = b""
    for ino, (name, mode, body) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        fields = [ino, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(name) + 1, 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
        hdr += b"\0" * (-len(hdr) % 4)
        out += hdr + body + b"\0" * (-len(body) % 4)
    return out


def env():
    e = dict(os.environ)
    e.setdefault("KILN_CACHE_DIR", os.environ.get("KILN_TEST_SHARED_CACHE") or os.path.join(work, "cache"))
    e["TMPDIR"] = TMP
    return e


def make_app(name, cmd, sleeper=False, ports=None, crasher=False):
    """The bundled example with its hello program compiled, a given cmd and the test kernel."""
    app = os.path.join(work, name)
    shutil.copytree(os.path.join(ROOT, "share/examples/hello"), app)
    os.makedirs(os.path.join(app, "rootfs/bin"))
    subprocess.run([CC, "-static", "-Os", "-o", os.path.join(app, "rootfs/bin/hello"),
                    os.path.join(app, "hello.c")], check=True)
    if sleeper:
        src = os.path.join(work, "sleeper.c")
        open(src, "w").write(SLEEPER_C)
        subprocess.run([CC, "-static", "-Os", "-o", os.path.join(app, "rootfs/bin/sleeper"), src], check=True)
    if crasher:
        src = os.path.join(work, "crasher.c")
        open(src, "w").write(CRASHER_C)
        subprocess.run([CC, "-static", "-Os", "-o", os.path.join(app, "rootfs/bin/crasher"), src], check=True)
    cfg = json.load(open(os.path.join(app, "kiln.json")))
    cfg["enclave"]["cmd"] = cmd
    if ports is not None:
        cfg["enclave"]["ports"] = ports
    cfg["kernel"]["source"] = KERNEL_SOURCE
    json.dump(cfg, open(os.path.join(app, "kiln.json"), "w"))
    return app


def run_local(app, *args, timeout=600, extra_env=None):
    e = env()
    e.update(extra_env or {})
    t0 = time.time()
    p = subprocess.run([KILN, "-C", app, "run-local"] + list(args), capture_output=True, text=True,
                       env=e, timeout=timeout, errors="replace")
    print("== kiln run-local %s -> %d in %.1f s\n-- stdout:\n%s-- stderr:\n%s" % (
        " ".join(args), p.returncode, time.time() - t0, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def qemu_processes():
    """qemu processes whose command line names a file of this test (no qemu may be left)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = open("/proc/%s/cmdline" % pid, "rb").read().decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmdline and work in cmdline:
            found.append(int(pid))
    return found


def check_clean(what):
    check(qemu_processes() == [], "%s: no qemu process of this test left (in /proc)" % what)
    check(os.listdir(TMP) == [], "%s: kiln run-local removed its temporary directory (left: %s)"
          % (what, os.listdir(TMP)))


def check_vsock_notice(p, what):
    if VSOCK:
        check(NOTICE not in p.stderr, "%s: /dev/vhost-vsock exists, so no console-only notice" % what)
    else:
        check(p.stderr.count(NOTICE) == 1, "%s: the console-only notice appears exactly once" % what)


def case_example():
    app = make_app("app", ["/bin/hello", "from kiln"])
    p = run_local(app)
    check(p.returncode == 0, "example: exit status 0 (got %d)" % p.returncode)
    for line in ["kiln-init: starting", "hello from the enclave: greeting=hello uid=0 argc=2 argv[0]=/bin/hello argv[1]=from kiln",
                 "kiln-init: application exited with status 0"]:
        check(line in console_lines(p.stdout), "example: the console on stdout shows %r" % line)
    check("\r" not in p.stdout, "example: console lines end in \\n only")
    check(os.path.exists(os.path.join(app, "hello.eif")), "example: the app's EIF was built as kiln build would")
    check_vsock_notice(p, "example")
    check_clean("example")
    # A second run boots the same EIF (cached stages, nothing rebuilt).
    before = os.stat(os.path.join(app, "hello.eif")).st_ino
    p = run_local(app)
    check(p.returncode == 0 and "eif: cached" in p.stderr, "example: the second run reuses the cached EIF")
    check(os.stat(os.path.join(app, "hello.eif")).st_ino == before, "example: hello.eif is not rewritten")


def case_exit_status():
    app = make_app("app", ["/bin/hello", "--exit=3"])
    p = run_local(app)
    check(p.returncode == 3, "exit_status: the app's exit 3 is kiln's exit status (got %d)" % p.returncode)
    check("application exited with status 3" in console_lines(p.stdout), "exit_status: kiln-init's line is on the console")
    check_clean("exit_status")


def case_app_failures():
    app = make_app("app", ["/bin/crasher"], crasher=True)
    p = run_local(app)
    check(p.returncode == 128 + 11, "app_failures: killed by SIGSEGV -> exit 139 (got %d)" % p.returncode)
    check("crasher: going down" in console_lines(p.stdout), "app_failures: the app's line is on the console")
    shutil.rmtree(app)
    # An EIF without /cmd (kiln's bootstrap ramdisk, a hand-made application ramdisk): kiln-init
    # stops with a FATAL line, which becomes the error.
    app = make_app("app", ["/bin/hello"])
    eif = os.path.join(work, "base.eif")
    subprocess.run([KILN, "-C", app, "build", "-o", eif], check=True, capture_output=True, env=env())
    kernel, cmdline, ramdisks = eif_parts(eif)
    files = {}
    for name, data in (("kernel", kernel), ("boot.cpio", ramdisks[0]), ("app.cpio", newc([("rootfs", 0o40755, b"")]))):
        files[name] = os.path.join(work, name)
        open(files[name], "wb").write(data)
    no_cmd = os.path.join(work, "no-cmd.eif")
    subprocess.run([KILN, "eif-build", "--kernel", files["kernel"], "--cmdline", cmdline, "--ramdisk", files["boot.cpio"],
                    "--ramdisk", files["app.cpio"], "--output", no_cmd], check=True, capture_output=True)
    p = run_local(app, "--eif", no_cmd)
    check(p.returncode == 1, "app_failures: a kiln-init FATAL -> exit 1 (got %d)" % p.returncode)
    check("kiln run-local: kiln-init: /cmd is missing or empty" in p.stderr,
          "app_failures: kiln-init's FATAL message is the error")
    check_clean("app_failures")


def case_eif_flag():
    app = make_app("app", ["/bin/hello", "--exit=7", "given eif"])
    out = os.path.join(work, "given.eif")
    b = subprocess.run([KILN, "-C", app, "build", "-o", out], capture_output=True, text=True, env=env())
    check(b.returncode == 0, "eif_flag: kiln build -o %s (%s)" % (out, b.stderr[-500:]))
    shutil.rmtree(app)  # no kiln.json any more: --eif alone is enough
    empty = os.path.join(work, "empty")
    os.makedirs(empty)
    p = run_local(empty, "--eif", out, "--cpus", "1", "--memory", "256M")
    check(p.returncode == 7, "eif_flag: the given EIF's app exit status 7 (got %d)" % p.returncode)
    check("argv[2]=given eif" in console_lines(p.stdout), "eif_flag: the given EIF's app ran")
    check(os.listdir(empty) == [], "eif_flag: nothing written to the app directory")
    p = run_local(empty, "--eif", os.path.join(work, "missing.eif"))
    check(p.returncode == 1 and "missing.eif" in p.stderr, "eif_flag: a missing EIF is one error naming it")
    open(os.path.join(work, "junk.eif"), "wb").write(b"not an eif at all" * 100)
    p = run_local(empty, "--eif", os.path.join(work, "junk.eif"))
    check(p.returncode == 1 and "junk.eif" in p.stderr, "eif_flag: a file that is not an EIF is one error naming it")
    check_clean("eif_flag")


def case_json():
    app = make_app("app", ["/bin/hello", "from kiln"])
    p = run_local(app, "--json")
    check(p.returncode == 0, "json: exit status 0")
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        doc = {}
        check(False, "json: stdout is one JSON document")
    check(doc.get("exit_status") == 0, "json: exit_status 0")
    check(doc.get("vsock") is VSOCK, "json: vsock is %s on this machine" % VSOCK)
    console = [l for l in p.stderr.splitlines() if l.startswith("kiln-init: ") or l.startswith("hello from")]
    check(isinstance(doc.get("console_lines"), int) and doc["console_lines"] >= len(console) > 0,
          "json: console_lines (%s) counts at least the %d kiln-init/app lines, now on stderr"
          % (doc.get("console_lines"), len(console)))
    check(isinstance(doc.get("seconds"), (int, float)) and doc["seconds"] > 0, "json: the run's duration")
    check(doc.get("machine", "").startswith("microvm"), "json: the machine is microvm")
    check_clean("json")


def case_sigint():
    app = make_app("app", ["/bin/sleeper"], sleeper=True)
    proc = subprocess.Popen([KILN, "-C", app, "run-local"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(), errors="replace")
    seen, deadline = [], time.time() + 600
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "sleeper: ready" in line:
            break
    check(any("sleeper: ready" in l for l in seen), "sigint: the app started (%s)" % "".join(seen[-5:]))
    check(len(qemu_processes()) == 1, "sigint: one qemu runs the app")
    proc.send_signal(signal.SIGINT)
    try:
        rest, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, err = proc.communicate()
        check(False, "sigint: kiln run-local ended within 60 s of SIGINT")
    print("-- stderr:\n" + err)
    check(proc.returncode == 130, "sigint: exit status 130 (got %s)" % proc.returncode)
    check("interrupted" in err, "sigint: says it was interrupted")
    check_clean("sigint")


def case_timeout():
    app = make_app("app", ["/bin/sleeper"], sleeper=True)
    t0 = time.time()
    p = run_local(app, "--timeout", "20")
    check(p.returncode == 1, "timeout: exit status 1 (got %d)" % p.returncode)
    check("did not finish within 20 s (--timeout)" in p.stderr, "timeout: a clear error")
    check(time.time() - t0 < 120, "timeout: the VM was stopped soon after 20 s")
    check_clean("timeout")


def case_qemu_missing():
    app = make_app("app", ["/bin/hello"])
    p = run_local(app, "--qemu", os.path.join(work, "nonexistent"))
    check(p.returncode == 1, "qemu_missing: --qemu nonexistent exits 1")
    check("apt-get install qemu-system-x86" in p.stderr and "nonexistent" in p.stderr,
          "qemu_missing: --qemu nonexistent names the file and the apt line")
    bare = os.path.join(work, "bin")
    os.makedirs(bare)
    p = run_local(app, extra_env={"PATH": bare})
    check(p.returncode == 1 and p.stderr.count("apt-get install qemu-system-x86") == 1,
          "qemu_missing: no qemu in PATH: one error with the apt line")
    check(not os.path.exists(os.path.join(app, "hello.eif")), "qemu_missing: nothing built before the check")
    p = run_local(app, "--json", extra_env={"PATH": bare})
    doc = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    check(doc.get("error", {}).get("code") == "not_found", "qemu_missing: --json gives an error document")
    check_clean("qemu_missing")


def case_bad_ports():
    # /aws/ports (today's field) is read when /enclave/ports is absent; /enclave/ports is checked
    # too once kiln.json's schema accepts it (the runtime's ports).
    probe = make_app("probe", ["/bin/hello"], ports=[8080])
    enclave_ports = subprocess.run([KILN, "-C", probe, "build"], capture_output=True, env=env()).returncode == 0
    print("/enclave/ports accepted by kiln.json's schema: %s" % enclave_ports)
    shutil.rmtree(probe)
    for where in ["aws"] + (["enclave"] if enclave_ports else []):
        for ports, words in [([9000], "/%s/ports/0" % where), ([8080, "8080:81"], "listed twice"),
                             (["7701:80"], "reserved"), ([70000], "/%s/ports/0" % where), (["80:x"], "PUBLIC:APP")]:
            app = make_app("app", ["/bin/hello"], ports=ports if where == "enclave" else None)
            if where == "aws":
                cfg = json.load(open(os.path.join(app, "kiln.json")))
                cfg["aws"] = {"ports": ports}
                json.dump(cfg, open(os.path.join(app, "kiln.json"), "w"))
            p = run_local(app)
            check(p.returncode == 1 and words in p.stderr, "bad_ports: /%s/ports %s refused with %r" % (where, ports, words))
            check(qemu_processes() == [], "bad_ports: %s: no VM started" % ports)
            shutil.rmtree(app)
    for args in (["--cpus", "0"], ["--memory", "lots"], ["--timeout"], ["--bogus"]):
        p = run_local(work, *args)
        check(p.returncode == 2, "bad_ports: usage error for %s (got %d)" % (args, p.returncode))
    check_clean("bad_ports")


if not shutil.which("qemu-system-x86_64"):
    sys.exit("qemu-system-x86_64 is missing: apt-get install qemu-system-x86 (tests/run installs it)")
run_case(globals(), CASE, work)
