#!/bin/sh
# Fuzz smoke run of the EIF reader: seed corpus = small EIFs made by `kiln eif-build` (1 and 3
# ramdisks), then libFuzzer for SECONDS seconds. KILN_FUZZ_CORPUS=DIR keeps the corpus in DIR
# (long campaigns). Usage: run-fuzz-smoke.sh KILN FUZZER SECONDS
set -eu
kiln=$1
fuzzer=$2
seconds=$3
work=$(mktemp -d /tmp/kiln-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
corpus=${KILN_FUZZ_CORPUS:-$work/corpus}
mkdir -p "$corpus"
printf 'KERNEL' > "$work/k"
printf 'boot' > "$work/r1"
printf 'application' > "$work/r2"
: > "$work/r3"
"$kiln" eif-build --kernel "$work/k" --cmdline "console=ttyS0" --ramdisk "$work/r1" \
  --output "$corpus/one.eif" >/dev/null
"$kiln" eif-build --kernel "$work/k" --cmdline "" --ramdisk "$work/r1" --ramdisk "$work/r2" \
  --ramdisk "$work/r3" --output "$corpus/three.eif" >/dev/null
"$fuzzer" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "$corpus"
