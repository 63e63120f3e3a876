#!/usr/bin/env bash
# Fails when proto/gen/ is not what `npm run gen` makes from the .proto files:
# generated code is committed, so a stale copy would ship a contract that
# differs from the one in proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent gen
changes=$(git status --porcelain -- proto/gen)
if [ -n "$changes" ]; then
  echo "proto/gen is stale: run 'npm run gen' and commit the result." >&2
  echo "$changes" >&2
  git --no-pager diff --stat -- proto/gen >&2 || true
  exit 1
fi
echo "proto/gen is fresh"
