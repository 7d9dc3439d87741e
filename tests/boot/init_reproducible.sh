#!/bin/sh
# kiln-init built twice, from copies of its source in two different directories, must be
# byte-identical. Usage: init_reproducible.sh CC INIT_SOURCE_DIR
set -eu
cc=$1
src=$2
a=$(mktemp -d /tmp/kiln-init-a.XXXXXX)
b=$(mktemp -d /var/tmp/kiln-init-build-b.XXXXXX)
trap 'rm -rf "$a" "$b"' EXIT
cp "$src"/*.c "$src"/*.h "$src/build-init.sh" "$a/"
cp "$src"/*.c "$src"/*.h "$src/build-init.sh" "$b/"
(cd "$a" && umask 022 && sh ./build-init.sh "$cc" . "$a/kiln-init")
(cd / && umask 077 && sh "$b/build-init.sh" "$cc" "$b" "$b/kiln-init")
if cmp "$a/kiln-init" "$b/kiln-init"; then
  echo "kiln-init is byte-identical across directories ($(wc -c < "$a/kiln-init") bytes, sha256 $(sha256sum < "$a/kiln-init" | cut -c1-16))"
else
  echo "kiln-init differs between build directories" >&2
  exit 1
fi
