#!/bin/bash
# Installs the npm S3 server the upload tests use (@20minutes/s3rver, pinned by
# tests/s3/package-lock.json) into build/node/node_modules.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
exec bash "$top/tests/lib/npm_install.sh" s3rver "$top/tests/s3" "${KILN_NODE_DIR:-$top/build/node}" \
  @20minutes/s3rver/lib/cli.js
