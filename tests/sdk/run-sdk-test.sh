#!/usr/bin/env bash
# Out-of-tree plugin test: install kiln to a temporary prefix, build tests/sdk/hello-plugin with
# find_package(kiln) and again with pkg-config, and run it as a pipeline step from a kiln.json.
set -euo pipefail
build_dir=$1
src_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/kiln-sdk-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build_dir" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/kiln" && test -f "$prefix/include/kiln/plugin.h"

# 1. CMake package
cmake -S "$src_dir/hello-plugin" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
# 2. pkg-config
mkdir -p "$work/pc-build"
PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name kiln-plugin.pc)")
export PKG_CONFIG_PATH
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags kiln-plugin) -o "$work/pc-build/hello.so" \
  "$src_dir/hello-plugin/hello.c" $(pkg-config --libs kiln-plugin)

run_with() {
  local plugin=$1 greeting=$2
  local app=$work/app-$greeting
  mkdir -p "$app"
  cat > "$app/kiln.json" <<JSON
{
  "name": "sdk-test",
  "enclave": {"cpus": 2, "memory_mib": 14336},
  "size": {"family": "m5"},
  "plugins": ["$plugin"],
  "steps": [{"after": "size", "stage": "hello", "options": {"greeting": "$greeting"}}]
}
JSON
  KILN_CACHE_DIR=$work/cache "$prefix/bin/kiln" -C "$app" plugins | grep -q "stage hello"
  KILN_CACHE_DIR=$work/cache "$prefix/bin/kiln" -C "$app" size >/dev/null
  digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stages"]["hello"]["outputs"]["greeting"])' "$app/kiln.lock")
  got=$(cat "$work/cache/artifacts/${digest#sha256:}/files/greeting.txt")
  if [ "$got" != "$greeting, m5.xlarge!" ]; then
    echo "unexpected greeting from $plugin: '$got'" >&2
    exit 1
  fi
  echo "ok: $plugin -> $got"
}
run_with "$work/cmake-build/hello.so" hi
run_with "$work/pc-build/hello.so" hey
