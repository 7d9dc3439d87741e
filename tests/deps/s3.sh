#!/bin/bash
# Installs the npm S3 server the upload tests use (@20minutes/s3rver, pinned by
# tests/s3/package-lock.json) into build/node/node_modules. Node.js and npm come with the machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dest="${KILN_NODE_DIR:-$top/build/node}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "tests/deps/s3.sh: node and npm are needed for the s3rver tests (Node.js >= 20)" >&2
  exit 1
fi
mkdir -p "$dest"
if cmp -s "$top/tests/s3/package-lock.json" "$dest/package-lock.json" &&
  [ -e "$dest/node_modules/@20minutes/s3rver/lib/cli.js" ]; then
  exit 0
fi
cp "$top/tests/s3/package.json" "$top/tests/s3/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "s3rver installed in $dest/node_modules"
