"""Shared pieces of kiln's Python test scripts: failures are collected (each printed with what was
expected), and one case runs per invocation so ctest lists every case."""
import json
import os
import re
import shutil
import sys
import urllib.request

failures = []


def check(cond, what):
    """Record a failure (the test goes on, so one run reports every broken expectation)."""
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run_case(namespace, case, work=None):
    """Run namespace's function case_<case>, remove work, print a summary and exit 0 or 1."""
    cases = {n[5:]: f for n, f in namespace.items() if n.startswith("case_")}
    if case not in cases:
        print("unknown case %r; known: %s" % (case, " ".join(sorted(cases))))
        sys.exit(2)
    try:
        cases[case]()
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
    print("%s: %d failure(s)" % (case, len(failures)))
    sys.exit(1 if failures else 0)


# A kernel message printed while a program is halfway through its line: "[    2.380416] text"
# preceded by something other than a line start. The serial console interleaves the two freely.
KERNEL_INTERJECTION = re.compile(r"(?<=[^\n])\[ *\d+\.\d+\] [^\n]*\n")


def console_lines(text):
    """A guest console's text with kernel messages that cut into a program's line taken out, so
    "kiln-init: starting" is found whole even when the kernel printed in the middle of it."""
    return KERNEL_INTERJECTION.sub("", text.replace("\r\n", "\n"))


def eif_parts(path):
    """kernel, cmdline and ramdisks of an EIF, read independently of kiln (the 548-byte header,
    then sections of type, flags, size), for booting its contents in qemu."""
    import struct
    data = open(path, "rb").read()
    count = struct.unpack(">H", data[26:28])[0]
    pos, kernel, cmdline, ramdisks = 548, b"", "", []
    for _ in range(count):
        kind, _, size = struct.unpack(">HHQ", data[pos:pos + 12])
        body = data[pos + 12:pos + 12 + size]
        pos += 12 + size
        if kind == 1:
            kernel = body
        elif kind == 2:
            cmdline = body.decode()
        elif kind == 3:
            ramdisks.append(body)
    return kernel, cmdline, ramdisks


def server_env(server_dir, name):
    """The NAME.env a ctest server fixture wrote (PORT, URL, PID, DIR)."""
    with open(os.path.join(server_dir, name + ".env")) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def faultproxy(url, path, doc=None):
    """GET /__faultproxy/PATH of the fault proxy at url, or POST doc as JSON; the JSON answer."""
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(url + "/__faultproxy/" + path, data=data,
                                 method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def faultproxy_configure(url, **settings):
    """Reset the proxy's counters and set its fault settings (unnamed ones: no faults)."""
    base = {"kind": "error", "rate": 0.0, "first_n": None, "match": "", "delay_ms": 0,
            "kill_after_bytes": None, "respond": None, "reset_stats": True}
    base.update(settings)
    faultproxy(url, "config", base)
