#!/usr/bin/env python3
"""aarch64 (Graviton) EIFs built on x86-64: the bundled example built with `kiln build --arch
aarch64` (debian-build:6.12 and kiln-init cross-compiled with the pinned aarch64 toolchain) and booted in
qemu-system-aarch64 (-M virt, TCG) with the EIF's own command line plus console=ttyAMA0 (the virt
machine's PL011 UART; its devices come from qemu's device tree, not the command line), and two
builds of it in different directories that must give the same EIF and PCRs.

Usage: arm_build.py KILN CASE    (CASE: boot, reproducible, toolchain_missing)
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

KILN, CASE = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CROSS_CC = "aarch64-linux-gnu-gcc"
work = tempfile.mkdtemp(prefix="kiln-arm-")


def eif_sections(path):
    """(type, data) of every section, read sequentially after the 548-byte header; and the flags."""
    data = open(path, "rb").read()
    assert data[:4] == b".eif", "not an EIF"
    flags = struct.unpack(">H", data[6:8])[0]
    count = struct.unpack(">H", data[26:28])[0]
    pos, out = 548, []
    for _ in range(count):
        kind, _, size = struct.unpack(">HHQ", data[pos:pos + 12])
        out.append((kind, data[pos + 12:pos + 12 + size]))
        pos += 12 + size
    return flags, out


def make_app(name):
    """The bundled example with its app cross-compiled static for aarch64."""
    app = os.path.join(work, name)
    shutil.copytree(os.path.join(ROOT, "share/examples/hello"), app)
    os.makedirs(os.path.join(app, "rootfs/bin"))
    subprocess.run([CROSS_CC, "-static", "-Os", "-o", os.path.join(app, "rootfs/bin/hello"),
                    os.path.join(app, "hello.c")], check=True)
    return app


def kiln_env():
    e = dict(os.environ)
    e.setdefault("KILN_CACHE_DIR", os.environ.get("KILN_TEST_SHARED_CACHE") or os.path.join(work, "cache"))
    e["SOURCE_DATE_EPOCH"] = "0"
    return e


def build(app, extra=(), cache=None):
    t0 = time.time()
    env = kiln_env()
    if cache:
        env["KILN_CACHE_DIR"] = cache
    p = subprocess.run([KILN, "-C", app, "build", "--arch", "aarch64", "--json", *extra],
                       capture_output=True, text=True, env=env, timeout=5400)
    if p.returncode != 0:
        print(p.stderr[-3000:], file=sys.stderr)
        raise SystemExit("kiln build --arch aarch64 failed")
    doc = json.loads(p.stdout)
    print("kiln build --arch aarch64: %.1f s, %d bytes" % (time.time() - t0, doc["size"]))
    return doc


def pinned_toolchains(app):
    """The stages whose kiln.lock entry records the pinned aarch64 toolchain ({stage: kind})."""
    lock = json.load(open(os.path.join(app, "kiln.lock")))
    kinds = {}
    for name, stage in lock.get("stages", {}).items():
        tc = stage.get("resolved", {}).get("toolchain")
        if tc:
            kinds[name] = "%s/%s" % (tc.get("kind"), tc.get("arch"))
    return kinds


def case_boot():
    app = make_app("app")
    doc = build(app)
    kinds = pinned_toolchains(app)
    check(kinds.get("kernel") == "pinned/aarch64" and kinds.get("eif") == "pinned/aarch64",
          "the kernel and kiln-init were built with the pinned aarch64 cross toolchain: %s" % kinds)
    flags, secs = eif_sections(doc["eif"])
    check(flags & 1 == 1, "the EIF header's flags mark aarch64 (bit 0): %#x" % flags)
    kernel = [d for t, d in secs if t == 1][0]
    cmdline = [d for t, d in secs if t == 2][0].decode()
    ramdisks = [d for t, d in secs if t == 3]
    check(kernel[56:60] == b"ARM\x64", "the kernel section is an arm64 Image (magic ARM\\x64)")
    check("console=ttyS0" in cmdline, "the command line is Nitro's aarch64 one: %s" % cmdline)
    desc = subprocess.run([KILN, "describe", doc["eif"]], capture_output=True, text=True)
    check(desc.returncode == 0 and "aarch64" in desc.stdout.splitlines()[0],
          "kiln describe shows the architecture: %s" % desc.stdout[:200])
    kpath = os.path.join(work, "Image")
    rpath = os.path.join(work, "initrd")
    open(kpath, "wb").write(kernel)
    open(rpath, "wb").write(b"".join(ramdisks))  # back to back, as Nitro places them
    cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-m", "512", "-smp", "1",
           "-nographic", "-no-reboot", "-kernel", kpath, "-initrd", rpath,
           "-append", cmdline + " console=ttyAMA0 kiln.heartbeat=off"]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, errors="replace")
        out, exited = p.stdout, True
    except subprocess.TimeoutExpired as e:
        raw = e.stdout or b""
        out, exited = raw.decode(errors="replace") if isinstance(raw, bytes) else raw, False
    lines = [l for l in out.splitlines() if "kiln-init" in l or "hello from" in l or "panic" in l.lower()]
    print("== qemu-system-aarch64 -M virt: %.1f s under TCG ==\n%s" % (time.time() - t0, "\n".join(lines)))
    check(exited, "qemu exited by itself (the guest powered off)")
    check("Kernel panic" not in out, "no kernel panic")
    out = console_lines(out)
    for line in ["kiln-init: starting", "switched root to /rootfs", "network interface lo is up",
                 "hello from the enclave: greeting=hello uid=0 argc=2 argv[0]=/bin/hello argv[1]=from kiln",
                 "application exited with status 0", "kiln-init: powering off"]:
        check(line in out, "console shows %r" % line)


def case_reproducible():
    a = build(make_app("one"))
    # the second build in its own cache: every stage runs again, the kernel compile included
    # (the pinned source package is copied over rather than fetched twice)
    cache = os.path.join(work, "cache-b")
    debs = os.path.join(kiln_env()["KILN_CACHE_DIR"], "state", "kernel", "debs")
    if os.path.isdir(debs):
        shutil.copytree(debs, os.path.join(cache, "state", "kernel", "debs"))
    b = build(make_app("two/deeper"), cache=cache)
    check(a["Measurements"] == b["Measurements"], "same PCRs from two directories: %s vs %s"
          % (a["Measurements"], b["Measurements"]))
    check(a["sha256"] == b["sha256"], "byte-identical aarch64 EIFs from two directories")


def case_toolchain_missing():
    """With "toolchain": "host" (the host's cross compiler, opted into) and no aarch64-linux-gnu-gcc
    on PATH, the kernel stage names the apt line; no EIF is written. (The default, "pinned", needs
    no host cross compiler: toolchain.cross_init_host_independence and the boot case show it.)"""
    app = os.path.join(work, "app")
    os.makedirs(os.path.join(app, "rootfs/bin"))
    open(os.path.join(app, "rootfs/bin/app"), "w").write("#!/bin/sh\n")
    os.chmod(os.path.join(app, "rootfs/bin/app"), 0o755)
    json.dump({"name": "app", "arch": "aarch64", "image": "dir:rootfs", "enclave": {"cmd": ["/bin/app"]},
               "kernel": {"source": "debian-build:6.12"}, "toolchain": "host"},
              open(os.path.join(app, "kiln.json"), "w"))
    tools = os.path.join(work, "bin")
    os.makedirs(tools)
    for t in ("gcc", "make", "flex", "bison", "bc", "perl", "sh", "apt-get"):
        if shutil.which(t):
            os.symlink(shutil.which(t), os.path.join(tools, t))
    e = kiln_env()
    e["KILN_CACHE_DIR"] = os.path.join(work, "cache-missing")  # never a cached kernel
    e["PATH"] = tools
    p = subprocess.run([KILN, "-C", app, "build"], capture_output=True, text=True, env=e, timeout=600)
    check(p.returncode != 0, "the build fails without the cross compiler")
    check("apt-get install gcc-aarch64-linux-gnu" in p.stderr, "the error names the apt line: %s" % p.stderr[-600:])
    check(not os.path.exists(os.path.join(app, "app.eif")), "no EIF is written")
    # a prebuilt kernel (blobs:DIR): the eif stage, which compiles kiln-init, names it too
    blobs = os.path.join(app, "blobs")
    os.makedirs(blobs)
    open(os.path.join(blobs, "Image"), "wb").write(bytes(i % 251 for i in range(300000)))
    open(os.path.join(blobs, "Image.config"), "w").write("# Linux/arm64 6.12.117 Kernel Configuration\n")
    open(os.path.join(blobs, "cmdline"), "w").write("console=ttyS0\n")
    open(os.path.join(blobs, "init"), "wb").write(b"unused")
    doc = json.load(open(os.path.join(app, "kiln.json")))
    doc["kernel"] = {"source": "blobs:blobs"}
    json.dump(doc, open(os.path.join(app, "kiln.json"), "w"))
    p = subprocess.run([KILN, "-C", app, "build"], capture_output=True, text=True, env=e, timeout=600)
    check(p.returncode != 0 and "apt-get install gcc-aarch64-linux-gnu" in p.stderr and "eif" in p.stderr,
          "with a prebuilt kernel the eif stage names the apt line: %s" % p.stderr[-600:])
    check(not os.path.exists(os.path.join(app, "app.eif")), "no EIF is written (blobs kernel)")


if __name__ == "__main__":
    for tool in ([CROSS_CC] if CASE != "toolchain_missing" else []) + (["qemu-system-aarch64"] if CASE == "boot" else []):
        if not shutil.which(tool):
            sys.exit("%s is missing: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm "
                     "(tests/deps/arm.apt)" % tool)
    run_case(globals(), CASE, work)
