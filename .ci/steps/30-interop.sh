#!/usr/bin/env bash
# Interop with the reference implementations (issue 7): the TypeScript client
# @durable-streams/client against `durable serve`, and this SDK against the
# Node reference server @durable-streams/server. Installs the pinned npm
# packages and the scripts of .ci/interop/ into a temporary directory (ESM
# resolves node_modules relative to the script), builds durable, and runs the
# Go tests behind the interop build tag. The tests start and stop every child
# process themselves; this script only removes the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

SERVER_VERSION=0.3.7
CLIENT_VERSION=0.2.7

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

node_bin=$(command -v node) || { echo "interop: node not found on PATH"; exit 1; }
echo "-- node $("$node_bin" --version)"

echo "-- build durable"
go build -o "$work/durable" ./cmd/durable

echo "-- install @durable-streams/server@$SERVER_VERSION @durable-streams/client@$CLIENT_VERSION into $work"
cp "$root"/.ci/interop/*.mjs "$work"/
(
  cd "$work"
  printf '{"name":"durable-interop","private":true,"type":"module"}\n' > package.json
  npm install --no-audit --no-fund --loglevel=error \
    "@durable-streams/server@$SERVER_VERSION" "@durable-streams/client@$CLIENT_VERSION" >/dev/null
)

echo "-- go test -race -tags interop ./interop/..."
set +e
DURABLE_INTEROP_DIR="$work" DURABLE_INTEROP_NODE="$node_bin" DURABLE_INTEROP_DURABLE="$work/durable" \
  go test -race -count=1 -timeout 5m -tags interop ./interop/... -v >"$work/test.log" 2>&1
status=$?
set -e
grep -E '^\s*--- (PASS|FAIL|SKIP)|^(PASS|FAIL|ok|panic)' "$work/test.log" || true
passed=$(grep -cE -- '--- PASS' "$work/test.log" || true)
failed=$(grep -cE -- '--- FAIL' "$work/test.log" || true)
skipped=$(grep -cE -- '--- SKIP' "$work/test.log" || true)
echo "interop: $passed passed, $failed failed, $skipped skipped (tests and subtests)"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$skipped" -ne 0 ] || [ "$passed" -eq 0 ]; then
  grep -vE '^=== (RUN|PAUSE|CONT|NAME)' "$work/test.log"
  echo "interop FAILED"
  exit 1
fi
