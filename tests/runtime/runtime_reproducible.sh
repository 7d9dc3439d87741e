#!/bin/sh
# kiln-agent and kiln-host built twice, from copies of their source in two directories with
# different umasks, must be byte-identical. Usage: runtime_reproducible.sh CC RUNTIME_SOURCE_DIR
# [--cross]  (--cross: CC builds for another architecture, so the programs are not run here)
set -eu
cc=$1
src=$2
cross=${3:-}
a=$(mktemp -d /tmp/kiln-rt-a.XXXXXX)
b=$(mktemp -d /var/tmp/kiln-rt-build-b.XXXXXX)
trap 'rm -rf "$a" "$b"' EXIT
cp "$src"/*.c "$src"/*.h "$src/build-runtime.sh" "$a/"
cp "$src"/*.c "$src"/*.h "$src/build-runtime.sh" "$b/"
(cd "$a" && umask 022 && sh ./build-runtime.sh "$cc" . "$a/kiln-agent" "$a/kiln-host" 2>/dev/null)
(cd / && umask 077 && sh "$b/build-runtime.sh" "$cc" "$b" "$b/kiln-agent" "$b/kiln-host" 2>/dev/null)
for p in kiln-agent kiln-host; do
  if ! cmp "$a/$p" "$b/$p"; then
    echo "$p differs between build directories" >&2
    exit 1
  fi
  echo "$p is byte-identical across directories ($(wc -c < "$a/$p") bytes, sha256 $(sha256sum < "$a/$p" | cut -c1-16))"
done
if [ "$cross" = --cross ]; then
  for p in kiln-host kiln-agent; do # ELF e_machine 183: aarch64
    [ "$(od -An -t u2 -j 18 -N 2 "$a/$p" | tr -d ' ')" = 183 ] || { echo "$p is not aarch64" >&2; exit 1; }
  done
else
  "$a/kiln-host" --help | grep -q "Usage: kiln-host"
  "$a/kiln-agent" --help | grep -q "Usage: kiln-agent"
fi
