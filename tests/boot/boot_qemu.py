#!/usr/bin/env python3
"""Boot tests: build the bundled example's EIF with kiln, take its kernel, cmdline and ramdisks
apart with an independent reader, and boot them in qemu (q35, TCG) with kiln.heartbeat=off.
Asserts kiln-init's steps, the app's output and exit status, and a clean power-off; negative
boots (missing /cmd, app not found, non-zero exit) must power off cleanly too.

Usage: boot_qemu.py KILN CC CASE    (kernel source from $KILN_TEST_KERNEL, default debian-cloud:6.12)
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from kilntest import check, console_lines, run_case  # noqa: E402

KILN, CC, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNEL_SOURCE = os.environ.get("KILN_TEST_KERNEL", "debian-cloud:6.12")
work = tempfile.mkdtemp(prefix="kiln-boot-")


def eif_sections(path):
    """(type, data) of every section, read sequentially after the 548-byte header."""
    data = open(path, "rb").read()
    assert data[:4] == b".eif", "not an EIF"
    count = struct.unpack(">H", data[26:28])[0]
    pos, out = 548, []
    for _ in range(count):
        kind, _, size = struct.unpack(">HHQ", data[pos:pos + 12])
        out.append((kind, data[pos + 12:pos + 12 + size]))
        pos += 12 + size
    return out


def newc(entries):
    """A newc cpio archive from (path, mode, data) entries, for hand-made ramdisks."""
    out = b""
    for ino, (name, mode, body) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        fields = [ino, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(name) + 1, 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
        hdr += b"\0" * (-len(hdr) % 4)
        out += hdr + body + b"\0" * (-len(body) % 4)
    return out


def build_app(cmd, env=None):
    app = os.path.join(work, "app")
    shutil.rmtree(app, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "share/examples/hello"), app)
    os.makedirs(os.path.join(app, "rootfs/bin"))
    subprocess.run([CC, "-static", "-Os", "-o", os.path.join(app, "rootfs/bin/hello"),
                    os.path.join(app, "hello.c")], check=True)
    cfg = json.load(open(os.path.join(app, "kiln.json")))
    cfg["enclave"]["cmd"] = cmd
    if env is not None:
        cfg["enclave"]["env"] = env
    cfg["kernel"]["source"] = KERNEL_SOURCE
    json.dump(cfg, open(os.path.join(app, "kiln.json"), "w"))
    e = dict(os.environ)
    e.setdefault("KILN_CACHE_DIR", os.environ.get("KILN_TEST_SHARED_CACHE") or os.path.join(work, "cache"))
    p = subprocess.run([KILN, "-C", app, "build", "--json"], capture_output=True, text=True, env=e, timeout=1800)
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        raise SystemExit("kiln build failed")
    # The kernel stage run again on its own is a cache hit (same source, same pinned package).
    k = subprocess.run([KILN, "-C", app, "run", "kernel", "--json"], capture_output=True, text=True, env=e,
                       timeout=1800)
    steps = json.loads(k.stdout).get("steps", []) if k.returncode == 0 else []
    check(steps and steps[0]["cached"] is True, "kernel %s: the second run is a cache hit" % KERNEL_SOURCE)
    return json.loads(p.stdout)["eif"]


def boot(kernel, cmdline, ramdisks, name, timeout=120):
    kpath = os.path.join(work, name + ".bzImage")
    rpath = os.path.join(work, name + ".initrd")
    open(kpath, "wb").write(kernel)
    open(rpath, "wb").write(b"".join(ramdisks))  # back to back, as Nitro places them
    cmd = ["qemu-system-x86_64", "-M", "q35", "-m", "512", "-smp", "1", "-nographic", "-no-reboot",
           "-kernel", kpath, "-initrd", rpath, "-append", cmdline + " kiln.heartbeat=off"]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, errors="replace")
        out, exited = p.stdout, True
    except subprocess.TimeoutExpired as e:
        out, exited = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), False
    seconds = time.time() - t0
    print("== %s: %.1f s under TCG ==\n%s" % (name, seconds, "\n".join(
        l for l in out.splitlines() if "kiln-init" in l or "hello from" in l or "panic" in l.lower())))
    check(exited, "%s: qemu exited by itself within %d s (the guest powered off)" % (name, timeout))
    check("Kernel panic" not in out, "%s: no kernel panic" % name)
    return console_lines(out)


def boot_microvm(kernel, cmdline, ramdisks, name, timeout=180):
    """microvm without ACPI, like Nitro and Firecracker: qemu announces its virtio-mmio devices only
    on the kernel command line. microvm does not exit on reboot, so stop at kiln-init's last line."""
    kpath = os.path.join(work, name + ".bzImage")
    rpath = os.path.join(work, name + ".initrd")
    open(kpath, "wb").write(kernel)
    open(rpath, "wb").write(b"".join(ramdisks))
    cmd = ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-m", "512", "-smp", "1", "-nographic",
           "-no-reboot", "-device", "virtio-rng-device", "-kernel", kpath, "-initrd", rpath,
           "-append", cmdline + " kiln.heartbeat=off"]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    out = []
    deadline = t0 + timeout
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while time.time() < deadline:
        if not sel.select(timeout=1):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "powering off" in line and "kiln-init: powering off" in console_lines("".join(out[-3:])):
            break
    proc.kill()
    proc.wait()
    text = "".join(out)
    print("== %s: %.1f s under TCG ==\n%s" % (name, time.time() - t0, "\n".join(
        l for l in text.splitlines() if "kiln-init" in l or "virtio" in l.lower() or "hello from" in l)))
    check("kiln-init: powering off" in console_lines(text), "%s: reached power-off within %d s" % (name, timeout))
    check("Kernel panic" not in text, "%s: no kernel panic" % name)
    return console_lines(text)


def case_microvm_cmdline_discovery():
    """debian-build kernel: a device announced only on the command line is found and bound."""
    eif = build_app(["/bin/hello", "from kiln"])
    kernel, cmdline, ramdisks = sections_of(eif)
    out = boot_microvm(kernel, cmdline, ramdisks, "microvm")
    check("virtio-mmio: Registering device virtio-mmio.0" in out, "the kernel registers the cmdline-announced device")
    check("driver virtio_rng" in out, "the virtio rng device is bound to its driver (kiln-init lists it)")
    check("hello from the enclave" in out, "the app runs on the debian-build kernel")


def sections_of(eif):
    secs = eif_sections(eif)
    kernel = [d for t, d in secs if t == 1][0]
    cmdline = [d for t, d in secs if t == 2][0].decode()
    ramdisks = [d for t, d in secs if t == 3]
    return kernel, cmdline, ramdisks


def case_example():
    eif = build_app(["/bin/hello", "from kiln"])
    kernel, cmdline, ramdisks = sections_of(eif)
    check(len(ramdisks) == 2, "two ramdisks: bootstrap and application")
    out = boot(kernel, cmdline, ramdisks, "example")
    for line in ["kiln-init: starting", "loaded", "heartbeat skipped", "switched root to /rootfs",
                 "network interface lo is up", "hello from the enclave: greeting=hello uid=0 argc=2 argv[0]=/bin/hello argv[1]=from kiln",
                 "application exited with status 0", "kiln-init: powering off"]:
        check(line in out, "example: console shows %r" % line)


def case_exit_status():
    eif = build_app(["/bin/hello", "--exit=3"])
    kernel, cmdline, ramdisks = sections_of(eif)
    out = boot(kernel, cmdline, ramdisks, "exit-status")
    check("application exited with status 3" in out, "non-zero exit status is logged")
    check("powering off" in out, "non-zero exit powers off")


def case_negative():
    eif = build_app(["/bin/hello", "from kiln"])
    kernel, cmdline, ramdisks = sections_of(eif)
    hello = open(os.path.join(work, "app/rootfs/bin/hello"), "rb").read()
    base = [("rootfs", 0o40755, b""), ("rootfs/bin", 0o40755, b""), ("rootfs/bin/hello", 0o100755, hello)]
    for d in ("dev", "proc", "sys", "run", "tmp"):
        base.append(("rootfs/" + d, 0o40755, b""))
    base.sort()
    no_cmd = newc(base + [("env", 0o100644, b"PATH=/bin\n")])
    out = boot(kernel, cmdline, [ramdisks[0], no_cmd], "missing-cmd")
    check("/cmd is missing or empty" in out and "powering off" in out, "missing /cmd: clear message, power-off")
    not_found = newc(base + [("cmd", 0o100644, b"nope\n"), ("env", 0o100644, b"PATH=/bin\n")])
    out = boot(kernel, cmdline, [ramdisks[0], not_found], "not-found")
    check("\"nope\" is not an executable file" in out and "powering off" in out, "app not found: clear message, power-off")


if not shutil.which("qemu-system-x86_64"):
    sys.exit("qemu-system-x86_64 is missing: apt-get install qemu-system-x86 (tests/run installs it)")
run_case(globals(), CASE, work)
