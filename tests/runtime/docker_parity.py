#!/usr/bin/env python3
"""The app's process as `docker run` starts it: the same images (made here with `docker import`:
one with USER, WORKDIR, ENV, ENTRYPOINT + CMD and a user in a supplementary group, one as root
with nothing set) run under the tests' real dockerd and, built by kiln from docker-daemon:, as an
enclave app under qemu. rt_procinfo prints uid, gid, groups, cwd, argv, environment, umask,
file-descriptor limits and stdin in both, and they are compared. Known, intended differences:
HOSTNAME's value (a container id vs the enclave's "localhost"), the egress proxy variables kiln
adds, and the descriptor limit (Docker inherits dockerd's; kiln sets 1048576, at least as high).

Usage: docker_parity.py KILN CC DOCKERD_ENV_FILE"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from kilntest import check, eif_parts, run_case, server_env  # noqa: E402

KILN, CC, ENV_FILE = sys.argv[1:4]
HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_SOURCE = os.environ.get("KILN_TEST_KERNEL", "debian-cloud:6.12")
work = tempfile.mkdtemp(prefix="kiln-parity-")
srv = server_env(os.path.dirname(ENV_FILE), os.path.basename(ENV_FILE)[:-4])
DOCKER_HOST = "unix://" + os.path.join(srv["DIR"], "docker.sock")
PROXY_VARS = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"}


def docker(*args, **kw):
    env = dict(os.environ, DOCKER_HOST=DOCKER_HOST)
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, env=env, timeout=300, **kw)


def make_images():
    t = os.path.join(work, "tree")
    for d in ("bin", "etc", "home/app", "work", "tmp", "root", "dev", "proc", "sys", "run"):
        os.makedirs(os.path.join(t, d))
    subprocess.run([CC, "-static", "-O2", "-o", os.path.join(t, "bin/procinfo"), os.path.join(HERE, "rt_procinfo.c")], check=True)
    open(os.path.join(t, "etc/passwd"), "w").write("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
    open(os.path.join(t, "etc/group"), "w").write("root:x:0:\napp:x:1000:\nextra:x:2000:app\nother:x:3000:root,nobody\n")
    tar = os.path.join(work, "tree.tar")
    subprocess.run(["tar", "-C", t, "-cf", tar, "."], check=True)
    images = {
        "kiln/parity:user": ["USER app", "WORKDIR /work", "ENV FOO=bar", 'ENTRYPOINT ["/bin/procinfo","a b"]', 'CMD ["c"]'],
        "kiln/parity:root": ['ENTRYPOINT ["/bin/procinfo"]'],
    }
    for name, changes in images.items():
        args = ["import"]
        for c in changes:
            args += ["-c", c]
        p = docker(*args, tar, name)
        if p.returncode != 0:
            raise SystemExit("docker import failed: " + p.stderr)
    return list(images)


def parse(text):
    info = {}
    for line in text.splitlines():
        i = line.find("PROCINFO ")
        if i < 0:
            continue
        key, _, value = line[i + 9:].rstrip("\r").partition(" ")
        if key == "env":
            name, _, v = value.partition("=")
            info.setdefault("env", {})[name] = v
        else:
            info[key] = value
    return info


def enclave_run(image):
    app = os.path.join(work, "app")
    shutil.rmtree(app, ignore_errors=True)
    os.makedirs(app)
    json.dump({"name": "parity", "image": "docker-daemon:" + image, "kernel": {"source": KERNEL_SOURCE}},
              open(os.path.join(app, "kiln.json"), "w"))
    env = dict(os.environ, DOCKER_HOST=DOCKER_HOST)
    env.setdefault("KILN_CACHE_DIR", os.environ.get("KILN_TEST_SHARED_CACHE") or os.path.join(work, "cache"))
    p = subprocess.run([KILN, "-C", app, "build", "--json"], capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0:
        raise SystemExit("kiln build failed: " + p.stderr)
    kernel, cmdline, ramdisks = eif_parts(json.loads(p.stdout)["eif"])
    k, r = os.path.join(work, "k"), os.path.join(work, "r")
    open(k, "wb").write(kernel)
    open(r, "wb").write(b"".join(ramdisks))
    out = subprocess.run(["qemu-system-x86_64", "-M", "q35", "-m", "512", "-smp", "1", "-nographic", "-no-reboot",
                          "-kernel", k, "-initrd", r, "-append", cmdline + " kiln.heartbeat=off"],
                         capture_output=True, text=True, errors="replace", timeout=300).stdout
    return parse(out)


def compare(image):
    d = docker("run", "--rm", "--network", "none", image)
    check(d.returncode == 0, "docker run %s: %s" % (image, d.stderr))
    want, got = parse(d.stdout), enclave_run(image)
    print("%s\n  docker:  %s\n  enclave: %s" % (image, json.dumps(want, sort_keys=True), json.dumps(got, sort_keys=True)))
    check(got.get("end") is not None, "%s: the enclave app ran to its end" % image)
    for key in sorted(set(want) | set(got)):
        if key in ("env", "nofile", "end"):
            continue
        check(want.get(key) == got.get(key), "%s: %s is %r under docker run, %r in the enclave" % (image, key, want.get(key), got.get(key)))
    we, ge = want.get("env", {}), got.get("env", {})
    for name in sorted(set(we) | set(ge)):
        if name in PROXY_VARS:
            continue
        if name == "HOSTNAME":
            check(bool(ge.get(name)), "%s: HOSTNAME is set in the enclave (%r)" % (image, ge.get(name)))
            continue
        check(we.get(name) == ge.get(name), "%s: $%s is %r under docker run, %r in the enclave" % (image, name, we.get(name), ge.get(name)))
    for name in sorted(PROXY_VARS):
        check(name in ge, "%s: kiln adds %s for the egress proxy" % (image, name))
    wn, gn = [int(x) for x in want.get("nofile", "0 0").split()], [int(x) for x in got.get("nofile", "0 0").split()]
    check(gn[0] >= wn[0] and gn[1] >= wn[1], "%s: descriptor limits %s are at least docker run's %s" % (image, gn, wn))


def case_parity():
    for image in make_images():
        compare(image)


if not shutil.which("qemu-system-x86_64") or not shutil.which("docker"):
    sys.exit("qemu-system-x86_64 and docker are needed (tests/run installs them)")
run_case(globals(), "parity", work)
