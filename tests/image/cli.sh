#!/bin/bash
# Tests of `kiln image`: help, usage errors (exit 2), failures (exit 1), --json printing exactly
# one JSON document, dir: sources with /enclave/cmd and /enclave/env from kiln.json, and
# byte-identical output for two runs from different directories.
# Usage: cli.sh KILN_BINARY
set -euo pipefail
kiln=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-image-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export KILN_CACHE_DIR=$work/cache SOURCE_DATE_EPOCH=1700000000
fails=0
pass() { echo "ok - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
code() { set +e; "$@" > out.txt 2> err.txt; echo $?; set -e; }

[ "$(code "$kiln" image --help)" = 0 ] && grep -q "docker-archive:FILE" out.txt && pass "--help teaches the sources" || fail "--help"
[ "$(code "$kiln" image a b)" = 2 ] && pass "two sources is a usage error (exit 2)" || fail "usage exit 2"
[ "$(code "$kiln" image --platform)" = 2 ] && pass "missing option value is a usage error" || fail "missing value"
[ "$(code "$kiln" image nowhere:x)" = 1 ] && grep -q "has no transport" err.txt && pass "bad source fails with exit 1 and says why" || { cat err.txt; fail "bad source"; }

mkdir -p app/root/bin && cp /bin/true app/root/bin/app
printf '{"name":"t","image":"dir:root","enclave":{"cmd":["app","--x"],"env":{"MODE":"prod"}}}\n' > app/kiln.json
if [ "$(code "$kiln" -C app image -o "$work/a.cpio" --json)" = 0 ] && python3 -c '
import json,sys
d=json.load(open("out.txt"))
assert d["argv"]==["/usr/bin/app","--x"] or d["argv"][0].endswith("/bin/app"), d["argv"]
assert d["env"]==["MODE=prod"], d["env"]
assert d["files"]>0 and d["bytes"]>0
'; then pass "dir: source with /enclave/cmd and /enclave/env, --json is one document"; else cat out.txt err.txt; fail "dir: with --json"; fi
mkdir -p elsewhere && cp -r app elsewhere/app
rm -rf cache
code "$kiln" -C elsewhere/app image -o "$work/b.cpio" >/dev/null
cmp -s a.cpio b.cpio && pass "two runs from different directories give identical bytes" || fail "identical bytes"
cpio -it < a.cpio 2>/dev/null | grep -qx "kiln-run" && pass "the archive carries cmd, env and kiln-run" || fail "kiln-run present"

mkdir -p app2/l/bin && cp /bin/true app2/l/bin/app
(cd app2 && umoci init --layout oci >/dev/null && umoci new --image oci:img >/dev/null &&
  umoci insert --image oci:img l / >/dev/null && umoci config --image oci:img --config.cmd app >/dev/null)
printf '{"name":"t2","image":{"source":"oci:oci:img","cmd_mode":"nitro-cli"}}\n' > app2/kiln.json
if [ "$(code "$kiln" -C app2 image -o "$work/c.cpio" --json)" = 0 ] &&
   python3 -c '
import json
def find(o):  # the lock layout belongs to the core: look for the key anywhere
    if isinstance(o, dict):
        if "image_digest" in o: return o["image_digest"]
        for v in o.values():
            r = find(v)
            if r: return r
lock, doc = find(json.load(open("app2/kiln.lock"))), json.load(open("out.txt"))
assert lock == doc["image_digest"] and lock.startswith("sha256:"), (lock, doc)'; then
  pass "the image manifest digest is recorded in kiln.lock"; else cat out.txt err.txt; fail "kiln.lock image_digest"; fi

echo "$fails failure(s)"
[ $fails -eq 0 ]
