#!/usr/bin/env python3
"""kiln.json /arch steering the stages that need no kernel compile: the image stage picks the
matching variant of a multi-arch OCI index (made here by hand: amd64 and arm64 images with
different files), refuses an image without an arm64 variant, warns when an index entry and its
image's config disagree on the architecture, and refuses an /image/platform that
contradicts /arch; `kiln size` offers only types of the EIF's architecture (the Graviton rows) and
refuses an x86-only family for an aarch64 EIF; a prebuilt --eif of another architecture than
kiln.json's /arch is refused.

Usage: arm_select.py KILN CASE    (CASE: multi_arch_index, sizing, eif_mismatch, blobs_reproducible)
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from kilntest import check, run_case  # noqa: E402

KILN, CASE = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="kiln-arm-select-")


def kiln(*args, app=None):
    e = dict(os.environ, KILN_CACHE_DIR=os.path.join(work, "cache"), NO_COLOR="1")
    cmd = [KILN] + (["-C", app] if app else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=600)


def blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(layout, "blobs/sha256"), exist_ok=True)
    open(os.path.join(layout, "blobs/sha256", digest), "wb").write(data)
    return "sha256:" + digest, len(data)


def image(layout, arch, text, config_arch=None):
    """One single-layer image for linux/<arch> whose /etc/arch says text; its manifest descriptor
    (config_arch: what the image's config claims, when it is mislabelled)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, body in (("etc/arch", text.encode()), ("bin/app", b"#!/bin/sh\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(body), 0o755, 0
            t.addfile(info, io.BytesIO(body))
    layer, lsize = blob(layout, raw.getvalue())
    config = {"architecture": config_arch or arch, "os": "linux", "config": {"Cmd": ["/bin/app"]},
              "rootfs": {"type": "layers", "diff_ids": [layer]}}
    cdig, csize = blob(layout, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": lsize}]}
    mdig, msize = blob(layout, json.dumps(manifest).encode())
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": msize,
            "platform": {"architecture": arch, "os": "linux"}}


def layout(name, arches, config_arch=None):
    d = os.path.join(work, name)
    descs = [image(d, a, "this is " + a, config_arch) for a in arches]
    idx, isize = blob(d, json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                     "manifests": descs}).encode())
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx, "size": isize,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(os.path.join(d, "index.json"), "w"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(d, "oci-layout"), "w"))
    return d


def app_with(dirname, **cfg):
    d = os.path.join(work, dirname)
    os.makedirs(d, exist_ok=True)
    json.dump(cfg, open(os.path.join(d, "kiln.json"), "w"))
    return d


def case_multi_arch_index():
    both = layout("both", ["amd64", "arm64"])
    amd_only = layout("amd", ["amd64"])
    got = {}
    for arch in ("x86_64", "aarch64"):
        app = app_with("app-" + arch, arch=arch, image="oci:%s:v1" % both)
        out = os.path.join(work, arch + ".cpio")
        p = kiln("image", "-o", out, "--json", app=app)
        check(p.returncode == 0, "kiln image for /arch %s: %s" % (arch, p.stderr[-500:]))
        if p.returncode == 0:
            doc = json.loads(p.stdout)
            want = "linux/arm64" if arch == "aarch64" else "linux/amd64"
            check(doc.get("platform") == want, "/arch %s selects %s: %s" % (arch, want, doc.get("platform")))
            data = open(out, "rb").read()
            check(("this is " + ("arm64" if arch == "aarch64" else "amd64")).encode() in data,
                  "the %s rootfs holds the %s variant's files" % (arch, want))
            got[arch] = hashlib.sha256(data).hexdigest()
    check(len(set(got.values())) == 2, "different rootfs per architecture: %s" % got)
    # no arm64 variant: a clear error naming what the index has, and no output
    app = app_with("app-missing", arch="aarch64", image="oci:%s:v1" % amd_only)
    out = os.path.join(work, "missing.cpio")
    p = kiln("image", "-o", out, app=app)
    check(p.returncode == 1 and "linux/arm64" in p.stderr and "linux/amd64" in p.stderr,
          "an image without an arm64 variant is refused, naming the platforms it has: %s" % p.stderr[-500:])
    check(not os.path.exists(out), "no rootfs written for the refused image")
    # the index lists it for arm64 but its config says amd64: used, with a warning naming both
    mislabelled = layout("mislabelled", ["arm64"], config_arch="amd64")
    app = app_with("app-mislabelled", arch="aarch64", image="oci:%s:v1" % mislabelled)
    out = os.path.join(work, "mislabelled.cpio")
    p = kiln("image", "-o", out, app=app)
    check(p.returncode == 0 and os.path.exists(out), "a mislabelled arm64 entry is used: %s" % p.stderr[-500:])
    check("lists this image for linux/arm64, but its config says linux/amd64" in p.stderr,
          "the contradicting config is a warning: %s" % p.stderr[-500:])
    # /image/platform contradicting /arch
    app = app_with("app-contra", arch="aarch64", image={"source": "oci:%s:v1" % both, "platform": "linux/amd64"})
    p = kiln("image", "-o", os.path.join(work, "contra.cpio"), app=app)
    check(p.returncode == 1 and "/image/platform" in p.stderr and "/arch" in p.stderr,
          "/image/platform against /arch is refused: %s" % p.stderr[-500:])
    # an unknown /arch is a schema error naming the field
    app = app_with("app-bad", arch="arm64", image="oci:%s:v1" % both)
    p = kiln("image", "-o", os.path.join(work, "bad.cpio"), app=app)
    check(p.returncode != 0 and "/arch" in p.stderr, "/arch \"arm64\" is refused with the field named: %s" % p.stderr[-400:])


def case_sizing():
    catalogue = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "share",
                                            "instance-types.json")))
    graviton = sorted({t["family"] for t in catalogue["instance_types"] if t["arch"] == "aarch64"})
    named = {"c6g", "c7g", "m6g", "m7g", "r6g", "r7g"}  # the families and their d/n variants
    named |= {f + "d" for f in named} | {"c6gn", "c7gn"}
    check(named <= set(graviton), "the catalogue has the Graviton families %s: %s" % (sorted(named), graviton))
    # the seed table's rows (tests/cli: m5.xlarge .. m5.8xlarge) on Graviton: no SMT, so the
    # parent keeps 1 vCPU and 2 GiB; the same sizes fit the same-sized m6g types
    rows = [(2, 14 * 1024, "m6g.xlarge"), (6, 30 * 1024, "m6g.2xlarge"), (14, 62 * 1024, "m6g.4xlarge"),
            (30, 126 * 1024, "m6g.8xlarge")]
    for cpus, mem, want in rows:
        a = kiln("size", "--cpus", str(cpus), "--memory", str(mem), "--arch", "aarch64", "--json")
        x = kiln("size", "--cpus", str(cpus), "--memory", str(mem), "--family", "m5", "--json")
        check(a.returncode == 0 and x.returncode == 0, "size %d CPUs %d MiB: %s %s" % (cpus, mem, a.stderr, x.stderr))
        if a.returncode or x.returncode:
            continue
        da, dx = json.loads(a.stdout), json.loads(x.stdout)
        print("%d CPUs %5d MiB: aarch64 %-12s $%.4f/h  vs m5 %-12s $%.4f/h" % (
            cpus, mem, da["instance_type"], da["price_per_hour_usd"], dx["instance_type"], dx["price_per_hour_usd"]))
        check(da["arch"] == "aarch64" and da["family"] in graviton, "only Graviton types for aarch64: %s" % da)
        check(da["instance_type"] == want, "%d CPUs / %d MiB -> %s, got %s" % (cpus, mem, want, da["instance_type"]))
        check(da["price_per_hour_usd"] < dx["price_per_hour_usd"], "Graviton is cheaper than m5 here")
        # no SMT on Graviton: the enclave keeps the CPUs asked for, the parent keeps 1 vCPU
        check(da["enclave"]["cpus"] == cpus, "aarch64 enclave CPUs are not rounded to cores: %s" % da["enclave"])
        check(da["vcpus"] >= cpus + 1, "the parent keeps one vCPU: %s" % da)
    # an odd CPU count is not rounded up on Graviton (x86 rounds 3 to 4)
    p = kiln("size", "--cpus", "3", "--memory", "4096", "--arch", "aarch64", "--json")
    check(p.returncode == 0 and json.loads(p.stdout)["enclave"]["cpus"] == 3, "3 CPUs stay 3 on aarch64: %s" % p.stdout[:300])
    # a d/n variant by family: network-heavy apps ask for c7gn
    p = kiln("size", "--cpus", "6", "--memory", "8192", "--arch", "aarch64", "--family", "c7gn", "--json")
    check(p.returncode == 0 and json.loads(p.stdout)["instance_type"] == "c7gn.2xlarge",
          "--family c7gn sizes onto c7gn.2xlarge: %s %s" % (p.stdout[:300], p.stderr))
    p = kiln("size", "--cpus", "2", "--memory", "1024", "--family", "r7gd")
    check(p.returncode == 1 and "r7gd" in p.stderr and "aarch64" in p.stderr,
          "a Graviton family for an x86_64 enclave is refused: %s" % p.stderr)
    p = kiln("size", "--cpus", "2", "--memory", "1024", "--arch", "aarch64", "--family", "m5")
    check(p.returncode == 1 and "m5" in p.stderr and "aarch64" in p.stderr,
          "an x86-only family for aarch64 is refused: %s" % p.stderr)


def eif(name, arch):
    d = os.path.join(work, "parts")
    os.makedirs(d, exist_ok=True)
    for part in ("kernel", "boot", "app"):
        open(os.path.join(d, part), "wb").write(os.urandom(100000))
    out = os.path.join(work, name)
    p = kiln("eif-build", "--kernel", os.path.join(d, "kernel"), "--cmdline", "console=ttyS0", "--ramdisk",
             os.path.join(d, "boot"), "--ramdisk", os.path.join(d, "app"), "--arch", arch, "--output", out)
    check(p.returncode == 0, "eif-build --arch %s: %s" % (arch, p.stderr))
    return out


def case_eif_mismatch():
    arm = eif("arm.eif", "aarch64")
    x86 = eif("x86.eif", "x86_64")
    d = kiln("describe", arm)
    check(d.returncode == 0 and "aarch64" in d.stdout.splitlines()[0], "describe shows aarch64: %s" % d.stdout[:200])
    # kiln size --eif follows the EIF's header
    p = kiln("size", "--eif", arm, "--json")
    check(p.returncode == 0 and json.loads(p.stdout or "{}").get("arch") == "aarch64",
          "size --eif of an aarch64 EIF sizes Graviton: %s %s" % (p.stdout[:300], p.stderr))
    p = kiln("size", "--eif", x86, "--json")
    check(p.returncode == 0 and json.loads(p.stdout or "{}").get("arch") == "x86_64",
          "size --eif of an x86_64 EIF sizes x86: %s" % p.stderr)
    # kiln.json without /arch follows the EIF
    app = app_with("app-unset", enclave={"cpus": 2})
    p = kiln("size", "--eif", arm, "--json", app=app)
    check(p.returncode == 0 and json.loads(p.stdout or "{}").get("arch") == "aarch64",
          "kiln.json without /arch follows the aarch64 EIF: %s" % p.stdout[:300])
    # kiln.json says x86_64, the EIF is aarch64
    app = app_with("app-x86", arch="x86_64")
    p = kiln("size", "--eif", arm, "--json", app=app)
    doc = json.loads(p.stdout or "{}")
    msg = doc.get("error", {}).get("message", "")
    check(p.returncode == 1 and "aarch64" in msg and "/arch" in msg,
          "--eif of another architecture than /arch is refused: %s" % p.stdout)
    check("instance_type" not in doc, "no sizing for the refused EIF: %s" % doc)


def case_blobs_reproducible():
    """`kiln build --arch aarch64` with a blobs:DIR kernel (Image, Image.config, cmdline), in two
    directories with separate caches: byte-identical EIFs marked aarch64, with kiln-init and
    kiln-agent cross-built by the pinned aarch64 toolchain (kiln.lock) in the bootstrap ramdisk (the
    compiled kernel: arm_build.py; a junk PATH: toolchain.cross_init_host_independence)."""
    docs = []
    for n, name in enumerate(("one", "two/deeper")):
        app = app_with(name, name="app", image="dir:rootfs", enclave={"cmd": ["/bin/app"]},
                       kernel={"source": "blobs:blobs"})
        os.makedirs(os.path.join(app, "rootfs/bin"))
        open(os.path.join(app, "rootfs/bin/app"), "w").write("#!/bin/sh\necho hi\n")
        os.chmod(os.path.join(app, "rootfs/bin/app"), 0o755)
        os.makedirs(os.path.join(app, "blobs"))
        open(os.path.join(app, "blobs/Image"), "wb").write(bytes(i % 251 for i in range(300000)))
        open(os.path.join(app, "blobs/Image.config"), "w").write(
            "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/arm64 6.12.117 Kernel Configuration\n")
        open(os.path.join(app, "blobs/cmdline"), "w").write("console=ttyS0\n")
        open(os.path.join(app, "blobs/init"), "wb").write(b"unused")
        e = dict(os.environ, KILN_CACHE_DIR=os.path.join(work, "cache-%d" % n), NO_COLOR="1")
        p = subprocess.run([KILN, "-C", app, "build", "--arch", "aarch64", "--json"], capture_output=True,
                           text=True, env=e, timeout=600)
        check(p.returncode == 0, "build --arch aarch64 in %s: %s" % (name, p.stderr[-800:]))
        if p.returncode:
            return
        docs.append(json.loads(p.stdout))
        tc = json.load(open(os.path.join(app, "kiln.lock")))["stages"]["eif"]["resolved"].get("toolchain", {})
        check(tc.get("kind") == "pinned" and tc.get("arch") == "aarch64",
              "kiln-init and kiln-agent come from the pinned aarch64 cross toolchain: %s" % tc.get("kind"))
    check(docs[0]["sha256"] == docs[1]["sha256"] and docs[0]["Measurements"] == docs[1]["Measurements"],
          "identical aarch64 EIFs and PCRs from two directories: %s" % docs)
    data = open(docs[0]["eif"], "rb").read()
    check(data[6:8] == b"\x00\x01", "header flags bit 0 (aarch64): %r" % data[6:8])
    # kiln-init and kiln-agent are compiled for the pipeline (eif stage): aarch64 ELF files, no x86-64 one
    machines = []
    at = data.find(b"\x7fELF")
    while at >= 0:
        machines.append(int.from_bytes(data[at + 18:at + 20], "little"))
        at = data.find(b"\x7fELF", at + 4)
    check(machines.count(183) >= 2 and 62 not in machines,
          "the EIF's programs are aarch64 ELF files (EM_AARCH64 183), none x86-64: %s" % machines)


run_case(globals(), CASE, work)
