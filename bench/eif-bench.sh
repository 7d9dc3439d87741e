#!/usr/bin/env bash
# EIF assembly benchmark: a kernel plus a 1 GiB application ramdisk (SIZE_MIB to change it).
# Peers in the same run: `openssl dgst -sha384` over the same bytes (one SHA-384 pass, nothing
# written), the same piped through `tee` to a file that is synced (one hash pass + a durable
# write: what any EIF writer must at least do), and the independent Python reference writer
# (tests/eif/reference_eif.py).
# Prints wall time, throughput relative to openssl, and peak RSS (GNU time).
# Usage: bench/eif-bench.sh [KILN_BINARY] [SIZE_MIB]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${1:-$root/build/release/bin/kiln}
size=${2:-1024}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kiln-eif-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || { echo "install GNU time: apt-get install time" >&2; exit 1; }

head -c $((12 * 1024 * 1024)) /dev/urandom > "$work/bzImage"
head -c $((1024 * 1024)) /dev/urandom > "$work/bootstrap.cpio"
dd if=/dev/urandom of="$work/app.cpio" bs=1M count="$size" status=none
printf 'console=ttyS0' > "$work/cmdline"
printf '{}' > "$work/meta.json"
cat "$work"/*.cpio "$work/bzImage" > /dev/null   # warm the page cache for every contender

measure() { # label, command...: prints "seconds rss_kib"
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/$label.time" "$@" > /dev/null
  cat "$work/$label.time"
}
read -r k_s k_rss < <(measure kiln "$kiln" eif-build --kernel "$work/bzImage" --cmdline console=ttyS0 \
  --ramdisk "$work/bootstrap.cpio" --ramdisk "$work/app.cpio" --output "$work/kiln.eif")
read -r o_s o_rss < <(measure openssl sh -c "cat '$work/bzImage' '$work/bootstrap.cpio' '$work/app.cpio' | openssl dgst -sha384")
# The same bytes hashed once and written durably, as an EIF must be: the floor on this disk.
read -r t_s t_rss < <(measure tee-openssl sh -c "cat '$work/bzImage' '$work/bootstrap.cpio' '$work/app.cpio' \
  | tee '$work/copy.bin' | openssl dgst -sha384 && sync '$work/copy.bin'")
rm -f "$work/copy.bin"
read -r p_s p_rss < <(measure python python3 "$root/tests/eif/reference_eif.py" write "$work/ref.eif" \
  "$work/bzImage" "$work/cmdline" "$work/meta.json" "$work/bootstrap.cpio" "$work/app.cpio")
awk -v ks="$k_s" -v kr="$k_rss" -v os="$o_s" -v or="$o_rss" -v ts="$t_s" -v tr="$t_rss" \
  -v ps="$p_s" -v pr="$p_rss" -v mib="$size" 'BEGIN {
  total = mib + 13
  printf "input: %d MiB (12 MiB kernel, 1 MiB bootstrap, %d MiB application ramdisk)\n", total, mib
  printf "kiln eif-build:        %7.2f s  %7.0f MiB/s  peak RSS %6.1f MiB\n", ks, total / ks, kr / 1024
  printf "openssl dgst -sha384:  %7.2f s  %7.0f MiB/s  peak RSS %6.1f MiB\n", os, total / os, or / 1024
  printf "tee + openssl + sync:  %7.2f s  %7.0f MiB/s  peak RSS %6.1f MiB\n", ts, total / ts, tr / 1024
  printf "python reference:      %7.2f s  %7.0f MiB/s  peak RSS %6.1f MiB\n", ps, total / ps, pr / 1024
  printf "kiln throughput / openssl: %.2fx   / tee+openssl+sync (hash once, write durably): %.2fx\n", os / ks, ts / ks
  printf "kiln vs python reference: %.1fx faster\n", ps / ks
}'
