#!/bin/bash
# Benchmark of the Dockerfile build context: kiln's deterministic, .dockerignore-filtered,
# hashed context tar versus the shell peer `tar --sort=name --mtime=@0 --owner=0 --group=0
# --numeric-owner --exclude-from=.dockerignore -cf - . | sha256sum` (GNU tar's excludes are not
# Docker's rules, but it reads and writes the same bytes). kiln is timed through `kiln build`
# with DOCKER_HOST pointing at no daemon: the step that makes and hashes the context runs, then
# the build stops at the missing daemon. Prints best-of-3 wall times, the ratio and peak RSS.
# Usage: bench/context-bench.sh [KILN_BINARY] [SIZE_MIB]   (default build/release/bin/kiln, 1024)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$root/build/release/bin/kiln}
size_mib=${2:-1024}
command -v /usr/bin/time >/dev/null || { echo "missing /usr/bin/time (apt-get install time)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kiln-context-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
app=$work/app
echo "preparing a $size_mib MiB context: 4 large files and 20000 small ones (not timed)..."
mkdir -p "$app/data" "$app/src" "$app/node_modules/x"
for b in 1 2 3 4; do head -c $((size_mib * 1024 * 1024 / 4)) /dev/urandom > "$app/data/blob$b"; done
python3 - "$app/src" <<'PY'
import os, sys
for i in range(20000):
    d = os.path.join(sys.argv[1], f"d{i // 500}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.c"), "w") as f:
        f.write(f"int f{i}(void) {{ return {i}; }}\n" * 8)
PY
head -c $((64 * 1024 * 1024)) /dev/urandom > "$app/node_modules/x/ignored.bin"
printf 'node_modules\n*.log\n' > "$app/.dockerignore"
printf 'FROM scratch\nCOPY . /app\nCMD ["/app/run"]\n' > "$app/Dockerfile"
printf '{"name": "bench", "image": {"build": "."}}\n' > "$app/kiln.json"
cat "$app"/data/* > /dev/null  # warm the page cache for both sides

best() { sort -n | head -1; }
kiln_times=() peer_times=()
for i in 1 2 3; do
  rm -rf "$work/cache"
  DOCKER_HOST=unix://$work/no-daemon.sock KILN_CACHE_DIR=$work/cache \
    /usr/bin/time -f "%e %M" -o "$work/k.time" "$kiln" -C "$app" build > /dev/null 2> "$work/k.err" || true
  grep -q "build context" "$work/k.err" || { cat "$work/k.err"; exit 1; }
  kiln_times+=("$(tail -1 "$work/k.time")")
  (cd "$app" && /usr/bin/time -f "%e %M" -o "$work/p.time" sh -c \
    'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --exclude-from=.dockerignore -cf - . | sha256sum > /dev/null')
  peer_times+=("$(tail -1 "$work/p.time")")
done
grep "build context" "$work/k.err"
k=$(printf '%s\n' "${kiln_times[@]}" | best) p=$(printf '%s\n' "${peer_times[@]}" | best)
echo "kiln (context tar + sha256 to disk): ${k% *} s, peak RSS $(( ${k#* } / 1024 )) MiB"
echo "peer (GNU tar | sha256sum, no disk):  ${p% *} s"
awk -v k="${k% *}" -v p="${p% *}" 'BEGIN { printf "ratio peer/kiln: %.2fx\n", p / k }'
