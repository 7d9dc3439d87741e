#!/usr/bin/env python3
"""CLI tests of kiln: exit codes, error messages for bad input, caching, interruption, sizing.

Run as: test_cli.py KILN_BINARY FIXTURE_PLUGIN_DIR CASE
Each case runs the real kiln binary in a temporary app directory with its own cache.
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
from kilntest import check, run_case  # noqa: E402

KILN, FIXTURES, CASE = sys.argv[1], sys.argv[2], sys.argv[3]


class App:
    def __init__(self, kiln_json=None):
        self.root = tempfile.mkdtemp(prefix="kiln-cli-")
        self.dir = os.path.join(self.root, "app")
        self.cache = os.path.join(self.root, "cache")
        os.makedirs(self.dir)
        if kiln_json is not None:
            self.write("kiln.json", kiln_json if isinstance(kiln_json, str) else json.dumps(kiln_json))

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def run(self, *args, plugins=("good",), env=None, check_json=False):
        e = dict(os.environ)
        e["KILN_CACHE_DIR"] = self.cache
        e["NO_COLOR"] = "1"
        e["KILN_PLUGIN_PATH"] = ":".join(os.path.join(FIXTURES, p) for p in plugins)
        e.update(env or {})
        p = subprocess.run([KILN, "-C", self.dir] + list(args), capture_output=True, text=True,
                           env=e, timeout=120)
        if check_json or "--json" in args:
            try:
                p.doc = json.loads(p.stdout)
            except ValueError:
                p.doc = None
                check(False, "stdout is not one JSON document: %r" % p.stdout[:300])
        return p

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def expect(p, code, *needles, stream="stderr"):
    text = getattr(p, stream)
    check(p.returncode == code, "exit code %d expected, got %d (stderr: %s)" % (code, p.returncode, p.stderr.strip()))
    for n in needles:
        check(n in text, "%s should contain %r, got: %s" % (stream, n, text.strip()))


def case_digest_handoff():
    """A stage that hands the store a digest that is not its file's is caught (a plugin bug)."""
    a = App()
    p = a.run("run", "liar", plugins=("broken",))
    expect(p, 1, "data.bin", "the stage handed over SHA-256 0123456789abcdef", "plugin is broken")
    p = a.run("run", "liar", "--set", "lie=size", "--set", "mib=20", plugins=("broken",))
    expect(p, 1, "a digest for 20971521 bytes, but the file has 20971520")
    p = a.run("run", "liar", "--set", "mib=20", plugins=("broken",), env={"KILN_VERIFY_DIGESTS": "1"})
    expect(p, 1, "the stage handed over SHA-256 0123456789abcdef")
    check(not os.listdir(os.path.join(a.cache, "artifacts")) if os.path.isdir(os.path.join(a.cache, "artifacts"))
          else True, "nothing was stored for the lying stage")
    a.cleanup()


def case_usage():
    a = App()
    expect(a.run("--version"), 0, "kiln ", stream="stdout")
    expect(a.run("help"), 0, "Usage: kiln", "size", stream="stdout")
    expect(a.run(), 2, "Usage: kiln")
    expect(a.run("frobnicate"), 2, 'unknown command "frobnicate"')
    expect(a.run("help", "frobnicate"), 2, 'no command named "frobnicate"')
    expect(a.run("size", "--cpus"), 2, "--cpus needs a value")
    expect(a.run("size", "--cpus", "two"), 2, "--cpus takes a whole number")
    expect(a.run("size", "--memory", "lots"), 2, "--memory takes a size")
    expect(a.run("run"), 2, "name the stage to run")
    expect(a.run("run", "produce", "--set", "noequals"), 2, "--set takes key=value")
    p = a.run("size", "--bogus", "--json")
    expect(p, 2, "unexpected argument")
    check(p.doc and p.doc["error"]["code"] == "usage", "usage error as JSON on stdout")
    expect(a.run("size", "--help"), 0, "Usage: kiln size", "allocator.yaml", stream="stdout")
    a.cleanup()


def case_init():
    a = App()
    p = a.run("init")
    expect(p, 0, "wrote", stream="stdout")
    with open(os.path.join(a.dir, "kiln.json")) as f:
        doc = json.load(f)
    check(doc["image"] == "dir:rootfs" and doc["name"] == "app", "init writes a usable kiln.json")
    expect(a.run("init"), 1, "already exists")
    expect(a.run("plugins"), 0)  # the written file validates
    a.cleanup()


def case_bad_config():
    cases = [
        ("{\n  \"name\": \"x\",\n}\n", "kiln.json:3:"),
        ("{\"nmae\": \"x\"}", "/nmae: unknown key"),
        ("{\"enclave\": {\"memory_mib\": 12}}", "/enclave/memory_mib: must be an integer >= 64"),
        ("{\"enclave\": {\"cpus\": \"two\"}}", "/enclave/cpus: must be an integer, not string"),
        ("", "empty file"),
    ]
    for text, needle in cases:
        a = App(text)
        p = a.run("plugins", "--json")
        expect(p, 1, needle)
        check(p.doc and needle in p.doc["error"]["message"], "JSON error names %r" % needle)
        a.cleanup()
    # kiln.json that cannot be read (a directory)
    a = App()
    os.makedirs(os.path.join(a.dir, "kiln.json"))
    expect(a.run("plugins"), 1, "kiln.json is not a regular file")
    a.cleanup()
    # stage options validated with the stage's schema
    a = App({"produce": {"text": 5}})
    expect(a.run("run", "produce"), 1, "/produce/text: must be a string, not integer")
    a.cleanup()


def case_bad_plugins():
    a = App()
    expect(a.run("run", "nosuch"), 1, 'unknown stage "nosuch"', "produce")
    expect(a.run("plugins", plugins=("not_elf",)), 1, "not_elf.so is not an ELF shared object")
    expect(a.run("plugins", plugins=("bad_abi",)), 1, "bad_abi.so was built for kiln plugin ABI 99")
    expect(a.run("plugins", plugins=("good", "dup")), 1, 'stage name "produce" is already provided')
    p = a.run("run", "failing", plugins=("broken",))
    expect(p, 1, "the fixture failed on purpose: option /failing/x is bad")
    p = a.run("run", "sneaky", plugins=("broken",))
    expect(p, 1, 'tried to produce a "secret-kind" artifact')
    # nothing half-made stays behind
    arts = os.path.join(a.cache, "artifacts")
    check(not os.path.isdir(arts) or os.listdir(arts) == [], "no artifact kept after failures")
    check(os.listdir(os.path.join(a.cache, "tmp")) == [], "no staging left after failures")
    a.cleanup()


def case_plugins_list():
    a = App()
    p = a.run("plugins", "--json")
    expect(p, 0)
    names = [s["name"] for pl in (p.doc or {}).get("plugins", []) for s in pl["stages"]]
    check("produce" in names and "consume" in names, "plugins --json lists the fixture's stages")
    a.cleanup()


def stat_tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            st = os.stat(os.path.join(d, f))
            out[os.path.join(d, f)] = (st.st_ino, st.st_mtime_ns)
    return out


def case_cache_hit():
    a = App({"name": "demo", "produce": {"text": "hi"}})
    p1 = a.run("run", "produce", "--json")
    expect(p1, 0)
    check(p1.doc and p1.doc["steps"][0]["cached"] is False, "first run is not cached")
    before = stat_tree(os.path.join(a.cache, "artifacts"))
    lock = os.path.join(a.dir, "kiln.lock")
    lock_before = (os.stat(lock).st_ino, os.stat(lock).st_mtime_ns, open(lock).read())
    time.sleep(0.05)
    p2 = a.run("run", "produce", "--json")
    expect(p2, 0)
    check(p2.doc and p2.doc["steps"][0]["cached"] is True, "second run is a cache hit")
    check(p1.doc["steps"][0]["outputs"][0]["digest"] == p2.doc["steps"][0]["outputs"][0]["digest"],
          "same artifact digest")
    check(stat_tree(os.path.join(a.cache, "artifacts")) == before, "no artifact rewritten (inodes, mtimes)")
    check((os.stat(lock).st_ino, os.stat(lock).st_mtime_ns, open(lock).read()) == lock_before,
          "kiln.lock untouched on a cache hit")
    p3 = a.run("run", "produce")
    expect(p3, 0, "cached")
    p4 = a.run("--no-cache", "run", "produce", "--json")
    check(p4.doc and p4.doc["steps"][0]["cached"] is False, "--no-cache runs the stage")
    a.cleanup()


def case_cache_not_writable():
    a = App()
    blocker = os.path.join(a.root, "file")
    open(blocker, "w").close()
    p = a.run("run", "produce", env={"KILN_CACHE_DIR": os.path.join(blocker, "cache")})
    expect(p, 1, "cache directory", "KILN_CACHE_DIR")
    a.cleanup()


def case_sigint():
    a = App()
    e = dict(os.environ, KILN_CACHE_DIR=a.cache, KILN_PLUGIN_PATH=os.path.join(FIXTURES, "broken"))
    proc = subprocess.Popen([KILN, "-C", a.dir, "run", "slow"], env=e, stderr=subprocess.PIPE, text=True)
    marker = os.path.join(a.dir, "slow-started")
    for _ in range(200):
        if os.path.exists(marker):
            break
        time.sleep(0.05)
    check(os.path.exists(marker), "slow stage started")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    check(proc.returncode == 130, "exit code 130 after SIGINT, got %s" % proc.returncode)
    check("interrupted" in err, "says it was interrupted: %s" % err.strip())
    check(os.listdir(os.path.join(a.cache, "tmp")) == [], "temp and staging dirs removed")
    check(os.listdir(os.path.join(a.cache, "artifacts")) == [], "no partial artifact")
    check(not os.path.exists(os.path.join(a.dir, "kiln.lock")), "no lock written")
    a.cleanup()


def case_size_seed_table():
    a = App()
    for cpus, mem, want in [(2, "14G", "m5.xlarge"), (6, "30G", "m5.2xlarge"), (14, "62G", "m5.4xlarge"),
                            (30, "126G", "m5.8xlarge")]:
        p = a.run("size", "--cpus", str(cpus), "--memory", mem, "--family", "m5", "--json", plugins=())
        expect(p, 0)
        check(p.doc and p.doc["instance_type"] == want, "%d CPUs / %s -> %s, got %s" % (
            cpus, mem, want, p.doc and p.doc.get("instance_type")))
        check(p.doc and p.doc["allocator"] == {"cpu_count": cpus, "memory_mib": int(mem[:-1]) * 1024},
              "allocator values for %s" % want)
    p = a.run("size", "--cpus", "2", "--memory", "14G", "--json", plugins=())
    check(p.doc and p.doc["runner_up"] and p.doc["price_per_hour_usd"] <= p.doc["runner_up"]["price_per_hour_usd"],
          "without a family: cheapest across families, runner-up printed")
    expect(a.run("size", "--cpus", "2", "--memory", "14G", plugins=()), 0, "runner-up:", stream="stdout")
    p = a.run("size", "--cpus", "400", "--memory", "8G", "--family", "m5", plugins=())
    expect(p, 1, "the largest is m5.24xlarge")
    p = a.run("size", "--cpus", "3", "--memory", "4G", "--family", "m5", "--json", plugins=())
    check(p.doc and p.doc["enclave"]["cpus"] == 4, "odd CPU counts round up to whole cores")
    p = a.run("size", "--cpus", "2", "--memory", "1024", "--arch", "aarch64", "--json", plugins=())
    check(p.doc and p.doc["arch"] == "aarch64" and p.doc["instance_type"].split(".")[0].endswith("g"),
          "Graviton sizing")
    # EIF of 3 MiB + 1 byte -> 4 MiB -> memory raised to 16 MiB? no: minimum is max(asked, 4x)
    eif = os.path.join(a.root, "big.eif")
    with open(eif, "wb") as f:
        f.truncate(600 * 1024 * 1024 + 1)
    p = a.run("size", "--cpus", "2", "--memory", "1G", "--eif", eif, "--json", plugins=())
    check(p.doc and p.doc["enclave"]["memory_mib"] == 601 * 4, "memory raised to 4x the EIF size")
    check(p.doc and any("E26" in n for n in p.doc["notes"]), "the output says why memory was raised")
    # -C DIR works as if started in DIR: relative paths on the command line are the app's
    os.rename(eif, os.path.join(a.dir, "in-app.eif"))
    check(not os.path.exists("in-app.eif"), "the test's own directory has no in-app.eif")
    p = a.run("size", "--cpus", "2", "--memory", "1G", "--eif", "in-app.eif", "--json", plugins=())
    check(p.doc and p.doc["enclave"]["memory_mib"] == 601 * 4, "-C: --eif relative to the app directory")
    p = subprocess.run([KILN, "-C", os.path.join(a.root, "no-such-app"), "size"], capture_output=True, text=True)
    expect(p, 2, "no-such-app: No such file or directory")
    # from kiln.json /enclave
    a.write("kiln.json", json.dumps({"enclave": {"cpus": 6, "memory_mib": 30720}, "size": {"family": "m5"}}))
    p = a.run("size", "--json", plugins=())
    check(p.doc and p.doc["instance_type"] == "m5.2xlarge", "sizes from kiln.json /enclave and /size")
    a.cleanup()


def case_run_input():
    """kiln run STAGE --input KIND=FILE: the file is the stage's input in place (not copied), as
    `kiln size --eif` and `kiln upload` use it; bad forms are usage errors, a missing file exit 1."""
    a = App()
    eif = os.path.join(a.dir, "big.eif")
    with open(eif, "wb") as f:
        f.truncate(600 * 1024 * 1024 + 1)
    p = a.run("run", "size", "--input", "eif=big.eif", "--set", "cpus=2", "--set", "memory_mib=1024",
              "--json", plugins=())
    steps = (p.doc or {}).get("steps", [])
    sizing = [o for s in steps for o in s.get("outputs", []) if o.get("kind") == "sizing"]
    check(p.returncode == 0 and sizing, "kiln run size --input eif=FILE runs: %s" % p.stderr[-500:])
    check(sizing and sizing[0]["meta"]["enclave"]["memory_mib"] == 601 * 4,
          "the input file's size reaches the stage: %s" % (sizing[0]["meta"] if sizing else None))
    store = os.path.join(a.cache, "artifacts")
    big = [f for d, _, fs in os.walk(store) for f in fs if os.path.getsize(os.path.join(d, f)) > 1 << 20]
    check(not big, "the file is not copied into the store: %s" % big)
    expect(a.run("run", "size", "--input", "big.eif", plugins=()), 2, "--input takes KIND=FILE")
    expect(a.run("run", "size", "--input", "eif=", plugins=()), 2, "--input takes KIND=FILE")
    expect(a.run("run", "size", "--input", "eif=missing.eif", plugins=()), 1, "missing.eif: no such file")
    a.cleanup()


run_case(globals(), CASE)
