#!/usr/bin/env python3
"""EIF tests through the kiln CLI: byte-for-byte equality with the independent reference writer on
randomized inputs, PCR known answers, describe output, and every bad-input case of the issue.
Usage: test_eif.py KILN CASE"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from kilntest import check, run_case  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_eif  # noqa: E402

KILN, CASE = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-eif-test-")


def path(name):
    return os.path.join(work, name)


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)
    return path(name)


def kiln(*args, env=None):
    e = dict(os.environ, NO_COLOR="1")
    e.pop("SOURCE_DATE_EPOCH", None)
    e.update(env or {})
    return subprocess.run([KILN] + list(args), capture_output=True, text=True, env=e, timeout=300)


def metadata_bytes(kernel_name, tool="kiln-test", tool_version="9.9"):
    doc = {"ImageName": kernel_name, "ImageVersion": "1.0",
           "BuildMetadata": {"BuildTime": "1970-01-01T00:00:00+00:00", "BuildTool": tool,
                             "BuildToolVersion": tool_version, "OperatingSystem": "OS",
                             "KernelVersion": "kernel"},
           "DockerInfo": None, "CustomMetadata": None}
    return json.dumps(doc, separators=(",", ":")).encode()


def build(kernel, cmdline, ramdisks, out="out.eif", extra=()):
    args = ["eif-build", "--kernel", kernel, "--cmdline", cmdline, "--output", path(out),
            "--build-tool", "kiln-test", "--build-tool-version", "9.9"] + list(extra)
    for r in ramdisks:
        args += ["--ramdisk", r]
    return kiln(*args)


def case_reference_bytes():
    rng = random.Random(20261124)
    sizes = [0, 1, 3, 4095, 4097, 65537, 3 * 1024 * 1024 + 7]
    for trial in range(8):
        kernel = write("bzImage", rng.randbytes(rng.choice(sizes[1:])))
        cmdline = rng.choice(["", "console=ttyS0", "reboot=k panic=30 pci=off nomodules console=ttyS0"])
        ramdisks = [write("rd%d" % i, rng.randbytes(rng.choice(sizes))) for i in range(1 + trial % 4)]
        p = build(kernel, cmdline, ramdisks)
        check(p.returncode == 0, "trial %d: eif-build failed: %s" % (trial, p.stderr))
        expected = reference_eif.build(open(kernel, "rb").read(), cmdline.encode(),
                                       metadata_bytes("bzImage"), [open(r, "rb").read() for r in ramdisks])
        got = open(path("out.eif"), "rb").read() if os.path.exists(path("out.eif")) else b""
        check(got == expected, "trial %d: %d ramdisks: bytes differ from the reference writer (%d vs %d bytes)"
              % (trial, len(ramdisks), len(got), len(expected)))
        pcrs = json.loads(p.stdout)["Measurements"] if p.returncode == 0 else {}
        ref = reference_eif.measurements(open(kernel, "rb").read(), cmdline.encode(),
                                         [open(r, "rb").read() for r in ramdisks])
        for k in ("PCR0", "PCR1", "PCR2"):
            check(pcrs.get(k) == ref[k], "trial %d: %s differs from the reference" % (trial, k))
        d = kiln("describe", path("out.eif"), "--json")
        doc = json.loads(d.stdout) if d.returncode == 0 else {}
        check(doc.get("Measurements") == pcrs, "trial %d: describe recomputes the writer's PCRs" % trial)


def case_known_answers():
    kernel = write("k", b"kernel")
    rd = write("rd", b"ramdisk")
    p = build(kernel, "", [rd])
    pcrs = json.loads(p.stdout)["Measurements"]
    check(pcrs["PCR2"] == "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a",
          "single ramdisk: PCR2 is the spec's worked value")
    check(pcrs["PCR0"] == pcrs["PCR1"], "single ramdisk: PCR0 == PCR1")
    d = json.loads(kiln("describe", path("out.eif"), "--json").stdout)
    check(list(d.keys()) == ["EifVersion", "Measurements", "IsSigned", "CheckCRC", "ImageName",
                             "ImageVersion", "Metadata"], "describe keys in nitro-cli's order: %s" % list(d.keys()))
    check(d["Metadata"]["BuildTime"] == "1970-01-01T00:00:00+00:00", "BuildTime defaults to the epoch")
    p = build(kernel, "", [rd], extra=["--build-time", "2024-05-01T12:00:00+00:00"])
    d = json.loads(kiln("describe", path("out.eif"), "--json").stdout)
    check(d["Metadata"]["BuildTime"] == "2024-05-01T12:00:00+00:00", "--build-time sets BuildTime")
    p = kiln("eif-build", "--kernel", kernel, "--ramdisk", rd, "--output", path("sde.eif"),
             env={"SOURCE_DATE_EPOCH": "86400"})
    d = json.loads(kiln("describe", path("sde.eif"), "--json").stdout)
    check(d["Metadata"]["BuildTime"] == "1970-01-02T00:00:00+00:00", "SOURCE_DATE_EPOCH sets BuildTime")
    cfg = write("bzImage.config", b"#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86_64 6.12.117 Kernel Configuration\n")
    build(kernel, "", [rd], extra=["--kernel_config", cfg])
    d = json.loads(kiln("describe", path("out.eif"), "--json").stdout)
    check(d["Metadata"]["OperatingSystem"] == "Linux" and d["Metadata"]["KernelVersion"] == "6.12.117",
          "--kernel_config gives OperatingSystem and KernelVersion: %s" % d["Metadata"])


def valid_eif(nramdisks=2):
    kernel = write("k", b"K" * 100)
    rds = [write("r%d" % i, bytes([i]) * 50) for i in range(nramdisks)]
    build(kernel, "cmd", rds, out="good.eif")
    return bytearray(open(path("good.eif"), "rb").read())


def fix_crc(data):
    crc = zlib.crc32(bytes(data[:544]) + bytes(data[548:])) & 0xFFFFFFFF
    data[544:548] = struct.pack(">I", crc)
    return data


def expect_describe_error(name, data, needle, crc=True):
    f = write(name, bytes(fix_crc(bytearray(data)) if crc and len(data) >= 548 else data))
    p = kiln("describe", f)
    check(p.returncode == 1, "%s: exit 1 expected, got %d" % (name, p.returncode))
    check(needle in p.stderr, "%s: message should contain %r: %s" % (name, needle, p.stderr.strip()))


def case_bad_input():
    good = valid_eif()
    expect_describe_error("truncated", good[:300], "truncated header", crc=False)
    expect_describe_error("magic", b"ELF!" + good[4:], "is not an EIF", crc=False)
    v = bytearray(good)
    v[4:6] = struct.pack(">H", 9)
    expect_describe_error("version", v, "version 9 is not supported")
    t = bytearray(good)
    t[26:28] = struct.pack(">H", 40)
    expect_describe_error("too-many", t, "40 sections")
    past = bytearray(good)
    past[548 + 4:548 + 12] = struct.pack(">Q", 1 << 40)
    expect_describe_error("past-eof", past, "past the end of the file")
    overlap = bytearray(good)
    overlap[28 + 8:28 + 16] = struct.pack(">Q", 560)  # section 1 claims to start inside section 0
    expect_describe_error("overlap", overlap, "overlapping or misplaced")
    unknown = bytearray(good)
    unknown[548:550] = struct.pack(">H", 9)
    expect_describe_error("unknown-type", unknown, "unknown type 9")
    trailing = bytearray(good) + b"junk"
    expect_describe_error("trailing", trailing, "4 bytes after the last section")
    crc = bytearray(good)
    crc[-1] ^= 0xFF
    f = write("crc.eif", bytes(crc))
    p = kiln("describe", f)
    check(p.returncode == 1 and "CRC mismatch" in p.stderr and "--no-crc-check" in p.stderr, "CRC mismatch reported")
    p = kiln("describe", f, "--no-crc-check", "--json")
    check(p.returncode == 0 and json.loads(p.stdout)["CheckCRC"] is False, "--no-crc-check describes anyway")
    # builder-side bad input: nothing written
    rd = write("rd", b"x")
    p = kiln("eif-build", "--kernel", path("nope"), "--ramdisk", rd, "--output", path("x.eif"))
    check(p.returncode == 1 and "kernel" in p.stderr and not os.path.exists(path("x.eif")), "missing kernel")
    os.makedirs(path("rddir"), exist_ok=True)
    p = kiln("eif-build", "--kernel", rd, "--ramdisk", path("rddir"), "--output", path("x.eif"))
    check(p.returncode == 1 and "is a directory" in p.stderr and not os.path.exists(path("x.eif")), "ramdisk directory")
    p = kiln("eif-build", "--kernel", rd, "--ramdisk", rd, "--output", "/proc/kiln-test/x.eif")
    check(p.returncode == 1 and "cannot write" in p.stderr, "output not writable: %s" % p.stderr.strip())
    p = kiln("eif-build", "--kernel", rd, "--output", path("x.eif"))
    check(p.returncode == 2, "no ramdisk is a usage error")
    leftovers = [n for n in os.listdir(work) if ".tmp." in n]
    check(not leftovers, "no temp files left: %s" % leftovers)


def example_app(name, cache, umask=0o022):
    """A copy of the bundled example (debian-cloud kernel: fast) with the static hello built."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    app = path(name)
    shutil.copytree(os.path.join(root, "share/examples/hello"), app)
    os.makedirs(os.path.join(app, "rootfs/bin"))
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-static", "-Os", "-o", os.path.join(app, "rootfs/bin/hello"),
                    os.path.join(app, "hello.c")], check=True)
    cfg = json.load(open(os.path.join(app, "kiln.json")))
    cfg["kernel"]["source"] = "debian-cloud:6.12"
    json.dump(cfg, open(os.path.join(app, "kiln.json"), "w"))
    old = os.umask(umask)
    p = kiln("-C", app, "build", "--json", env={"KILN_CACHE_DIR": cache})
    os.umask(old)
    check(p.returncode == 0, "%s: kiln build: %s" % (name, p.stderr.strip()[-500:]))
    return app, (json.loads(p.stdout) if p.returncode == 0 else {})


def case_reproducible_build():
    shared = os.environ.get("KILN_TEST_SHARED_CACHE")
    a, ra = example_app("app-a", os.path.join(work, "cache-a"), 0o022)
    b, rb = example_app("elsewhere/deeper/app-b", os.path.join(work, "cache-b"), 0o077)
    check(ra.get("sha256") and ra.get("sha256") == rb.get("sha256"),
          "two builds (other directories, caches, umasks) give the same EIF bytes: %s vs %s"
          % (ra.get("sha256"), rb.get("sha256")))
    check(ra.get("Measurements") == rb.get("Measurements"), "and the same PCRs")
    del shared


def case_verify():
    cache = os.path.join(work, "cache")
    app, r = example_app("app", cache)
    eif = r.get("eif", "")
    p = kiln("-C", app, "verify", eif, env={"KILN_CACHE_DIR": cache})
    check(p.returncode == 0 and "verified" in p.stdout, "verify of an unchanged build: %s" % p.stderr)
    # another copy of the EIF, edited where no PCR looks (metadata): bytes differ, PCRs match
    data = bytearray(open(eif, "rb").read())
    i = data.find(b"\"ImageVersion\":\"1.0\"")
    data[i + 16:i + 19] = b"9.9"
    data = fix_crc(data)
    tampered = write("tampered.eif", bytes(data))
    p = kiln("-C", app, "verify", tampered, "--json", env={"KILN_CACHE_DIR": cache})
    doc = json.loads(p.stdout) if p.stdout else {}
    check(p.returncode == 1 and doc.get("bytes_match") is False and doc.get("verified") is False,
          "verify reports different bytes: %s" % p.stdout)
    expected = write("expected.json", json.dumps({"Measurements": r.get("Measurements", {})}).encode())
    check(kiln("verify", tampered, "--pcrs", expected).returncode == 0, "--pcrs: same PCRs verify")
    wrong = dict(r.get("Measurements", {}), PCR2="00" * 48)
    bad = write("wrong.json", json.dumps(wrong).encode())
    p = kiln("verify", eif, "--pcrs", bad)
    check(p.returncode == 1 and "PCR2 differs" in p.stderr, "--pcrs names the differing PCR: %s" % p.stderr)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def case_signing():
    key, cert = path("key.pem"), path("cert.pem")
    openssl("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", key)
    openssl("req", "-new", "-x509", "-key", key, "-out", cert, "-days", "30", "-subj", "/CN=kiln test")
    der = path("cert.der")
    openssl("x509", "-in", cert, "-outform", "DER", "-out", der)
    import hashlib
    pcr8 = hashlib.sha384(b"\0" * 48 + hashlib.sha384(open(der, "rb").read()).digest()).hexdigest()
    kernel, rd1, rd2 = write("k", b"K" * 999), write("r1", b"boot"), write("r2", b"app" * 1000)
    p = build(kernel, "console=ttyS0", [rd1, rd2], out="signed.eif",
              extra=["--signing-certificate", cert, "--private-key", key])
    check(p.returncode == 0, "signed eif-build: %s" % p.stderr)
    m = json.loads(p.stdout)["Measurements"] if p.returncode == 0 else {}
    check(m.get("PCR8") == pcr8, "PCR8 is the certificate's measurement")
    d = kiln("describe", path("signed.eif"), "--json")
    doc = json.loads(d.stdout) if d.returncode == 0 else {}
    check(doc.get("IsSigned") is True and doc.get("SignatureCheck") is True, "signed EIF verifies: %s" % d.stdout)
    check(doc.get("Measurements", {}).get("PCR8") == pcr8, "describe recomputes PCR8")
    unsigned = build(kernel, "console=ttyS0", [rd1, rd2], out="unsigned.eif")
    check(json.loads(unsigned.stdout)["Measurements"]["PCR0"] == m.get("PCR0"), "signing does not change PCR0")
    # the signature section's bytes, tampered: the check fails (CRC fixed so only the signature is wrong)
    data = bytearray(open(path("signed.eif"), "rb").read())
    data[-3] ^= 0x01
    bad = write("bad-sig.eif", bytes(fix_crc(data)))
    d = kiln("describe", bad, "--json")
    check(d.returncode == 0 and json.loads(d.stdout).get("SignatureCheck") is False, "tampered signature is reported")
    # a signature section that is not CBOR
    data = bytearray(open(path("signed.eif"), "rb").read())
    start = len(data) - struct.unpack(">Q", data[28 + 8 * 32 + 8 * 5:28 + 8 * 32 + 8 * 6])[0]
    data[start] = 0xFF
    d = kiln("describe", write("junk-sig.eif", bytes(fix_crc(data))))
    check(d.returncode == 0 and "not CBOR" in d.stdout, "non-CBOR signature section is named: %s" % d.stdout)
    # kiln sign: an unsigned EIF gets a signature; PCR0/1/2 stay, PCR8 appears
    p = kiln("sign", path("unsigned.eif"), "--key", key, "--cert", cert, "-o", path("resigned.eif"))
    check(p.returncode == 0, "kiln sign: %s" % p.stderr)
    d = json.loads(kiln("describe", path("resigned.eif"), "--json").stdout)
    check(d["IsSigned"] and d["SignatureCheck"] and d["Measurements"] == m, "kiln sign keeps PCR0-2 and adds PCR8")
    before = open(path("unsigned.eif"), "rb").read()
    after = open(path("resigned.eif"), "rb").read()
    check(after[548:len(before)] == before[548:], "kiln sign keeps every section's bytes")
    # a key that does not belong to the certificate
    other = path("other.pem")
    openssl("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", other)
    p = build(kernel, "", [rd1], out="x.eif", extra=["--signing-certificate", cert, "--private-key", other])
    check(p.returncode == 1 and "does not belong" in p.stderr and not os.path.exists(path("x.eif")),
          "mismatched key is refused: %s" % p.stderr)


run_case(globals(), CASE, work)
