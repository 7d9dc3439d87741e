#!/usr/bin/env bash
# EIF assembly benchmark: a kernel plus a 1 GiB application ramdisk (SIZE_MIB to change it).
# Peers, run interleaved in every round (the machine may be shared: compare within a round):
#   openssl       `openssl dgst -sha384` of the same files (one SHA-384 pass, nothing written)
#   floor         bench/eif-floor.c: the work any EIF writer must do and nothing else (both
#                 SHA-384 streams at once on two threads, CRC-32, the write, fsync), no EIF logic
#   tee+openssl   the bytes hashed once and written durably through `tee` + sync
# and once, the independent Python reference writer (tests/eif/reference_eif.py).
# With KILN_BASELINE=<another kiln binary> (e.g. one built from an older commit) it runs too, in
# every round, for a before/after ratio.
# Prints wall times, ratios per round and their medians, peak RSS (GNU time), and kiln's -v
# breakdown of where each of its threads worked and waited.
# Usage: [KILN_BASELINE=OLD_KILN] bench/eif-bench.sh [KILN_BINARY] [SIZE_MIB] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$root/build/release/bin/kiln}
size=${2:-1024}
rounds=${3:-3}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kiln-eif-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || { echo "install GNU time: apt-get install time" >&2; exit 1; }
cc -O2 -pthread -o "$work/eif-floor" "$root/bench/eif-floor.c" -lcrypto -ldeflate

head -c $((12 * 1024 * 1024)) /dev/urandom > "$work/bzImage"
head -c $((1024 * 1024)) /dev/urandom > "$work/bootstrap.cpio"
dd if=/dev/urandom of="$work/app.cpio" bs=1M count="$size" status=none
printf 'console=ttyS0' > "$work/cmdline"
printf '{}' > "$work/meta.json"
inputs=("$work/bzImage" "$work/bootstrap.cpio" "$work/app.cpio")
cat "${inputs[@]}" > /dev/null   # warm the page cache for every contender

measure() { # label, command...: prints "seconds rss_kib"; output files are removed first
  local label=$1
  shift
  rm -f "$work/out.bin" "$work/kiln.eif"
  sync
  /usr/bin/time -f "%e %M" -o "$work/$label.time" "$@" > /dev/null 2> "$work/$label.err"
  cat "$work/$label.time"
}

total=$((size + 13))
echo "input: $total MiB (12 MiB kernel, 1 MiB bootstrap, $size MiB application ramdisk), $rounds rounds"
baseline=${KILN_BASELINE:-}
printf '%-6s %8s %8s %8s %12s %9s   %s\n' round kiln floor openssl tee+openssl baseline \
  "kiln/openssl kiln/floor baseline/kiln"
for r in $(seq 1 "$rounds"); do
  read -r k_s k_rss < <(measure kiln "$kiln" -v eif-build --kernel "$work/bzImage" --cmdline console=ttyS0 \
    --ramdisk "$work/bootstrap.cpio" --ramdisk "$work/app.cpio" --output "$work/kiln.eif")
  read -r f_s f_rss < <(measure floor "$work/eif-floor" "$work/out.bin" "${inputs[@]}")
  read -r o_s o_rss < <(measure openssl openssl dgst -sha384 "${inputs[@]}")
  read -r t_s t_rss < <(measure tee sh -c "cat ${inputs[*]} | tee '$work/out.bin' | openssl dgst -sha384 \
    && sync '$work/out.bin'")
  b_s=0
  if [ -n "$baseline" ]; then
    read -r b_s _ < <(measure baseline "$baseline" eif-build --kernel "$work/bzImage" --cmdline console=ttyS0 \
      --ramdisk "$work/bootstrap.cpio" --ramdisk "$work/app.cpio" --output "$work/kiln.eif")
  fi
  awk -v r="$r" -v k="$k_s" -v f="$f_s" -v o="$o_s" -v t="$t_s" -v b="$b_s" \
    'BEGIN { printf "%-6s %7.2fs %7.2fs %7.2fs %11.2fs %8.2fs   %.2fx        %.2fx       %.2fx\n",
             r, k, f, o, t, b, o / k, f / k, b / k }' \
    | tee -a "$work/rounds"
done
read -r p_s p_rss < <(measure python python3 "$root/tests/eif/reference_eif.py" write "$work/ref.eif" \
  "$work/bzImage" "$work/cmdline" "$work/meta.json" "$work/bootstrap.cpio" "$work/app.cpio")
awk -v ps="$p_s" -v pr="$p_rss" -v kr="$k_rss" -v fr="$f_rss" -v total="$total" '
  { k[NR] = $2 + 0; ko[NR] = $7 + 0; kf[NR] = $8 + 0; bk[NR] = $9 + 0 }
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    n = NR
    printf "median: kiln/openssl %.2fx, kiln/floor %.2fx, baseline/kiln %.2fx; kiln %.0f MiB/s\n",
      median(ko, n), median(kf, n), median(bk, n), total / median(k, n)
    printf "peak RSS: kiln %.1f MiB, floor %.1f MiB, python reference %.1f MiB (%.2f s, kiln %.1fx faster)\n",
      kr / 1024, fr / 1024, pr / 1024, ps, ps / median(k, n)
  }' "$work/rounds"
echo "kiln's threads in the last round (eif-build -v):"
sed 's/^/  /' "$work/kiln.err"
