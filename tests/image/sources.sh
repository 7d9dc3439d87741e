#!/bin/bash
# Integration test of the image sources: builds a multi-layer image with umoci (whiteouts, opaque
# dirs, hard links, absolute symlinks), converts it with skopeo, and checks that every source gives
# the same rootfs as `umoci unpack`, byte-identical across sources and runs.
# Usage: sources.sh IMAGE_DRIVER COMPARE_SCRIPT
set -euo pipefail
driver=$1
compare=$2
for tool in umoci skopeo python3; do
  command -v $tool >/dev/null || { echo "missing $tool (tests/deps/image.apt)"; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-image-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
fails=0
pass() { echo "ok - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
export SOURCE_DATE_EPOCH=1700000000

# --- the image: three layers built with umoci ---
mkdir -p l1/bin l1/etc l1/opt/old l1/data l1/usr/lib
printf '#!/bin/sh\necho hi\n' > l1/bin/app; chmod 0755 l1/bin/app
printf 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n' > l1/etc/passwd
printf 'root:x:0:\napps:x:1001:\n' > l1/etc/group
echo old > l1/opt/old/file
echo gone > l1/data/gone
echo kept > l1/data/kept
echo lib > l1/usr/lib/libx.so
ln -s /usr/lib/libx.so l1/bin/abs-link
ln l1/data/kept l1/data/kept-hardlink
chmod 4755 l1/bin/app
chown 1000:1001 l1/data/kept l1/usr/lib 2>/dev/null || true # owners must survive (as root)
mkdir -p l3/new; echo new > l3/new/file
umoci init --layout oci >/dev/null
umoci new --image oci:img >/dev/null
umoci insert --image oci:img l1 / >/dev/null
umoci insert --image oci:img --whiteout /data/gone >/dev/null
umoci insert --image oci:img --opaque l3/new /opt >/dev/null
umoci config --image oci:img --config.entrypoint app --config.cmd --flag \
  --config.env PATH=/usr/local/bin:/bin --config.env GREETING=hello \
  --config.workingdir /opt --config.user app >/dev/null
umoci unpack --image oci:img bundle >/dev/null
for d in dev proc run sys tmp var; do [ -e bundle/rootfs/$d ] || mkdir -m 0755 bundle/rootfs/$d; done

# --- oci: against umoci unpack ---
if "$driver" oci:oci:img oci.cpio > oci.out 2> oci.err && python3 "$compare" oci.cpio bundle/rootfs > cmp.out; then
  pass "oci: rootfs equals umoci unpack (files, modes, owners, links, contents)"
else
  cat oci.err cmp.out; fail "oci: rootfs equals umoci unpack"
fi
grep -q "Truncated\|umoci" oci.err && pass "umoci's truncated layers are accepted with a warning" \
  || fail "umoci's truncated layers are accepted with a warning"
grep -qx "argv=/bin/app" oci.out && grep -qx "argv=--flag" oci.out \
  && pass "argv = Entrypoint ++ Cmd with argv[0] resolved in the image PATH" || { cat oci.out; fail "argv resolution"; }
grep -qx "user=1000:1001" oci.out && grep -qx "workdir=/opt" oci.out \
  && pass "User resolved through the image's /etc/passwd and WorkingDir kept" || { cat oci.out; fail "user/workdir"; }
grep -q "not in the image's PATH" <("$driver" oci:oci:img nitro.cpio linux/amd64 nitro-cli 2>&1) \
  && pass "nitro-cli mode uses Cmd alone (and reports argv[0] not in PATH)" || fail "nitro-cli mode uses Cmd alone"

# --- the same image through every file source gives the same bytes ---
skopeo copy -q oci:oci:img oci-archive:img-oci.tar:img >/dev/null
skopeo copy -q oci:oci:img docker-archive:img-docker.tar:kiln/test:v1 >/dev/null
ref=$(sha256sum < oci.cpio)
for src in oci-archive:img-oci.tar:img oci-archive:img-oci.tar docker-archive:img-docker.tar \
           docker-archive:img-docker.tar:kiln/test:v1; do
  if "$driver" "$src" s.cpio > s.out 2> s.err && [ "$(sha256sum < s.cpio)" = "$ref" ]; then
    pass "$src gives the same rootfs bytes"
  else
    cat s.err; fail "$src gives the same rootfs bytes"
  fi
done

# --- Docker >= 25 save layout: OCI layout plus manifest.json naming blobs/sha256 paths ---
mkdir d25 && cp -r oci/blobs oci/oci-layout d25/
python3 - oci d25 <<'PY'
import json, sys, os
src, dst = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(src, "index.json")))
desc = idx["manifests"][0]
man = json.load(open(os.path.join(src, "blobs/sha256", desc["digest"][7:])))
json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [desc]}, open(os.path.join(dst, "index.json"), "w"))
json.dump([{"Config": "blobs/sha256/" + man["config"]["digest"][7:], "RepoTags": ["kiln/test:v25"],
            "Layers": ["blobs/sha256/" + l["digest"][7:] for l in man["layers"]]}],
          open(os.path.join(dst, "manifest.json"), "w"))
PY
tar -C d25 -cf img-d25.tar .
if "$driver" docker-archive:img-d25.tar:kiln/test:v25 s.cpio > s.out 2> s.err && [ "$(sha256sum < s.cpio)" = "$ref" ]; then
  pass "Docker >= 25 docker-archive layout gives the same rootfs bytes"
else
  cat s.err; fail "Docker >= 25 docker-archive layout"
fi

# --- nested index (Docker 29 / buildx): index -> index with an absent arm64 blob and an attestation ---
cp -r oci nested
python3 - nested <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
desc = json.load(open(os.path.join(d, "index.json")))["manifests"][0]
desc.pop("annotations", None)
child = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": desc["mediaType"], "digest": "sha256:" + "ab" * 32, "size": 10,
     "platform": {"architecture": "arm64", "os": "linux"}},
    dict(desc, platform={"architecture": "amd64", "os": "linux"}),
    dict(desc, platform={"architecture": "unknown", "os": "unknown"},
         annotations={"vnd.docker.reference.type": "attestation-manifest"})]}
raw = json.dumps(child).encode()
dig = hashlib.sha256(raw).hexdigest()
open(os.path.join(d, "blobs/sha256", dig), "wb").write(raw)
json.dump({"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + dig, "size": len(raw),
    "annotations": {"io.containerd.image.name": "docker.io/kiln/nested:v1",
                    "org.opencontainers.image.ref.name": "v1"}}]}, open(os.path.join(d, "index.json"), "w"))
PY
for src in oci:nested:v1 oci:nested:kiln/nested:v1; do
  if "$driver" $src s.cpio > s.out 2> s.err && [ "$(sha256sum < s.cpio)" = "$ref" ]; then
    pass "$src: nested index, absent blobs and attestations skipped"
  else cat s.err; fail "$src nested index"; fi
done
if "$driver" oci:nested:v1 s.cpio linux/arm64 > s.out 2> s.err; then fail "arm64 with absent blob"; else
  grep -q "no manifest for platform linux/arm64" s.err && pass "a platform whose blobs are absent is reported" || { cat s.err; fail "absent platform message"; }; fi

# --- determinism across directories ---
mkdir other && (cd other && "$driver" oci:../oci:img again.cpio >/dev/null 2>&1)
[ "$(sha256sum < other/again.cpio)" = "$ref" ] && pass "a second run elsewhere is byte-identical" \
  || fail "a second run elsewhere is byte-identical"

# --- determinism across users (as root: run once more as nobody) ---
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  chmod -R a+rX "$work" && mkdir -m 1777 "$work/nobody"
  if TMPDIR=$work/nobody setpriv --reuid=65534 --regid=65534 --clear-groups \
       "$driver" oci:oci:img "$work/nobody/n.cpio" >/dev/null 2>&1 &&
     [ "$(sha256sum < nobody/n.cpio)" = "$ref" ]; then
    pass "a run as another user (nobody) is byte-identical"
  else fail "a run as another user (nobody) is byte-identical"; fi
fi

# --- dir: source ---
if "$driver" dir:l3 d.cpio > d.out 2> d.err; then fail "dir: without /enclave/cmd needs a command"; else
  grep -q "no Entrypoint or Cmd" d.err && pass "image with no Entrypoint/Cmd is refused" || { cat d.err; fail "no cmd message"; }
fi

# --- bad input ---
expect_error() { # name pattern source [platform]
  local name=$1 pattern=$2; shift 2
  if "$driver" "$@" bad.cpio > /dev/null 2> bad.err; then fail "$name (succeeded)"; 
  elif grep -q -- "$pattern" bad.err; then pass "$name"; else cat bad.err; fail "$name"; fi
}
expect_error "manifest for another platform only is refused" "not linux/arm64" oci:oci:img bad.cpio linux/arm64
cp -r oci oci-bad
layer=$(python3 -c "import json;i=json.load(open('oci-bad/index.json'));m=json.load(open('oci-bad/blobs/sha256/'+i['manifests'][0]['digest'][7:]));print(m['layers'][-1]['digest'][7:])")
chmod u+w oci-bad/blobs/sha256/$layer; printf 'X' | dd of=oci-bad/blobs/sha256/$layer bs=1 seek=40 conv=notrunc 2>/dev/null
expect_error "layer digest mismatch is refused naming the layer" "sha256:$layer" oci:oci-bad:img
expect_error "unknown tag is refused" 'no image named "nope"' oci:oci:nope
expect_error "missing archive is refused" "cannot open image archive" docker-archive:missing.tar
expect_error "source without transport is refused" "has no transport" just-a-name

echo "$fails failure(s)"
[ $fails -eq 0 ]
