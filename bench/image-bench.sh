#!/bin/bash
# Benchmark of the image stage: a ~1 GiB, 5-layer OCI image (made with umoci) turned into a newc
# cpio by `kiln image` versus the usual peer pipeline `umoci unpack` + `find | sort | cpio -o -H
# newc`, on the same input, in one run. Prints wall times, the ratio and both peak RSS values.
# Usage: bench/image-bench.sh [KILN_BINARY] [SIZE_MIB]   (default build/release/bin/kiln, 1024)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$root/build/release/bin/kiln}
size_mib=${2:-1024}
for tool in umoci cpio /usr/bin/time; do
  command -v $tool >/dev/null || { echo "missing $tool (apt-get install umoci cpio time)"; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kiln-image-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
per_layer=$((size_mib / 5))
echo "preparing a $size_mib MiB image in 5 layers (not timed)..."
umoci init --layout oci >/dev/null
umoci new --image oci:img >/dev/null
for l in 1 2 3 4 5; do
  mkdir -p layer$l/usr/share/l$l layer$l/opt/big$l
  # half in many small files (like a distribution), half in a few large ones (like an app)
  small=$((per_layer * 1024 / 2 / 16))   # 16 KiB files
  python3 - "$l" "$small" <<'PY'
import os, sys
l, n = sys.argv[1], int(sys.argv[2])
base = f"layer{l}/usr/share/l{l}"
seed = os.urandom(4096)
for i in range(n):
    d = os.path.join(base, f"d{i // 500}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write((seed + i.to_bytes(8, "little")) * 4)
PY
  for b in 1 2 3 4; do
    head -c $((per_layer * 1024 * 1024 / 2 / 4)) /dev/urandom > layer$l/opt/big$l/blob$b
  done
  [ $l -gt 1 ] && rm -rf layer$l/usr/share/l$l/d0 && mkdir -p layer$l/usr/share/l$((l - 1))
  umoci insert --image oci:img layer$l / >/dev/null
  rm -rf layer$l
done
umoci config --image oci:img --config.entrypoint /bin/sh >/dev/null || true
mkdir -p bin && cp /bin/sh bin/sh 2>/dev/null || true
umoci insert --image oci:img bin /bin >/dev/null
du -sh oci | sed 's/^/OCI layout size: /'
sync

measure() { # label command...; prints "seconds maxrss_kib"
  local label=$1; shift
  /usr/bin/time -v -o "$label.time" "$@" > "$label.log" 2>&1 || { cat "$label.log"; exit 1; }
  local secs rss
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$label.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$label.time")
  echo "$secs $rss"
}

export KILN_CACHE_DIR=$work/cache SOURCE_DATE_EPOCH=0
read -r kiln_s kiln_rss < <(measure kiln "$kiln" --no-cache image oci:oci:img -o kiln.cpio)
rm -rf cache
read -r peer_s peer_rss < <(measure peer bash -c \
  'umoci unpack --image oci:img bundle >/dev/null && cd bundle/rootfs && find . | LC_ALL=C sort | cpio -o -H newc --quiet > ../../peer.cpio')
echo
awk -v ks="$kiln_s" -v kr="$kiln_rss" -v ps="$peer_s" -v pr="$peer_rss" \
    -v kb="$(stat -c %s kiln.cpio)" -v pb="$(stat -c %s peer.cpio)" 'BEGIN {
  printf "kiln image:                     %8.2f s  peak RSS %7.1f MiB  (%d bytes)\n", ks, kr / 1024, kb
  printf "umoci unpack + find|sort|cpio:  %8.2f s  peak RSS %7.1f MiB  (%d bytes)\n", ps, pr / 1024, pb
  printf "ratio (peer time / kiln time):  %8.2fx\n", ps / ks
}'
