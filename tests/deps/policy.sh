#!/bin/bash
# Installs the independent IAM evaluator the policy tests use (@cloud-copilot/iam-simulate, AGPL:
# a test-time tool, never shipped or vendored; pinned by tests/policy/package-lock.json) into
# build/node-policy/node_modules.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
exec bash "$top/tests/lib/npm_install.sh" iam-simulate "$top/tests/policy" \
  "${KILN_POLICY_NODE_DIR:-$top/build/node-policy}" @cloud-copilot/iam-simulate/package.json
