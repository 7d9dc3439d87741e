#!/usr/bin/env python3
"""The pinned toolchain and `kiln verify`, with the real kiln binary.

Run as: test_toolchain.py KILN DEBS_DIR CASE
  DEBS_DIR  the pinned .debs (tests/deps/toolchain.sh), served by a local HTTP mirror on 127.0.0.1
Fast cases build a small app with a blobs kernel (the eif stage compiles kiln-init and kiln-agent
with the pinned toolchain, so every fetch path is exercised); host_independence compiles the
enclave kernel twice (slow).
"""
import functools
import hashlib
import http.server
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TESTS, "lib"))
from kilntest import check, run_case  # noqa: E402

KILN, DEBS, CASE = sys.argv[1:4]
WORK = tempfile.mkdtemp(prefix="kiln-toolchain-")
SHARE = os.path.join(os.path.dirname(TESTS), "share")
PINS = [line.split() for line in open(os.path.join(SHARE, "toolchain", "x86_64-x86_64.pins"))
        if line.strip() and not line.startswith("#")]


def path(*parts):
    return os.path.join(WORK, *parts)


def sha256(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Mirror:
    """A Debian archive layout (pool paths) served over HTTP on 127.0.0.1, started and stopped
    by the test; skip leaves a package out, flip damages one byte of one."""

    def __init__(self, name, skip=None, flip=None):
        self.root = path("mirrors", name)
        for package, _version, pool, _size, _sha in PINS:
            if package == skip:
                continue
            dest = os.path.join(self.root, pool)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(os.path.join(DEBS, os.path.basename(pool)), dest)
            if package == flip:
                with open(dest, "r+b") as f:
                    f.seek(os.path.getsize(dest) // 2)
                    b = f.read(1)
                    f.seek(-1, 1)
                    f.write(bytes([b[0] ^ 0x01]))
        handler = functools.partial(Quiet, directory=self.root)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def closed_port_url():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d/debian" % port


def make_app(name, toolchain=None, rootfs_text="#!/bin/sh\necho hi\n", kernel="blobs:blobs"):
    app = path(name)
    os.makedirs(os.path.join(app, "rootfs", "bin"), exist_ok=True)
    with open(os.path.join(app, "rootfs", "bin", "app"), "w") as f:
        f.write(rootfs_text)
    os.chmod(os.path.join(app, "rootfs", "bin", "app"), 0o755)
    blobs = os.path.join(app, "blobs")
    os.makedirs(blobs, exist_ok=True)
    for n, data in (("bzImage", b"\x01" * 100000), ("init", b"\x02" * 1000),
                    ("cmdline", b"console=ttyS0\n"),
                    ("bzImage.config", b"# Linux/x86 6.12.0 Kernel Configuration\n")):
        with open(os.path.join(blobs, n), "wb") as f:
            f.write(data)
    doc = {"name": "app", "image": "dir:rootfs", "enclave": {"cmd": ["/bin/app"]},
           "kernel": {"source": kernel}}
    if toolchain is not None:
        doc["toolchain"] = toolchain
    with open(os.path.join(app, "kiln.json"), "w") as f:
        json.dump(doc, f)
    return app


def kiln(app, *args, env=None, fsize=None, timeout=3600):
    """Run kiln in app with a fresh cache, download directory and toolchain directory (unless
    env names others)."""
    tag = os.path.basename(app)
    e = dict(os.environ)
    e.update(KILN_CACHE_DIR=path("cache-" + tag), KILN_DOWNLOAD_DIR=path("downloads-" + tag),
             KILN_TOOLCHAIN_DIR=path("toolchain-" + tag), NO_COLOR="1")
    e.update(env or {})

    def limit():
        if fsize:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    p = subprocess.run([KILN] + list(args), cwd=app, env=e, capture_output=True, text=True,
                       timeout=timeout, preexec_fn=limit)
    return p


def doc_of(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {}


def toolchain_trees(app):
    d = path("toolchain-" + os.path.basename(app))
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# ---- fetching ----

def case_mirror_fallback():
    """The first mirror lacks gcc-12: the second one serves it; every .deb is verified."""
    full, partial = Mirror("full"), Mirror("partial", skip="gcc-12")
    try:
        app = make_app("fallback", {"mirrors": [partial.url, full.url]})
        p = kiln(app, "build", "-v", "-o", path("fallback.eif"))
        check(p.returncode == 0, "build with a mirror lacking gcc-12 falls back: %s" % p.stderr[-2000:])
        dl = path("downloads-fallback")
        for package, _v, pool, _s, sha in PINS:
            f = os.path.join(dl, os.path.basename(pool))
            check(os.path.exists(f) and sha256(f) == sha, "%s downloaded and verified" % package)
        lock = json.load(open(os.path.join(app, "kiln.lock")))
        tc = lock["stages"]["eif"]["resolved"].get("toolchain", {})
        check(tc.get("kind") == "pinned" and len(tc.get("packages", [])) == len(PINS),
              "kiln.lock records the pinned toolchain and its packages: %s" % tc)
        check(all(x.get("sha256") for x in tc.get("packages", [])), "each package's sha256 is locked")
    finally:
        full.stop()
        partial.stop()


def case_flipped_byte():
    """A .deb with one byte flipped is refused and named; nothing is unpacked or kept."""
    bad = Mirror("bad", flip="libc6-dev")
    try:
        app = make_app("flipped", {"mirrors": [bad.url]})
        p = kiln(app, "build", "-o", path("flipped.eif"))
        check(p.returncode != 0, "a damaged .deb fails the build")
        check("libc6-dev" in p.stderr and "refused" in p.stderr and "sha256" in p.stderr,
              "the error names the package, its sha256 and refuses it: %s" % p.stderr[-1500:])
        check(toolchain_trees(app) == [], "nothing unpacked: %s" % toolchain_trees(app))
        check(not os.path.exists(os.path.join(path("downloads-flipped"), "libc6-dev_2.36-9+deb12u14_amd64.deb")),
              "the damaged .deb is not kept")
        check(not os.path.exists(path("flipped.eif")), "no EIF written")
    finally:
        bad.stop()


def case_offline():
    """/toolchain/debs: no mirror is asked (the only one is unreachable)."""
    app = make_app("offline", {"debs": DEBS, "mirrors": [closed_port_url()]})
    p = kiln(app, "build", "-o", path("offline.eif"))
    check(p.returncode == 0, "build from /toolchain/debs: %s" % p.stderr[-2000:])
    check(os.path.exists(path("offline.eif")), "the EIF is written")


def case_unreachable():
    """Every mirror unreachable: each is named, and /toolchain/debs is suggested."""
    a, b = closed_port_url(), closed_port_url().replace("/debian", "/debian-security")
    app = make_app("unreachable", {"mirrors": [a, b]})
    p = kiln(app, "build", "-o", path("unreachable.eif"))
    check(p.returncode != 0, "unreachable mirrors fail the build")
    check(a in p.stderr and b in p.stderr, "each mirror tried is named: %s" % p.stderr[-1500:])
    check("/toolchain/debs" in p.stderr, "the error says what to do (/toolchain/debs)")
    check(toolchain_trees(app) == [], "nothing unpacked")


def case_disk_full():
    """A write failing while unpacking (file size limit: cc1 is larger) leaves nothing half-made."""
    app = make_app("diskfull", {"debs": DEBS})
    p = kiln(app, "build", "-o", path("diskfull.eif"), fsize=24 << 20)
    check(p.returncode != 0, "the build fails when unpacking cannot write")
    check("unpacking" in p.stderr, "the error says unpacking failed: %s" % p.stderr[-1500:])
    check(toolchain_trees(app) == [], "no toolchain tree, not even a temporary one: %s"
          % toolchain_trees(app))
    p = kiln(app, "build", "-o", path("diskfull.eif"))
    check(p.returncode == 0, "the next build with room succeeds: %s" % p.stderr[-1500:])


def case_no_make():
    """A host without make, flex or bison: the kernel build names the missing tools' packages."""
    app = make_app("nomake", {"debs": DEBS}, kernel="debian-build:6.12")
    empty = path("empty-bin")
    os.makedirs(empty, exist_ok=True)
    p = kiln(app, "build", "-o", path("nomake.eif"), env={"PATH": empty})
    check(p.returncode != 0, "the kernel build fails without make/flex/bison")
    for tool in ("make", "flex", "bison"):
        check(tool in p.stderr, "%s is named: %s" % (tool, p.stderr[-800:]))
    check("apt-get install" in p.stderr, "the packages to install are named")


def case_bad_kind():
    app = make_app("badkind", "clang")
    p = kiln(app, "build", "-o", path("badkind.eif"))
    check(p.returncode != 0 and "/toolchain" in p.stderr and "pinned" in p.stderr,
          "an unknown /toolchain is refused and the choices named: %s" % p.stderr[-800:])


# ---- verify ----

def case_verify_rebuilds():
    """verify right after build rebuilds every step (fresh cache); a changed rootfs is named."""
    app = make_app("verify", {"debs": DEBS})
    eif = path("verify.eif")
    p = kiln(app, "build", "-o", eif)
    check(p.returncode == 0, "build: %s" % p.stderr[-1500:])
    p = kiln(app, "verify", eif, "--json")
    d = doc_of(p)
    check(p.returncode == 0 and d.get("verified") is True, "verify right after build passes: %s %s"
          % (p.stdout[-800:], p.stderr[-800:]))
    check(d.get("cache") == "fresh" and d.get("steps", {}).get("cached") == 0 and
          d.get("steps", {}).get("rebuilt") == 3, "every step is rebuilt: %s" % d.get("steps"))
    p = kiln(app, "verify", eif, "-v")
    check(p.returncode == 0 and "3 step(s) rebuilt, 0 from the cache" in p.stderr,
          "-v counts the steps: %s" % p.stderr[-800:])
    p = kiln(app, "verify", eif, "--reuse-cache", "--json")
    d = doc_of(p)
    check(d.get("cache") == "reused" and d.get("steps", {}).get("rebuilt") == 0,
          "--reuse-cache rebuilds nothing and says so: %s" % d)
    with open(os.path.join(app, "rootfs", "bin", "app"), "w") as f:
        f.write("#!/bin/sh\necho changed\n")
    p = kiln(app, "verify", eif)
    check(p.returncode == 1, "a changed rootfs does not verify")
    check("first differing EIF section: application ramdisk" in p.stderr and "rootfs" in p.stderr,
          "the differing section (and artifact) is named: %s" % p.stderr[-1500:])
    check("/bin/app" in p.stderr, "the differing path is named")


def case_host_toolchain_named():
    """A build with the host toolchain records the compiler; verify with the pinned one says why
    the PCRs differ (init and kiln-agent are compiled by another compiler)."""
    app = make_app("hostcc", {"kind": "host"})
    eif = path("hostcc.eif")
    p = kiln(app, "build", "-o", eif)
    check(p.returncode == 0, "build with the host toolchain: %s" % p.stderr[-1500:])
    lock = json.load(open(os.path.join(app, "kiln.lock")))
    tc = lock["stages"]["eif"]["resolved"].get("toolchain", {})
    check(tc.get("kind") == "host" and tc.get("compiler"), "kiln.lock records the host compiler: %s" % tc)
    with open(os.path.join(app, "kiln.json")) as f:
        cfg = json.load(f)
    cfg["toolchain"] = {"debs": DEBS}
    with open(os.path.join(app, "kiln.json"), "w") as f:
        json.dump(cfg, f)
    p = kiln(app, "verify", eif)
    if p.returncode == 1:
        check("built with the host toolchain" in p.stderr and "rebuilt with the pinned one" in p.stderr,
              "verify names both toolchains: %s" % p.stderr[-1500:])
    else:  # the host compiler can be the very gcc the pins name: then the bytes agree
        check(p.returncode == 0, "verify: %s" % p.stderr[-1500:])


# ---- host independence (slow: two kernel compiles) ----

def junk_path():
    """A PATH whose gcc, cc, as and ld fail (clang when installed is cc), then the host's."""
    d = path("junk-bin")
    os.makedirs(d, exist_ok=True)
    for tool in ("gcc", "cc", "as", "ld", "x86_64-linux-gnu-gcc", "cpp", "aarch64-linux-gnu-gcc",
                 "aarch64-linux-gnu-cpp", "aarch64-linux-gnu-as", "aarch64-linux-gnu-ld"):
        with open(os.path.join(d, tool), "w") as f:
            f.write("#!/bin/sh\necho \"junk %s called\" >&2\nexit 1\n" % tool)
        os.chmod(os.path.join(d, tool), 0o755)
    clang = shutil.which("clang") or shutil.which("clang-14")
    if clang:
        os.remove(os.path.join(d, "cc"))
        os.symlink(clang, os.path.join(d, "cc"))
    return d + ":" + os.environ.get("PATH", "/usr/bin:/bin")


def artifact_file(app, kind, name, cache):
    """The file of the pipeline's newest artifact of kind in cache (from app's kiln.lock)."""
    lock = json.load(open(os.path.join(app, "kiln.lock")))
    digest = None
    for stage in lock["stages"].values():
        digest = stage.get("outputs", {}).get(kind, digest)
    hexd = digest.split(":", 1)[1]
    root = os.path.join(cache, "artifacts")
    for dirpath, _dirs, files in os.walk(root):
        if hexd in dirpath and name in files:
            return os.path.join(dirpath, name)
    return None


def junk_env(extra):
    os.makedirs(path("junk-include"), exist_ok=True)
    with open(path("junk-include", "stdio.h"), "w") as f:
        f.write("#error junk header used\n")
    return dict(extra, PATH=junk_path(), CPATH=path("junk-include"), LIBRARY_PATH=path("junk-lib"),
                C_INCLUDE_PATH=path("junk-include"), CC="false")


def case_init_host_independence():
    """kiln-init and kiln-agent (blobs kernel): a pinned build, then one with failing gcc/cc/as/ld
    (or clang) first on PATH and junk CPATH/LIBRARY_PATH: the same EIF, PCRs and kiln-init."""
    a = make_app("init_a", {"debs": DEBS})
    b = make_app("init_b", {"debs": DEBS})
    pa = kiln(a, "build", "-o", path("ia.eif"), "--json")
    check(pa.returncode == 0, "pinned build: %s" % pa.stderr[-2000:])
    pb = kiln(b, "build", "-o", path("ib.eif"), "--json", env=junk_env({}))
    check(pb.returncode == 0, "pinned build with a junk PATH and CPATH: %s" % pb.stderr[-2000:])
    da, db = doc_of(pa), doc_of(pb)
    check(da.get("sha256") and da.get("sha256") == db.get("sha256"),
          "identical EIF sha256: %s vs %s" % (da.get("sha256"), db.get("sha256")))
    check(da.get("Measurements") == db.get("Measurements"), "identical PCRs")
    for prog in ("kiln-init", "kiln-agent"):
        fa = [os.path.join(r, prog) for r, _d, f in os.walk(path("cache-init_a", "state")) if prog in f]
        fb = [os.path.join(r, prog) for r, _d, f in os.walk(path("cache-init_b", "state")) if prog in f]
        check(len(fa) == 1 and len(fb) == 1 and sha256(fa[0]) == sha256(fb[0]),
              "identical %s on its own" % prog)


def make_arm_app(name):
    """An aarch64 app with a blobs kernel (Image, Image.config, cmdline): no kernel compile, the
    eif stage cross-compiles kiln-init and kiln-agent with the pinned cross toolchain."""
    app = path(name)
    os.makedirs(os.path.join(app, "rootfs", "bin"))
    with open(os.path.join(app, "rootfs", "bin", "app"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(app, "rootfs", "bin", "app"), 0o755)
    os.makedirs(os.path.join(app, "blobs"))
    for n, data in (("Image", bytes(i % 251 for i in range(200000))), ("cmdline", b"console=ttyS0\n"),
                    ("Image.config", b"# Linux/arm64 6.12.117 Kernel Configuration\n"), ("init", b"unused")):
        with open(os.path.join(app, "blobs", n), "wb") as f:
            f.write(data)
    with open(os.path.join(app, "kiln.json"), "w") as f:
        json.dump({"name": "app", "arch": "aarch64", "image": "dir:rootfs", "enclave": {"cmd": ["/bin/app"]},
                   "kernel": {"source": "blobs:blobs"}, "toolchain": {"debs": DEBS}}, f)
    return app


def elf_machine(p):
    with open(p, "rb") as f:
        head = f.read(20)
    return int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else None


def host_paths_in(text, root):
    """Absolute paths in gcc's -v / -print-search-dirs output that are not under root (the pinned
    tree) or WORK (temporary files); the configure line, the bug-report URL and /toolchain (what
    -ffile-prefix-map writes for root) are text, not paths gcc uses."""
    import re
    found = set()
    for line in text.splitlines():
        if line.startswith("Configured with:") or "README.Bugs" in line:
            continue
        for p in re.findall(r"(?<![\w.])(/[\w.+/-]+)", line.replace("=", " ").replace(":", " ")):
            if p != "/toolchain" and not os.path.normpath(p).startswith((os.path.realpath(root), root, WORK)):
                found.add(p)
    return sorted(found)


def case_cross_init_host_independence():
    """aarch64 kiln-init and kiln-agent from the pinned cross toolchain (blobs kernel): a build, then
    one in another directory and cache with failing gcc/cc/as/ld and aarch64-linux-gnu-gcc/-as/-ld
    first on PATH and junk CPATH/LIBRARY_PATH: the same EIF, PCRs, kiln-init and kiln-agent, aarch64
    ELF files; kiln.lock records the pinned aarch64 toolchain; the cross gcc's search directories
    and a -v compile name no path outside the pinned tree (no host /usr/include, /usr/lib/gcc-cross
    or /usr/aarch64-linux-gnu)."""
    a = make_arm_app("cross_a")
    b = make_arm_app("deeper/cross_b")
    pa = kiln(a, "build", "-o", path("ca.eif"), "--json")
    check(pa.returncode == 0, "pinned aarch64 build: %s" % pa.stderr[-2000:])
    check("no pinned" not in pa.stderr and "host's cross compiler" not in pa.stderr,
          "no host cross compiler warning: %s" % pa.stderr[-800:])
    pb = kiln(b, "build", "-o", path("cb.eif"), "--json", env=junk_env({}))
    check(pb.returncode == 0, "pinned aarch64 build with a junk PATH and CPATH: %s" % pb.stderr[-2000:])
    if pa.returncode or pb.returncode:
        return
    da, db = doc_of(pa), doc_of(pb)
    check(da.get("sha256") and da.get("sha256") == db.get("sha256"),
          "identical aarch64 EIF sha256: %s vs %s" % (da.get("sha256"), db.get("sha256")))
    check(da.get("Measurements") and da.get("Measurements") == db.get("Measurements"), "identical PCRs")
    for prog in ("kiln-init", "kiln-agent"):
        fa = [os.path.join(r, prog) for r, _d, f in os.walk(path("cache-cross_a", "state")) if prog in f]
        fb = [os.path.join(r, prog) for r, _d, f in os.walk(path("cache-cross_b", "state")) if prog in f]
        check(len(fa) == 1 and len(fb) == 1 and sha256(fa[0]) == sha256(fb[0]),
              "identical %s on its own: %s %s" % (prog, fa, fb))
        check(fa and elf_machine(fa[0]) == 183, "%s is an aarch64 ELF file (EM_AARCH64)" % prog)
    lock = json.load(open(os.path.join(a, "kiln.lock")))
    tc = lock["stages"]["eif"]["resolved"].get("toolchain", {})
    pins = os.path.join(SHARE, "toolchain", "x86_64-aarch64.pins")
    names = [x.get("package") for x in tc.get("packages", [])]
    check(tc.get("kind") == "pinned" and tc.get("arch") == "aarch64" and tc.get("pins_sha256") == sha256(pins)
          and "gcc-12-aarch64-linux-gnu" in names and "libc6-dev-arm64-cross" in names,
          "kiln.lock records the pinned aarch64 toolchain: %s" % {k: tc.get(k) for k in ("kind", "arch")})
    trees = [t for t in toolchain_trees(a) if t.endswith("-aarch64")]
    check(len(trees) == 1, "one pinned aarch64 tree: %s" % toolchain_trees(a))
    if len(trees) != 1:
        return
    root = path("toolchain-cross_a", trees[0])
    gcc = os.path.join(root, "kiln-bin", "aarch64-linux-gnu-gcc")
    src = path("probe.c")
    with open(src, "w") as f:
        f.write("#include <stdio.h>\nint main(void) { puts(\"probe\"); return 0; }\n")
    os.makedirs(path("tmp"), exist_ok=True)
    clean = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TMPDIR": path("tmp")}
    v = subprocess.run([gcc, "-v", "-static", "-o", path("probe"), src], capture_output=True, text=True,
                       env=clean)
    check(v.returncode == 0 and elf_machine(path("probe")) == 183,
          "the pinned aarch64-linux-gnu-gcc links a static aarch64 program: %s" % v.stderr[-1500:])
    check("#include <...> search starts here" in v.stderr, "gcc -v shows its include search list")
    leaked = host_paths_in(v.stderr, root)
    check(not leaked, "gcc -v uses no path outside the pinned tree: %s" % leaked)
    d = subprocess.run([gcc, "-print-search-dirs"], capture_output=True, text=True, env=clean)
    leaked = host_paths_in(d.stdout, root)
    check(d.returncode == 0 and "libraries:" in d.stdout and not leaked,
          "-print-search-dirs names only the pinned tree: %s" % leaked)
    for prog in ("cc1", "as", "ld", "collect2"):
        p = subprocess.run([gcc, "-print-prog-name=" + prog], capture_output=True, text=True, env=clean)
        check(p.stdout.strip().startswith(os.path.join(root, "kiln-bin", "aarch64-linux-gnu") + "/"),
              "gcc runs the pinned cross %s: %s" % (prog, p.stdout.strip()))


def case_host_independence():
    rootfs = "#!/bin/sh\necho independent\n"
    a = make_app("pinned_a", {"debs": DEBS}, rootfs, kernel="debian-build:6.12")
    b = make_app("pinned_b", {"debs": DEBS}, rootfs, kernel="debian-build:6.12")
    shared = {"KILN_DOWNLOAD_DIR": path("downloads-shared")}
    # The first build may reuse the run's shared cache (its pinned kernel, when another test made
    # it); the second one compiles everything in a fresh cache with the junk environment.
    cache_a = os.environ.get("KILN_TEST_SHARED_CACHE") or path("cache-pinned_a")
    pa = kiln(a, "build", "-o", path("a.eif"), "--json", env=dict(shared, KILN_CACHE_DIR=cache_a))
    check(pa.returncode == 0, "pinned build: %s" % pa.stderr[-2000:])
    junk = junk_env(shared)
    pb = kiln(b, "build", "-o", path("b.eif"), "--json", env=junk)
    check(pb.returncode == 0, "pinned build with junk gcc/cc/as/ld and CPATH: %s" % pb.stderr[-2000:])
    da, db = doc_of(pa), doc_of(pb)
    check(da.get("sha256") and da.get("sha256") == db.get("sha256"),
          "identical EIF sha256: %s vs %s" % (da.get("sha256"), db.get("sha256")))
    check(da.get("Measurements") == db.get("Measurements"),
          "identical PCRs: %s vs %s" % (da.get("Measurements"), db.get("Measurements")))
    ka = artifact_file(a, "kernel", "bzImage", cache_a)
    kb = artifact_file(b, "kernel", "bzImage", path("cache-pinned_b"))
    check(ka and kb and sha256(ka) == sha256(kb), "identical bzImage on its own")
    ia = [os.path.join(r, "kiln-init") for r, _d, f in os.walk(os.path.join(cache_a, "state"))
          if "kiln-init" in f]
    ib = [os.path.join(r, "kiln-init") for r, _d, f in os.walk(path("cache-pinned_b", "state"))
          if "kiln-init" in f]
    check(len(ib) == 1 and sha256(ib[0]) in [sha256(x) for x in ia],
          "identical kiln-init on its own (the fresh build's is one of the first cache's)")
    print(json.dumps({"eif_sha256": da.get("sha256"), "pcrs": da.get("Measurements"),
                      "bzImage_sha256": sha256(ka) if ka else None,
                      "kiln_init_sha256": sha256(ib[0]) if ib else None}, indent=1))


missing = [pool for _p, _v, pool, _s, _h in PINS
           if not os.path.exists(os.path.join(DEBS, os.path.basename(pool)))]
if missing:
    print("%s lacks %s: run tests/deps/toolchain.sh" % (DEBS, ", ".join(missing)), file=sys.stderr)
    sys.exit(1)
run_case(globals(), CASE, WORK)
