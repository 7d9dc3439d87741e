#!/bin/sh
# Build kiln-init with fixed flags so the binary is byte-reproducible: static, no build id, no
# source paths (file-prefix-map), stripped. Usage: build-init.sh CC SOURCE_DIR OUTPUT
set -eu
cc=$1
src=$(cd "$2" && pwd)
out=$3
cd "$src"
"$cc" -std=c11 -Os -static -s -Wall -Wextra -Werror \
  -ffile-prefix-map="$src"=. -fno-ident \
  -Wl,--build-id=none \
  -o "$out.tmp" init.c agent.c app.c
mv "$out.tmp" "$out"
