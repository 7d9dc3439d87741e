#!/bin/bash
# Installs the independent IAM evaluator the policy tests use (@cloud-copilot/iam-simulate, AGPL:
# a test-time tool, never shipped or vendored; pinned by tests/policy/package-lock.json) into
# build/node-policy/node_modules. Node.js and npm come with the machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dest="${KILN_POLICY_NODE_DIR:-$top/build/node-policy}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "tests/deps/policy.sh: node and npm are needed for the policy tests (Node.js >= 20)" >&2
  exit 1
fi
mkdir -p "$dest"
if cmp -s "$top/tests/policy/package-lock.json" "$dest/package-lock.json" &&
  [ -e "$dest/node_modules/@cloud-copilot/iam-simulate/package.json" ]; then
  exit 0
fi
cp "$top/tests/policy/package.json" "$top/tests/policy/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "iam-simulate installed in $dest/node_modules"
