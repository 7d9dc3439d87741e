#!/bin/bash
# Installs a test-time npm tool pinned by a package-lock.json of ours into a local node_modules
# (never shipped or vendored), once: nothing is done while DEST's lock equals ours and MARKER
# exists. Node.js and npm come with the machine.
# Usage: npm_install.sh WHAT PACKAGE_DIR DEST MARKER   (MARKER relative to DEST/node_modules)
set -euo pipefail
what=$1 package_dir=$2 dest=$3 marker=$4
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm are needed for the tests that use $what (Node.js >= 20)" >&2
  exit 1
fi
mkdir -p "$dest"
if cmp -s "$package_dir/package-lock.json" "$dest/package-lock.json" &&
  [ -e "$dest/node_modules/$marker" ]; then
  exit 0
fi
cp "$package_dir/package.json" "$package_dir/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "$what installed in $dest/node_modules"
