#!/usr/bin/env bash
# End-to-end build benchmark: a 1 GiB (SIZE_MIB), 5-layer OCI image -> EIF with `kiln build`, the
# kernel from a blobs directory (a copy: the cost of a cached kernel), against the sum of the
# floors measured in the same run, interleaved (the machine may be shared):
#   gunzip   zlib's inflate of the five layers (nothing written)
#   cpio     one durable write of the unpacked bytes (`dd conv=fsync`, like the rootfs archive)
#   sha384   two `openssl dgst -sha384` passes over the EIF's bytes (PCR0 and PCR2)
#   write    one durable write of the EIF's bytes (`dd conv=fsync`)
# Prints kiln's wall time and peak RSS, each floor, and kiln / floor sum (goal: <= 1.3x), with
# kiln's per-stage bytes read and written (-v).
# Usage: bench/build-bench.sh [KILN_BINARY] [SIZE_MIB] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$root/build/release/bin/kiln}
size=${2:-1024}
rounds=${3:-2}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kiln-build-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || { echo "install GNU time: apt-get install time" >&2; exit 1; }

# The image: an OCI layout with five gzip layers of random (incompressible) files, /bin/app in the
# last; and the app directory with a blobs kernel.
python3 - "$work" "$size" <<'EOF'
import hashlib, io, json, os, subprocess, sys, tarfile
work, size = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(work, "oci", "blobs", "sha256")
os.makedirs(blobs)
def blob(data_path=None, data=None):
    h = hashlib.sha256()
    if data is None:
        with open(data_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        os.rename(data_path, os.path.join(blobs, h.hexdigest()))
        return h.hexdigest(), os.path.getsize(os.path.join(blobs, h.hexdigest()))
    h.update(data)
    with open(os.path.join(blobs, h.hexdigest()), "wb") as f:
        f.write(data)
    return h.hexdigest(), len(data)
layers, diff_ids = [], []
for i in range(5):
    tar_path = os.path.join(work, "layer%d.tar" % i)
    with open(tar_path, "wb") as out:
        t = tarfile.open(fileobj=out, mode="w")
        info = tarfile.TarInfo("data/layer%d.bin" % i)
        info.size = (size // 5) << 20
        class Rand(io.RawIOBase):
            def readable(self):
                return True

            def readinto(self, b):
                n = len(b)
                b[:n] = os.urandom(n)
                return n
        t.addfile(info, io.BufferedReader(Rand(), 1 << 20))
        if i == 4:
            app = b"#!/bin/sh\nexec sleep infinity\n"
            ai = tarfile.TarInfo("bin/app")
            ai.size, ai.mode = len(app), 0o755
            t.addfile(ai, io.BytesIO(app))
        t.close()
    diff_ids.append("sha256:" + hashlib.sha256(open(tar_path, "rb").read()).hexdigest())
    subprocess.run(["gzip", "-1", "-n", tar_path], check=True)
    d, n = blob(tar_path + ".gz")
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + d, "size": n})
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bin/app"]},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cn = blob(data=config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": cn},
                       "layers": layers}).encode()
md, mn = blob(data=manifest)
with open(os.path.join(work, "oci", "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": "sha256:" + md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)
with open(os.path.join(work, "oci", "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}')
app = os.path.join(work, "app")
os.makedirs(os.path.join(app, "blobs"))
with open(os.path.join(app, "blobs", "bzImage"), "wb") as f:
    f.write(os.urandom(12 << 20))
with open(os.path.join(app, "blobs", "init"), "wb") as f:
    f.write(os.urandom(1 << 20))
with open(os.path.join(app, "blobs", "bzImage.config"), "w") as f:
    f.write("#\n#\n# Linux/x86 6.12.0 Kernel Configuration\n")
with open(os.path.join(app, "blobs", "cmdline"), "w") as f:
    f.write("console=ttyS0\n")
with open(os.path.join(app, "kiln.json"), "w") as f:
    json.dump({"name": "bench", "image": {"source": "oci:" + os.path.join(work, "oci") + ":bench"},
               "kernel": {"source": "blobs:blobs"}}, f)
EOF
layers=("$work"/oci/blobs/sha256/*)
cat "${layers[@]}" > /dev/null

measure() { # label, command...: prints "seconds rss_kib"
  local label=$1
  shift
  rm -f "$work/out.bin"
  sync
  /usr/bin/time -f "%e %M" -o "$work/$label.time" "$@" > /dev/null 2> "$work/$label.err"
  cat "$work/$label.time"
}

# zlib's inflate (what libarchive uses; GNU gzip's own is slower), 1 MiB at a time, nothing kept.
gunzip_floor='
import sys, zlib
for name in sys.argv[1:]:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with open(name, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            d.decompress(chunk)
'

# kiln once untimed: the unpacked bytes and the EIF the floors need (and a warm page cache).
KILN_CACHE_DIR="$work/cache" "$kiln" -C "$work/app" build -o "$work/ref.eif" > /dev/null 2>&1
gzip -dc $(ls -S "$work"/oci/blobs/sha256/* | head -5) > "$work/unpacked.bin"

echo "image: $size MiB in 5 gzip layers; kernel from blobs (12 MiB); $rounds rounds"
printf '%-6s %8s %8s %8s %8s %8s %9s   %s\n' round kiln gunzip cpio sha384x2 write "floor sum" "kiln/floor sum"
for r in $(seq 1 "$rounds"); do
  read -r k_s k_rss < <(measure kiln env KILN_CACHE_DIR="$work/cache" "$kiln" -C "$work/app" -v build \
    --no-cache -o "$work/out.eif")
  read -r g_s _ < <(measure gunzip python3 -c "$gunzip_floor" $(ls -S "$work"/oci/blobs/sha256/* | head -5))
  read -r c_s _ < <(measure cpio dd if="$work/unpacked.bin" of="$work/out.bin" bs=4M conv=fsync status=none)
  read -r s1 _ < <(measure sha1 openssl dgst -sha384 "$work/ref.eif")
  read -r s2 _ < <(measure sha2 openssl dgst -sha384 "$work/ref.eif")
  read -r w_s _ < <(measure write dd if="$work/ref.eif" of="$work/out.bin" bs=4M conv=fsync status=none)
  awk -v r="$r" -v k="$k_s" -v g="$g_s" -v c="$c_s" -v s1="$s1" -v s2="$s2" -v w="$w_s" 'BEGIN {
    f = g + c + s1 + s2 + w
    printf "%-6s %7.2fs %7.2fs %7.2fs %7.2fs %7.2fs %8.2fs   %.2fx\n", r, k, g, c, s1 + s2, w, f, k / f }'
done
echo "kiln peak RSS: $(awk -v k="$k_rss" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
echo "kiln's stages in the last round (-v):"
grep -E "read .* wrote|cached|eif-build" "$work/kiln.err" | sed 's/^/  /'
