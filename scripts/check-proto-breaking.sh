#!/usr/bin/env bash
# Fails when the keyfleet.v1 contract changes incompatibly (buf's FILE rules)
# since its first commit: load-balancer teams generate clients from it, so v1
# may grow but never break. Needs the repository's history: in a shallow
# clone it says so and checks nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(git rev-parse --is-shallow-repository)" = "true" ]; then
  echo "WARNING: shallow clone, keyfleet.v1 compatibility NOT checked (fetch full history to check)" >&2
  exit 0
fi
base=$(git log --diff-filter=A --format=%H -- proto/keyfleet/v1/common.proto | tail -n 1)
cd proto
npx buf breaking --against "../.git#ref=${base},subdir=proto"
echo "keyfleet.v1 is compatible with its first version (${base:0:8})"
