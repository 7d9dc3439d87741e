#!/usr/bin/env python3
"""The flag table test: every documented option of every command, placed after the command, must
reach the command and have its effect; --help, the man page and the completions must agree with
the command table (`kiln help --json`).

Run as: test_flags.py KILN SERVER_DIR DOC_DIR CASE    (CASE: options | docs)
  options  runs each command with each of its options (AWS commands against moto's server)
  docs     compares --help, kiln.1 and the bash/zsh completions with the table
"""
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TESTS, "lib"))
sys.path.insert(0, os.path.join(TESTS, "attestation"))
from kilntest import check, run_case, server_env  # noqa: E402

import attestlib  # noqa: E402

KILN, SERVER_DIR, DOC_DIR, CASE = sys.argv[1:5]
WORK = tempfile.mkdtemp(prefix="kiln-flags-")


def table():
    p = subprocess.run([KILN, "help", "--json"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "kiln help --json exits 0: %s" % p.stderr)
    return json.loads(p.stdout)


def path(*parts):
    return os.path.join(WORK, *parts)


def write(name, data, mode="w"):
    os.makedirs(os.path.dirname(path(name)), exist_ok=True)
    with open(path(name), mode) as f:
        f.write(data)
    return path(name)


class Result:
    def __init__(self, proc, args):
        self.code, self.out, self.err, self.args = proc.returncode, proc.stdout, proc.stderr, args
        try:
            self.doc = json.loads(proc.stdout)
        except ValueError:
            self.doc = None

    def expect(self, code, what):
        check(self.code == code, "%s: `kiln %s` exits %d, got %d\nstdout: %s\nstderr: %s"
              % (what, " ".join(self.args), code, self.code, self.out[-800:], self.err[-1500:]))
        return self


def kiln(*args, env=None, cwd=None, timeout=300):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEPLOYMENT_ID"}
    e.update(KILN_CACHE_DIR=path("cache"), NO_COLOR="1", HOME=path("home"))
    e.update(env or {})
    proc = subprocess.run([KILN] + list(args), capture_output=True, text=True, env=e,
                          cwd=cwd or path("app"), timeout=timeout)
    return Result(proc, args)


def describe(eif):
    r = kiln("describe", eif, "--json").expect(0, "describe " + eif)
    text = kiln("describe", eif).out
    return (r.doc or {}), text


# ---- inputs: a small app (dir rootfs + a blobs kernel), EIF parts, a key and certificate ----

def make_inputs():
    os.makedirs(path("home"))
    write("app/rootfs/bin/app", "#!/bin/sh\n")
    write("app/rootfs2/bin/app", "#!/bin/sh\necho two\n")
    os.chmod(path("app/rootfs/bin/app"), 0o755)
    os.chmod(path("app/rootfs2/bin/app"), 0o755)
    write("app/blobs/bzImage", os.urandom(200000), "wb")
    write("app/blobs/init", os.urandom(1000), "wb")
    write("app/blobs/cmdline", "console=ttyS0\n")
    write("app/blobs/bzImage.config", "#\n# Automatically generated file; DO NOT EDIT.\n"
          "# Linux/x86 6.12.0 Kernel Configuration\n")
    write("app/blobs/Image", os.urandom(200000), "wb")  # aarch64 blobs beside the x86 ones
    write("app/blobs/Image.config", "#\n# Automatically generated file; DO NOT EDIT.\n"
          "# Linux/arm64 6.12.0 Kernel Configuration\n")
    write("app/kiln.json", json.dumps({
        "name": "app", "image": {"source": "dir:rootfs"}, "enclave": {"cmd": ["/bin/app"]},
        "kernel": {"source": "blobs:blobs"}, "aws": {"ports": [8080]}}))
    write("parts/kernel.bin", os.urandom(300000), "wb")
    write("parts/boot.cpio", os.urandom(100000), "wb")
    write("parts/app.cpio", os.urandom(200000), "wb")
    for cmd in (["openssl", "ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", path("key.pem")],
                ["openssl", "req", "-new", "-x509", "-key", path("key.pem"), "-out", path("cert.pem"),
                 "-days", "30", "-subj", "/CN=flags"]):
        subprocess.run(cmd, check=True, capture_output=True)
    make_docker_archive()


def make_docker_archive():
    """A `docker save` tarball with ENTRYPOINT and CMD, so --cmd-mode changes argv."""
    layer = path("layer.tar")
    with tarfile.open(layer, "w") as t:
        for name in ("bin/entry", "bin/cmd"):
            data = b"#!/bin/sh\n"
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            t.addfile(info, io.BytesIO(data))
    diff = hashlib.sha256(open(layer, "rb").read()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Entrypoint": ["/bin/entry"], "Cmd": ["/bin/cmd"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["flags:1"],
                            "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path("app/image.tar"), "w") as t:
        t.add(layer, "layer.tar")
        for name, data in (("config.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def eif_build(*extra, out="out.eif"):
    args = ["eif-build", "--kernel", path("parts/kernel.bin"), "--cmdline", "console=ttyS0",
            "--ramdisk", path("parts/boot.cpio"), "--ramdisk", path("parts/app.cpio"),
            "--output", path(out)] + list(extra)
    return kiln(*args)


def metadata(eif="out.eif"):
    doc, _ = describe(path(eif))
    return doc


# ---- local commands ----

def opt_build_output(o):
    r = kiln("build", o, path("built.eif"), "--json").expect(0, "build " + o)
    check(os.path.exists(path("built.eif")) and (r.doc or {}).get("eif") == path("built.eif"),
          "build %s FILE writes FILE: %s" % (o, r.doc))
    if os.path.exists(path("built.eif")):  # computed in the same pass as the PCRs
        sha = hashlib.sha256(open(path("built.eif"), "rb").read()).hexdigest()
        check((r.doc or {}).get("sha256") == sha, "build reports the EIF's SHA-256: %s" % r.doc)


def opt_build_set(o):
    kiln("build", o, "image.source=dir:rootfs2", "-o", path("b2.eif")).expect(0, "build --set")
    a = kiln("build", "-o", path("b1.eif"), "--json").expect(0, "build")
    b = kiln("build", o, "image.source=dir:rootfs2", "-o", path("b2.eif"), "--json")
    check((a.doc or {}).get("Measurements", {}).get("PCR2") !=
          (b.doc or {}).get("Measurements", {}).get("PCR2"), "build --set image.source changes PCR2")


def opt_build_arch(o):
    r = kiln("build", o, "aarch64", "-o", path("arm.eif"), "--json").expect(0, "build " + o)
    d = kiln("describe", path("arm.eif")).expect(0, "describe of the aarch64 EIF")
    check("aarch64" in d.out.splitlines()[0], "build %s aarch64 marks the EIF: %s" % (o, d.out[:200]))
    x = kiln("build", "-o", path("x86.eif"), "--json").expect(0, "build without " + o)
    check((r.doc or {}).get("Measurements", {}).get("PCR0") !=
          (x.doc or {}).get("Measurements", {}).get("PCR0"), "build %s changes PCR0" % o)
    bad = kiln("build", o, "sparc", "-o", path("bad.eif"))
    bad.expect(2, "build %s sparc" % o)
    check("x86_64 or aarch64" in bad.err and not os.path.exists(path("bad.eif")),
          "an unknown architecture is refused, no EIF: %s" % bad.err)


def opt_describe_no_crc_check(o):
    eif_build(out="crc.eif").expect(0, "eif-build")
    with open(path("crc.eif"), "r+b") as f:
        f.seek(-10, 2)
        b = f.read(1)
        f.seek(-10, 2)
        f.write(bytes([b[0] ^ 0xFF]))
    kiln("describe", path("crc.eif")).expect(1, "describe of a damaged EIF fails")
    r = kiln("describe", path("crc.eif"), o, "--json").expect(0, "describe " + o)
    check((r.doc or {}).get("CheckCRC") is False, "describe %s reports CheckCRC false: %s" % (o, r.out[:300]))


def opt_verify_reuse_cache(o):
    """verify rebuilds in a fresh cache by default; --reuse-cache takes every step from the cache."""
    kiln("build", "-o", path("rc.eif")).expect(0, "build for verify " + o)
    r = kiln("verify", path("rc.eif"), o, "--json").expect(0, "verify " + o)
    doc = r.doc or {}
    check(doc.get("cache") == "reused" and doc.get("steps", {}).get("rebuilt") == 0,
          "verify %s rebuilds nothing and says the cache was reused: %s" % (o, doc))
    r = kiln("verify", path("rc.eif"), "--json").expect(0, "verify without " + o)
    doc = r.doc or {}
    check(doc.get("cache") == "fresh" and doc.get("steps", {}).get("cached") == 0 and
          doc.get("steps", {}).get("rebuilt", 0) >= 3,
          "verify without %s rebuilds every step in a fresh cache: %s" % (o, doc))


def opt_verify_pcrs(o):
    r = eif_build(out="v.eif").expect(0, "eif-build")
    good = write("good.json", r.out)
    bad = json.loads(r.out)
    bad["Measurements"]["PCR0"] = "00" * 48
    bad = write("bad.json", json.dumps(bad))
    kiln("verify", path("v.eif"), o, good).expect(0, "verify %s with the right PCRs" % o)
    r = kiln("verify", path("v.eif"), o, bad).expect(1, "verify %s with a wrong PCR0" % o)
    check("PCR0 differs" in r.err, "verify names the differing PCR0: %s" % r.err)


def attestation_checks(r):
    """{check name: result} of `kiln verify --attestation ... --json`."""
    return {c.get("name"): c.get("result") for c in (r.doc or {}).get("checks", [])}


def opt_verify_attestation(o):
    """verify --attestation and its options, on documents signed by a test CA over an EIF's PCRs."""
    if not os.path.exists(path("att/ca/root.pem")):
        m = json.loads(eif_build(out="att.eif").expect(0, "eif-build").out)["Measurements"]
        eif_build("--cmdline", "console=ttyS1", out="att-other.eif").expect(0, "eif-build of another EIF")
        ca = attestlib.TestCA(path("att/ca"))
        pcrs = attestlib.pcrs_of_eif(m)
        write("att/doc.cbor", ca.document(pcrs, nonce=b"\x01\x02"), "wb")
        old = int(time.time() * 1000) - 2 * 3600 * 1000
        write("att/old.cbor", ca.document(pcrs, nonce=b"\x01\x02", timestamp_ms=old), "wb")
        zero = {i: bytes(48) for i in range(16)}
        write("att/debug.cbor", ca.document(zero, nonce=b"\x01\x02"), "wb")
        write("att/zero.json", json.dumps(attestlib.measurements_json(zero)))
    root = ["--root", path("att/ca/root.pem")]

    def verify(doc, *args, expected=("--eif", path("att.eif"))):
        return kiln("verify", "--attestation", path("att/" + doc), *expected, *args, "--json")

    if o in ("--attestation", "--eif"):
        r = verify("doc.cbor", *root, "--nonce", "0102").expect(0, "verify %s: the right EIF" % o)
        check((r.doc or {}).get("verified") is True, "verify %s verifies: %s" % (o, r.out[-800:]))
        r = verify("doc.cbor", *root, expected=("--eif", path("att-other.eif"))).expect(1, "another EIF")
        check(attestation_checks(r).get("PCR0") == "fail" and attestation_checks(r).get("PCR2") == "ok",
              "verify --eif compares that EIF's PCRs: %s" % attestation_checks(r))
    elif o == "--root":
        r = verify("doc.cbor").expect(1, "verify without --root: the AWS root refuses the test CA")
        check(attestation_checks(r).get("chain") == "fail", "the chain fails without --root")
        verify("doc.cbor", o, path("att/ca/root.pem")).expect(0, "verify --root the test CA")
    elif o == "--at":
        r = verify("doc.cbor", *root, o, "2001-01-01T00:00:00Z").expect(1, "verify --at before the certificates")
        check(attestation_checks(r).get("chain") == "fail", "--at 2001: certificates not yet valid: %s"
              % attestation_checks(r))
    elif o == "--max-skew":
        r = verify("old.cbor", *root).expect(1, "a two-hour-old document with the default skew")
        check(attestation_checks(r).get("timestamp") == "fail", "old document: timestamp fails")
        verify("old.cbor", *root, o, "3h").expect(0, "verify --max-skew 3h accepts it")
    elif o == "--nonce":
        r = verify("doc.cbor", *root, o, "0102").expect(0, "verify --nonce (the document's)")
        check(attestation_checks(r).get("nonce") == "ok", "--nonce 0102 is checked: %s" % attestation_checks(r))
        r = verify("doc.cbor", *root, o, "0304").expect(1, "verify --nonce (another)")
        check(attestation_checks(r).get("nonce") == "fail", "--nonce 0304 fails the nonce check")
    elif o == "--allow-debug":
        zero = ("--pcrs", path("att/zero.json"))
        r = verify("debug.cbor", *root, expected=zero).expect(1, "all-zero PCRs without --allow-debug")
        check(attestation_checks(r).get("debug mode") == "fail", "debug mode fails: %s" % attestation_checks(r))
        verify("debug.cbor", *root, o, expected=zero).expect(0, "verify --allow-debug")
    elif o == "--timeout":
        silent = socket.socket()  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = "http://127.0.0.1:%d/attestation" % silent.getsockname()[1]
        started = time.time()
        r = kiln("verify", "--attestation", url, "--eif", path("att.eif"), o, "1", timeout=60)
        took = time.time() - started
        silent.close()
        check(r.code == 1 and "within 1 s" in r.out + r.err and took < 9,
              "verify --timeout 1 gives up on a silent endpoint after a second: %d %.1fs %s"
              % (r.code, took, r.err[-500:]))


def cpio_newc(files):
    """A newc cpio archive of {name: bytes} (regular files, mode 0644)."""
    out = b""
    for ino, (name, data) in enumerate(sorted(files.items()) + [("TRAILER!!!", b"")], 1):
        raw = name.encode() + b"\0"
        mode = 0o100644 if name != "TRAILER!!!" else 0
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        head = b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        out += head + b"\0" * (-len(head) % 4) + data + b"\0" * (-len(data) % 4)
    return out


def opt_diff(o):
    """diff --max-paths N: at most N of the differing paths listed, the total still counted."""
    for side in ("a", "b"):
        write("diff/%s.cpio" % side, cpio_newc({"f%d" % i: (side + str(i)).encode() for i in range(5)}), "wb")
        kiln("eif-build", "--kernel", path("parts/kernel.bin"), "--ramdisk", path("parts/boot.cpio"),
             "--ramdisk", path("diff/%s.cpio" % side), "--output", path("diff/%s.eif" % side)).expect(0, "eif-build")
    r = kiln("diff", path("diff/a.eif"), path("diff/b.eif"), o, "2", "--json").expect(1, "diff --max-paths 2")
    rds = (r.doc or {}).get("ramdisks", [])
    check(len(rds) == 1 and len(rds[0].get("paths", [])) == 2 and rds[0].get("differing_paths") == 5,
          "diff --max-paths 2 lists 2 of the 5 differing paths: %s" % rds)
    kiln("diff", path("diff/a.eif"), path("diff/b.eif"), o, "0").expect(2, "diff --max-paths 0")


def opt_run_local(o):
    """run-local's options, up to qemu (which refuses the test's random kernel): what it boots and
    with which CPUs and memory is in its "booting" line; --timeout's power-off needs a real
    kernel (tests/runlocal, label qemu)."""
    eif = path("v.eif")
    if not os.path.exists(eif):
        eif_build(out="v.eif").expect(0, "eif-build")
    if o == "--qemu":
        r = kiln("run-local", "--eif", eif, o, path("no-such-qemu")).expect(1, "run-local --qemu")
        check(path("no-such-qemu") in r.err, "run-local --qemu names that qemu: %s" % r.err[-500:])
        return
    if shutil.which("qemu-system-x86_64") is None:
        check(False, "qemu-system-x86_64 is installed (tests/deps lists qemu-system-x86)")
        return
    value = {"--eif": eif, "--cpus": "3", "--memory": "700M", "--timeout": "30"}[o]
    args = [o, value] if o == "--eif" else ["--eif", eif, o, value]
    r = kiln("run-local", *args)
    check(r.code == 1 and "qemu said" in r.err, "run-local %s reaches qemu: %d %s" % (o, r.code, r.err[-500:]))
    want = {"--eif": "booting %s:" % eif, "--cpus": ": 3 CPUs,", "--memory": ", 700 MiB"}.get(o)
    if want:
        check(want in r.err, "run-local %s: %r in %s" % (o, want, r.err[-500:]))
    bad = {"--eif": path("no-such.eif"), "--cpus": "0", "--memory": "1M", "--timeout": "0"}[o]
    r = kiln("run-local", *([o, bad] if o == "--eif" else ["--eif", eif, o, bad]))
    check(r.code in (1, 2) and (bad in r.err or o in r.err),
          "run-local %s %s is refused, naming it: %d %s" % (o, bad, r.code, r.err[-300:]))


def sections(text, kind):
    return [int(m) for m in re.findall(r"section +\d+ %s +offset +\d+ size +(\d+)" % kind, text)]


def opt_eif(o):
    """eif-build's options: each one's effect on the EIF, its metadata or the printed PCRs."""
    name = o
    value = {"--kernel_config": path("app/blobs/bzImage.config"), "--name": "flag-app",
             "--version": "2.1", "--arch": "aarch64", "--build-time": "2024-01-02T03:04:05Z",
             "--build-tool": "ci-tool", "--build-tool-version": "9.9", "--img-os": "FlagOS",
             "--img-kernel": "6.99", "--algo": "sha256", "--pcrs-output": path("pcrs.json"),
             "--metadata": write("meta.json", '{"b": 1, "a": "x"}'),
             "--signing-certificate": path("cert.pem"), "--private-key": path("key.pem")}
    base_opts = ("--kernel", "--cmdline", "--ramdisk", "--output")
    extra = []
    if name in ("--signing-certificate", "--private-key"):
        extra = ["--signing-certificate", path("cert.pem"), "--private-key", path("key.pem")]
    elif name in ("--sha256", "--sha384", "--sha512"):
        other = "sha512" if name != "--sha512" else "sha256"
        extra = ["--algo", other, name]
    elif name not in base_opts:
        extra = [name, value[name]]
    r = eif_build(*extra).expect(0, "eif-build " + name)
    check((r.doc or {}).get("Measurements", {}).get("PCR0"),
          "eif-build %s prints the measurements, not something else: %s" % (name, r.out[:200]))
    doc, text = describe(path("out.eif"))
    meta = doc.get("Metadata") or {}
    want = {"--kernel_config": ("OperatingSystem", "Linux"), "--build-tool": ("BuildTool", "ci-tool"),
            "--build-tool-version": ("BuildToolVersion", "9.9"), "--img-os": ("OperatingSystem", "FlagOS"),
            "--img-kernel": ("KernelVersion", "6.99"), "--build-time": ("BuildTime", "2024-01-02T03:04:05+00:00")}
    hashes = {"--algo": "Sha256", "--sha256": "Sha256", "--sha384": "Sha384", "--sha512": "Sha512"}
    if name in want:
        k, v = want[name]
        check(meta.get(k) == v, "eif-build %s sets %s to %r: %s" % (name, k, v, meta))
    elif name in hashes:
        got = (r.doc or {}).get("Measurements", {}).get("HashAlgorithm", "")
        check(got.startswith(hashes[name]), "eif-build %s measures with %s: %s" % (name, hashes[name], got))
    elif name == "--name":
        check(doc.get("ImageName") == "flag-app", "--name is ImageName: %s" % doc.get("ImageName"))
    elif name == "--version":
        check(doc.get("ImageVersion") == "2.1", "--version is ImageVersion: %s" % doc.get("ImageVersion"))
    elif name == "--metadata":
        check(meta.get("CustomMetadata") == {"a": "x", "b": 1}, "--metadata: %s" % meta)
    elif name == "--arch":
        check("aarch64" in text, "--arch aarch64 marks the EIF: %s" % text[:200])
    elif name == "--pcrs-output":
        with open(path("pcrs.json")) as f:
            check(json.load(f) == r.doc, "--pcrs-output holds the printed measurements")
    elif name in ("--signing-certificate", "--private-key"):
        check(doc.get("IsSigned") is True and (r.doc or {}).get("Measurements", {}).get("PCR8"),
              "%s signs the EIF (PCR8)" % name)
    elif name == "--kernel":
        check(sections(text, "kernel") == [300000], "--kernel is the kernel section: %s" % text[:400])
    elif name == "--ramdisk":
        check(sections(text, "ramdisk") == [100000, 200000], "two --ramdisk sections: %s" % text[:400])
    elif name == "--cmdline":
        check("cmdline: console=ttyS0" in text, "--cmdline is the cmdline section: %s" % text[:400])
    elif name == "--output":
        check(os.path.getsize(path("out.eif")) > 600000, "--output is where the EIF is written")


def opt_sign(o):
    eif_build(out="s.eif").expect(0, "eif-build")
    args = ["sign", path("s.eif"), "--key", path("key.pem"), "--cert", path("cert.pem")]
    if o in ("--output", "-o"):
        r = kiln(*(args + [o, path("signed.eif")])).expect(0, "sign " + o)
        check(describe(path("signed.eif"))[0].get("IsSigned") is True, "sign %s writes a signed EIF" % o)
        check(describe(path("s.eif"))[0].get("IsSigned") is False, "sign %s leaves the input alone" % o)
    else:
        i = args.index(o)
        kiln(*(args[:i] + args[i + 2:])).expect(2, "sign without %s is a usage error" % o)
        r = kiln(*args).expect(0, "sign")
        check(describe(path("s.eif"))[0].get("IsSigned") is True and
              (r.doc or {}).get("Measurements", {}).get("PCR8"), "sign %s signs in place" % o)


def opt_image(o):
    if o in ("--output", "-o"):
        r = kiln("image", o, path("img.cpio"), "--json").expect(0, "image " + o)
        with open(path("img.cpio"), "rb") as f:
            check(f.read(6) == b"070701", "image %s writes a newc cpio" % o)
        check((r.doc or {}).get("output") == path("img.cpio"), "image reports the output")
    elif o == "--platform":
        r = kiln("image", o, "linux/arm64", "-o", path("i.cpio"), "--json").expect(0, "image " + o)
        check((r.doc or {}).get("platform") == "linux/arm64", "--platform: %s" % r.doc)
    elif o == "--cmd-mode":
        src = "docker-archive:" + path("app/image.tar")
        cfg = path("app/kiln.json")
        saved = open(cfg).read()
        doc = json.loads(saved)
        doc["enclave"].pop("cmd")
        write("app/kiln.json", json.dumps(doc))
        d = kiln("image", src, o, "docker", "-o", path("i.cpio"), "--json").expect(0, "image --cmd-mode docker")
        n = kiln("image", src, o, "nitro-cli", "-o", path("i.cpio"), "--json").expect(0, "image --cmd-mode nitro-cli")
        write("app/kiln.json", saved)
        check((d.doc or {}).get("argv") == ["/bin/entry", "/bin/cmd"], "docker mode: %s" % d.doc)
        check((n.doc or {}).get("argv") == ["/bin/cmd"], "nitro-cli mode: %s" % n.doc)
    elif o == "--insecure-registry":
        r = kiln("image", "docker://nohost.invalid:5000/x:1", o, "nohost.invalid:5000", timeout=120)
        check(r.code == 1 and "http://nohost.invalid:5000/" in r.err,
              "--insecure-registry makes the registry plain HTTP: %s" % r.err[-300:])
    elif o == "--set":
        r = kiln("image", o, "source=dir:rootfs2", "-o", path("i.cpio"), "--json").expect(0, "image --set")
        check((r.doc or {}).get("source") == "dir:rootfs2", "image --set source: %s" % r.doc)


def opt_size(o):
    if o == "--eif":
        write("sparse.cpio", "")
        os.truncate(path("sparse.cpio"), 300 << 20)
        kiln("eif-build", "--kernel", path("parts/kernel.bin"), "--ramdisk", path("sparse.cpio"),
             "--output", path("big.eif")).expect(0, "eif-build of a 300 MiB EIF")
        r = kiln("size", o, path("big.eif"), "--json").expect(0, "size --eif")
        check((r.doc or {}).get("enclave", {}).get("memory_mib", 0) >= 4 * 300,
              "size --eif raises memory to 4x the EIF: %s" % (r.doc or {}).get("enclave"))
        return
    if o == "--catalogue":
        with open(os.path.join(os.path.dirname(KILN), "..", "share", "kiln", "instance-types.json")) as f:
            cat = json.load(f)
        cat["instance_types"] = [dict(t, name="zz9.flag", family="zz9") for t in cat["instance_types"]
                                 if t["name"] == "m5.xlarge"]
        write("cat.json", json.dumps(cat))
    value = {"--cpus": "6", "--memory": "30G", "--family": "m5", "--arch": "aarch64",
             "--catalogue": path("cat.json")}[o]
    r = kiln("size", o, value, "--json").expect(0, "size " + o)
    d = r.doc or {}
    ok = {"--cpus": d.get("enclave", {}).get("cpus") == 6,
          "--memory": d.get("enclave", {}).get("memory_mib") == 30720,
          "--family": d.get("family") == "m5", "--arch": d.get("arch") == "aarch64",
          "--catalogue": d.get("instance_type") == "zz9.flag"}[o]
    check(ok, "size %s %s reaches the sizing: %s" % (o, value, d))


def opt_run(o):
    if o == "--input":
        write("run-input.eif", "")
        os.truncate(path("run-input.eif"), 3 << 30)  # sparse: only its size matters to size
        r = kiln("run", "size", o, "eif=" + path("run-input.eif"), "--json").expect(0, "run --input")
        metas = [out.get("meta", {}) for s in (r.doc or {}).get("steps", []) for out in s.get("outputs", [])]
        check(metas and metas[0].get("enclave", {}).get("memory_mib", 0) >= 4 * 3072,
              "run size --input eif=FILE sizes for that EIF: %s" % metas)
        kiln("run", "size", o, "eif").expect(2, "run --input without =FILE")
        return
    r = kiln("run", "size", o, "cpus=6", "--json").expect(0, "run --set")
    metas = [out.get("meta", {}) for s in (r.doc or {}).get("steps", []) for out in s.get("outputs", [])]
    check(metas and metas[0].get("enclave", {}).get("cpus") == 6, "run size --set cpus=6: %s" % metas)


def opt_init(o):
    d = path("init-" + o.strip("-"))
    os.makedirs(d)
    value = {"--image": "docker://ghcr.io/acme/api:1.4", "--name": "flagname"}[o]
    kiln("init", o, value, cwd=d).expect(0, "init " + o)
    with open(os.path.join(d, "kiln.json")) as f:
        cfg = json.load(f)
    got = cfg.get("image") if o == "--image" else cfg.get("name")
    check(got == value, "init %s %s is in kiln.json: %s" % (o, value, got))


def opt_help(o):
    if o == "--man":
        r = kiln("help", o).expect(0, "help --man")
        check(r.out.startswith(".\\\"") and ".TH KILN 1" in r.out, "help --man prints roff")
    else:
        r = kiln("help", o, "bash").expect(0, "help --completion bash")
        check("complete -F _kiln kiln" in r.out, "help --completion bash prints the bash script")
        kiln("help", o, "fish").expect(2, "help --completion fish is a usage error")


# ---- AWS commands, against moto's server ----

def aws_env(region="us-east-1", **extra):
    url = server_env(SERVER_DIR, "moto-aws")["URL"]
    e = {"AWS_ACCESS_KEY_ID": "AKIDADMINTEST", "AWS_SECRET_ACCESS_KEY": "admin-secret",
         "AWS_ENDPOINT_URL": url, "AWS_EC2_METADATA_DISABLED": "true"}
    if region:
        e["AWS_REGION"] = region
    e.update(extra)
    return e


def boto(service, region="us-east-1"):
    import boto3
    return boto3.client(service, endpoint_url=server_env(SERVER_DIR, "moto-aws")["URL"], region_name=region,
                        aws_access_key_id="AKIDADMINTEST", aws_secret_access_key="admin-secret")


def region_of(r):
    """The region a command worked in: its JSON, or its error message."""
    if r.doc and isinstance(r.doc.get("region"), str):
        return r.doc["region"]
    m = re.search(r"\b([a-z]{2}-[a-z]+-\d)\b", r.out + r.err)
    return m.group(1) if m else None


def opt_aws_common(cmd, o, pre=()):
    """--region, --profile and --set reach the aws stage: the command works in that region."""
    write("home/.aws/config", "[profile flagtest]\nregion = ap-south-1\n")
    if o == "--region":
        r = kiln(cmd, *pre, o, "eu-west-1", "--json", env=aws_env())
        want = "eu-west-1"
    elif o == "--profile":
        r = kiln(cmd, *pre, o, "flagtest", "--json", env=aws_env(region=None))
        want = "ap-south-1"
    else:
        r = kiln(cmd, *pre, o, "aws.region=eu-central-1", "--json", env=aws_env(region=None))
        want = "eu-central-1"
    check(r.code in (0, 1) and region_of(r) == want,
          "%s %s reaches the aws stage (region %s): exit %d, %s %s" % (cmd, o, want, r.code, r.out[-400:], r.err[-400:]))


def opt_setup(o):
    if o in ("--region", "--profile", "--set"):
        return opt_aws_common("setup", o, ("--print-policy",))
    if o == "--credentials-file":
        kiln("setup", o, path("app/deploy.env"), "--json", env=aws_env()).expect(0, "setup " + o)
        check(os.path.exists(path("app/deploy.env")) and
              os.stat(path("app/deploy.env")).st_mode & 0o777 == 0o600, "setup writes the credentials file 0600")
    elif o in ("--github-repo", "--github-ref", "--github-environment", "--ci-any-ref",
               "--gitlab-ref", "--gitlab-ref-type"):
        gitlab = o.startswith("--gitlab")
        args, sub = {
            "--github-repo": (["--github-ref", "refs/heads/main"], "repo:flag-org/flag-app:ref:refs/heads/main"),
            "--github-ref": (["--github-ref", "refs/tags/v1"], "repo:flag-org/flag-app:ref:refs/tags/v1"),
            "--github-environment": (["--github-environment", "prod"], "repo:flag-org/flag-app:environment:prod"),
            "--ci-any-ref": (["--ci-any-ref"], "repo:flag-org/flag-app:*"),
            "--gitlab-ref": (["--gitlab-ref", "main"], "project_path:flag-group/flag-app:ref_type:branch:ref:main"),
            "--gitlab-ref-type": (["--gitlab-ref", "v1", "--gitlab-ref-type", "tag"],
                                  "project_path:flag-group/flag-app:ref_type:tag:ref:v1"),
        }[o]
        who = ["--gitlab-project", "flag-group/flag-app"] if gitlab else ["--github-repo", "flag-org/flag-app"]
        r = kiln("setup", *who, *args, "--json", env=aws_env()).expect(0, "setup " + o)
        arn = (r.doc or {}).get("deploy_role_arn", "")
        trust = boto("iam").get_role(RoleName=arn.split("/")[-1])["Role"]["AssumeRolePolicyDocument"] if arn else {}
        trust = json.loads(trust) if isinstance(trust, str) else trust
        subs = [v for st in trust.get("Statement", []) for v in st.get("Condition", {}).get("StringLike", {}).values()]
        check(subs == [sub], "setup %s: the CI role trusts %s only: %s" % (o, sub, subs))
    elif o in ("--gitlab-project", "--gitlab-url"):
        args = ["--gitlab-project", "flag-group/flag-app", "--gitlab-ref", "main"]
        if o == "--gitlab-url":
            args += ["--gitlab-url", "https://gitlab.flag.example"]
        r = kiln("setup", *args, "--json", env=aws_env()).expect(0, "setup " + o)
        providers = [p["Arn"] for p in boto("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]]
        host = "gitlab.flag.example" if o == "--gitlab-url" else "gitlab.com"
        check(any(p.endswith("/" + host) for p in providers) and "deploy_role_arn" in (r.doc or {}),
              "setup %s trusts %s: %s" % (o, host, providers))
    elif o == "--print-policy":
        r = kiln("setup", o, env=aws_env()).expect(0, "setup --print-policy")
        check('"Statement"' in r.out, "setup --print-policy prints the policy: %s" % r.out[:200])


def opt_plan(o):
    """After a deploy (plan needs the size stage's cached result)."""
    if o == "--set":
        r = kiln("plan", "--eif", path("v.eif"), o, "size.cpus=6", "--json", env=aws_env())
        r.expect(0, "plan --set size.cpus=6")
        check("2xlarge" in r.out, "plan --set size.cpus=6 plans a larger instance: %s" % r.out[-1500:])
        return
    if o in ("--region", "--profile"):
        return opt_aws_common("plan", o, ("--eif", path("v.eif")))
    if o == "--action":
        r = kiln("plan", o, "teardown", "--json", env=aws_env()).expect(0, "plan --action teardown")
        acts = [a.get("action") for s in (r.doc or {}).get("steps", []) for a in s.get("actions", [])]
        check("delete" in acts, "plan --action teardown lists deletions: %s" % acts)
    elif o == "--eif":
        r = kiln("plan", o, path("v.eif"), "--json", env=aws_env()).expect(0, "plan --eif")
        stages = [s.get("stage") for s in (r.doc or {}).get("steps", [])]
        check("image" not in stages and "aws" in stages, "plan --eif skips the build: %s" % stages)


def opt_deploy(o):
    if o == "--set":
        r = kiln("deploy", "--eif", path("v.eif"), o, "size.cpus=6", "--json", env=aws_env())
        r.expect(0, "deploy --set size.cpus=6")
        check((r.doc or {}).get("instance_type", "").endswith(".2xlarge"),
              "deploy --set size.cpus=6 sizes for 6 CPUs: %s" % (r.doc or {}).get("instance_type"))
        return
    if o in ("--region", "--profile"):
        return opt_aws_common("deploy", o, ("--eif", path("v.eif")))
    r = kiln("deploy", o, path("v.eif"), "--json", env=aws_env()).expect(0, "deploy --eif")
    sha = hashlib.sha256(open(path("v.eif"), "rb").read()).hexdigest()
    check((r.doc or {}).get("eif_sha256") == sha, "deploy --eif deploys that EIF: %s" % (r.doc or {}).get("eif_sha256"))


def opt_status(o):
    if o != "--attestation-root":
        return opt_aws_common("status", o)
    ca = attestlib.TestCA(path("status-ca"))
    r = kiln("status", o, ca.path("root.pem"), "--json", env=aws_env()).expect(0, "status " + o)
    check("trust anchor: %s, not the AWS Nitro root" % ca.path("root.pem") in r.err,
          "status --attestation-root announces the replaced anchor: %s" % r.err[-500:])
    r = kiln("status", o, path("no-such-root.pem"), "--json", env=aws_env()).expect(1, "status " + o + " missing")
    check("no-such-root.pem" in r.out + r.err, "a missing anchor is named: %s" % (r.out + r.err)[-500:])


def _logs_put(stream, events):
    """Events into the flags app's log group, as an instance's agent would."""
    dep = [l.split("=", 1)[1].strip() for l in open(path("app/.env")) if l.startswith("DEPLOYMENT_ID=")][-1]
    logs = boto("logs")
    try:
        logs.create_log_stream(logGroupName="/kiln/" + dep, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName="/kiln/" + dep, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": m} for t, m in events])


def opt_logs(o):
    now = int(time.time() * 1000)
    if o in ("--region", "--profile"):
        return opt_aws_common("logs", o)
    if o == "--since":
        _logs_put("i-0f1a9000000000001", [(now - 30 * 60 * 1000, "half an hour ago")])
        r = kiln("logs", o, "1h", "--json", env=aws_env()).expect(0, "logs --since 1h")
        check("half an hour ago" in [e["message"] for e in (r.doc or {}).get("events", [])], "--since 1h reaches back")
        r = kiln("logs", o, "10m", "--json", env=aws_env()).expect(0, "logs --since 10m")
        check("half an hour ago" not in r.out, "--since 10m does not: %s" % r.out[-300:])
    elif o == "--instance":
        _logs_put("i-0f1a9000000000002", [(now, "from two")])
        _logs_put("i-0f1a9000000000003", [(now, "from three")])
        r = kiln("logs", o, "i-0f1a9000000000003", "--json", env=aws_env()).expect(0, "logs --instance")
        check([e["message"] for e in (r.doc or {}).get("events", [])] == ["from three"], "--instance: %s" % r.out)
    else:  # --follow, -f
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEPLOYMENT_ID"}
        e.update(KILN_CACHE_DIR=path("cache"), NO_COLOR="1", HOME=path("home"), **aws_env())
        stream = "i-0f1a900000000000%d" % (5 if o == "-f" else 4)
        p = subprocess.Popen([KILN, "logs", o, "--instance", stream], env=e, cwd=path("app"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        _logs_put(stream, [(int(time.time() * 1000), "followed " + o)])
        import select
        line = p.stdout.readline() if select.select([p.stdout], [], [], 40)[0] else ""
        p.send_signal(2)
        p.communicate(timeout=30)
        check(line.strip() == stream + " followed " + o and p.returncode == 130,
              "logs %s prints the new event and ends on Ctrl-C: %r, exit %s" % (o, line, p.returncode))


def opt_rollback(o):
    if o in ("--region", "--profile", "--set"):
        return opt_aws_common("rollback", o, ("--to", "2"))
    kiln("rollback", o, "0", env=aws_env()).expect(2, "rollback --to 0 is a usage error")
    r = kiln("rollback", o, "2", "--json", env=aws_env()).expect(0, "rollback --to 2")
    check((r.doc or {}).get("group_launch_template_version") == "2",
          "rollback --to 2 returns the group to version 2: %s" % (r.doc or {}).get("group_launch_template_version"))


def opt_update_policy(o):
    opt_aws_common("update-policy", o)


def opt_teardown(o):
    if o in ("--region", "--profile", "--set"):
        return opt_aws_common("teardown", o, ("--yes",))
    if o == "--yes":
        kiln("teardown", env=aws_env()).expect(2, "teardown without --yes off a terminal")
        kiln("teardown", o, "--json", env=aws_env()).expect(0, "teardown --yes")
    else:
        bucket = kiln("status", "--json", env=aws_env()).doc.get("bucket")
        kiln("teardown", "--yes", o, "--json", env=aws_env()).expect(0, "teardown --delete-bucket")
        names = [b["Name"] for b in boto("s3").list_buckets()["Buckets"]]
        check(bucket and bucket not in names, "teardown --delete-bucket deletes %s: %s" % (bucket, names))


def opt_upload(o):
    s3 = boto("s3")
    s3.create_bucket(Bucket="flag-upload")
    write("up.bin", os.urandom(11 << 20), "wb")
    if o in ("--region", "--profile"):
        write("home/.aws/config", "[profile flagtest]\nregion = ap-south-1\n")
        env = aws_env(region=None) if o == "--profile" else aws_env()
        value, want = ("flagtest", "ap-south-1") if o == "--profile" else ("eu-west-1", "eu-west-1")
        r = kiln("upload", path("up.bin"), "s3://flag-upload/r.bin", o, value, "--json", env=env)
        check(r.code == 0 and region_of(r) == want, "upload %s: region %s: %s %s" % (o, want, r.out, r.err))
        return
    value = {"--part-size": ["5"], "--parallel": ["3"], "--resumable": []}[o]
    r = kiln("upload", path("up.bin"), "s3://flag-upload/up.bin", o, *value, "--json", env=aws_env())
    r.expect(0, "upload " + o)
    d = r.doc or {}
    ok = {"--part-size": d.get("part_size") == 5 << 20 and d.get("parts") == 3,
          "--parallel": d.get("parallel") == 3, "--resumable": d.get("resumable") is True}[o]
    check(ok, "upload %s reaches the upload: %s" % (o, d))


# Every documented option has a case, in the order they run (setup before the AWS commands that
# need a deployment, teardown last).
CASES = [("build", opt_build_output, ["--output"]), ("build", opt_build_set, ["--set"]),
         ("build", opt_build_arch, ["--arch"]),
         ("describe", opt_describe_no_crc_check, None), ("verify", opt_verify_pcrs, ["--pcrs"]),
         ("verify", opt_verify_reuse_cache, ["--reuse-cache"]),
         ("verify", opt_verify_attestation, ["--attestation", "--eif", "--root", "--at", "--max-skew",
                                             "--nonce", "--timeout", "--allow-debug"]),
         ("eif-build", opt_eif, None), ("sign", opt_sign, None), ("image", opt_image, None),
         ("size", opt_size, None), ("run", opt_run, None), ("init", opt_init, None),
         ("diff", opt_diff, None), ("run-local", opt_run_local, None),
         ("help", opt_help, None), ("upload", opt_upload, None), ("setup", opt_setup, None),
         ("deploy", opt_deploy, None), ("plan", opt_plan, None), ("status", opt_status, None),
         ("logs", opt_logs, None),
         ("rollback", opt_rollback, None),
         ("update-policy", opt_update_policy, None), ("teardown", opt_teardown, None)]


def spellings(option):
    return [option["name"]] + ([option["alias"]] if option.get("alias") else [])


def case_options():
    make_inputs()
    t = table()
    documented = {c["name"]: c.get("options", []) for c in t["commands"] if c["built"]}
    covered = {}
    for cmd, fn, only in CASES:
        for option in documented.get(cmd, []):
            if only is None or option["name"] in only:
                covered.setdefault(cmd, []).append(option["name"])
    for cmd, options in documented.items():
        for option in options:
            check(option["name"] in covered.get(cmd, []),
                  "documented option `kiln %s %s` has a case in this test" % (cmd, option["name"]))
    for cmd, fn, only in CASES:
        for option in documented.get(cmd, []):
            if only is not None and option["name"] not in only:
                continue
            for spelling in spellings(option):
                before = len(__import__("kilntest").failures)
                fn(spelling)
                if len(__import__("kilntest").failures) > before:
                    print("  in case: kiln %s %s" % (cmd, spelling), file=sys.stderr)
    # No command takes an option it does not document, and none exits 0 on one.
    for cmd in documented:
        r = kiln(cmd, "--no-such-option", env=aws_env())
        check(r.code == 2, "kiln %s --no-such-option is a usage error (2), got %d: %s" % (cmd, r.code, r.err[-300:]))
    # Global options after a command that has none of that name; the command's own win.
    r = kiln("size", "--cpus", "2", "--version")
    check(r.code == 0 and r.out.startswith("kiln "), "`kiln size --version`: the global --version")
    r = kiln("size", "--cpus", "2", "-C", path("app"), "--json").expect(0, "size with -C and --json after it")
    check(r.doc is not None, "--json after the command gives JSON")
    kiln("version").expect(0, "kiln version")
    check(kiln("--version").out == kiln("version").out, "kiln version = kiln --version")


# ---- --help, man page and completions agree with the table ----

def man_sections(text):
    out, name = {}, None
    for line in text.splitlines():
        m = re.match(r'\.SH "COMMAND: (.*)"', line)
        if m:
            name = m.group(1).replace("\\-", "-")
            out[name] = ""
        elif line.startswith(".SH"):
            name = None
        elif name:
            out[name] += line + "\n"
    return out


def shell_arms(text, indent):
    """The case arms of a completion script: command -> the text of its arm."""
    arms, name = {}, None
    for line in text.splitlines():
        m = re.match(r"^%s([a-z-]+)\)$" % indent, line)
        if m:
            name = m.group(1)
            arms[name] = ""
        elif name:
            arms[name] += line + "\n"
    return arms


def case_docs():
    t = table()
    files = {}
    for name, args in (("kiln.1", ["help", "--man"]), ("kiln.bash", ["help", "--completion", "bash"]),
                       ("_kiln", ["help", "--completion", "zsh"])):
        with open(os.path.join(DOC_DIR, name)) as f:
            files[name] = f.read()
        printed = subprocess.run([KILN] + args, capture_output=True, text=True).stdout
        check(files[name] == printed, "the built %s is what `kiln %s` prints" % (name, " ".join(args)))
    man = man_sections(files["kiln.1"])
    bash = shell_arms(files["kiln.bash"], "    ")
    zsh = shell_arms(files["_kiln"], "        ")
    for c in t["commands"]:
        name = c["name"]
        check(name in man, "kiln.1 has a section for %s" % name)
        check(re.search(r"\b%s\b" % re.escape(name), files["kiln.bash"].split("'')")[1].split(";;")[0]),
              "bash completes the command name %s" % name)
        check("'%s:" % name in files["_kiln"], "zsh completes the command name %s" % name)
        check(c["documented"] or not c["built"],
              "command %s is in builder/command_doc.c's table (its --help, man page section and "
              "completion come from there)" % name)
        if not c["documented"]:
            continue
        p = subprocess.run([KILN, name, "--help"], capture_output=True, text=True)
        check(p.returncode == 0 and p.stdout.startswith("Usage: kiln %s" % name), "kiln %s --help" % name)
        for o in c["options"]:
            for s in spellings(o):
                check(re.search(r"(^|[ ,])%s\b" % re.escape(s), p.stdout, re.M),
                      "kiln %s --help shows %s" % (name, s))
                check(s.replace("-", "\\-") in man.get(name, ""), "kiln.1's %s section shows %s" % (name, s))
                check(re.search(r"(^|[ '|])%s([ '|)]|$)" % re.escape(s), bash.get(name, ""), re.M),
                      "bash completion of %s has %s" % (name, s))
                check("'*%s[" % s in zsh.get(name, ""), "zsh completion of %s has %s" % (name, s))
    # The bash script works: completing an option after the command offers the command's own.
    script = os.path.join(DOC_DIR, "kiln.bash")
    p = subprocess.run(["bash", "-c", '. "$1"; COMP_WORDS=(kiln eif-build --ver); COMP_CWORD=2; _kiln; '
                        'echo "${COMPREPLY[*]}"', "-", script], capture_output=True, text=True)
    check("--version" in p.stdout.split(), "bash completes eif-build --ver to --version: %r %s" % (p.stdout, p.stderr))
    p = subprocess.run(["bash", "-c", '. "$1"; COMP_WORDS=(kiln eif-build --arch ""); COMP_CWORD=3; _kiln; '
                        'echo "${COMPREPLY[*]}"', "-", script], capture_output=True, text=True)
    check(p.stdout.split() == ["x86_64", "aarch64"], "bash completes --arch values: %r" % p.stdout)
    if shutil.which("zsh"):
        p = subprocess.run(["zsh", "-n", os.path.join(DOC_DIR, "_kiln")], capture_output=True, text=True)
        check(p.returncode == 0, "zsh parses _kiln: %s" % p.stderr)
    p = subprocess.run(["man", "--warnings", "-l", "-Tutf8", os.path.join(DOC_DIR, "kiln.1")],
                       capture_output=True, text=True)
    rendered = re.sub(".\x08", "", p.stdout)  # overstrike bold
    check(p.returncode == 0 and "COMMAND: eif-build" in rendered, "man renders kiln.1")
    check(not p.stderr.strip(), "man renders kiln.1 without warnings: %s" % p.stderr[:500])


run_case(globals(), CASE, WORK)
