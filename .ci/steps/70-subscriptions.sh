#!/usr/bin/env bash
# Subscriptions across processes (issue 15): the subscription package's
# process tests, behind the subprocess build tag. Worker PROCESSES share one
# subscription over 50 streams while 20,000 messages are appended, against
# durable serve --subscriptions and the Node reference server
# (@durable-streams/server), calm and with 20+ SIGKILLs and a SIGSTOP past the
# lease; the webhook Receiver against both servers' signed deliveries.
# Installs the pinned server package and .ci/interop/node-server.mjs into a
# temporary directory, builds durable, and runs the tests; they start and stop
# every child process themselves.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

SERVER_VERSION=0.3.7

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

node_bin=$(command -v node) || { echo "subscriptions: node not found on PATH"; exit 1; }

echo "-- build durable"
go build -o "$work/durable" ./cmd/durable

echo "-- install @durable-streams/server@$SERVER_VERSION into $work"
cp "$root"/.ci/interop/node-server.mjs "$work"/
(
  cd "$work"
  printf '{"name":"durable-subscriptions","private":true,"type":"module"}\n' > package.json
  npm install --no-audit --no-fund --loglevel=error "@durable-streams/server@$SERVER_VERSION" >/dev/null
)

echo "-- go test -race -tags subprocess -run TestProcess ./subscription/"
set +e
DURABLE_INTEROP_DIR="$work" DURABLE_INTEROP_NODE="$node_bin" DURABLE_INTEROP_DURABLE="$work/durable" \
  go test -race -count=1 -timeout 8m -tags subprocess -run '^TestProcess' ./subscription/ -v >"$work/test.log" 2>&1
status=$?
set -e
grep -E '^\s*--- (PASS|FAIL|SKIP)|process_[a-z]+_test.go:[0-9]+: \[|^(PASS|FAIL|ok|panic)' "$work/test.log" || true
failed=$(grep -cE -- '--- FAIL' "$work/test.log" || true)
skipped=$(grep -cE -- '--- SKIP' "$work/test.log" || true)
passed=$(grep -cE -- '--- PASS' "$work/test.log" || true)
echo "subscriptions: $passed passed, $failed failed, $skipped skipped (tests and subtests)"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$skipped" -ne 0 ] || [ "$passed" -eq 0 ]; then
  grep -vE '^=== (RUN|PAUSE|CONT|NAME)' "$work/test.log" | tail -200
  echo "subscriptions FAILED"
  exit 1
fi
