#!/usr/bin/env bash
# Runs the public Durable Streams server conformance suite
# (@durable-streams/server-conformance-tests, pinned) against
# `durable serve --subscriptions`, with the suite's subscription cases on
# (its webhook receivers listen on 127.0.0.1, hence
# --allow-loopback-webhooks). The suite's CLI finds no tests when installed
# from npm, so a small vitest file (.ci/conformance/) calls
# runConformanceTests({ baseUrl, subscriptions: true }).
# Fails on any failing or skipped case; always stops the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

SUITE_VERSION=0.3.6
VITEST_VERSION=4.1.12

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "-- build durable"
go build -o "$work/durable" ./cmd/durable

echo "-- install conformance suite $SUITE_VERSION into $work"
cp "$root"/.ci/conformance/conformance.test.mjs "$root"/.ci/conformance/vitest.config.mjs "$work"/
(
  cd "$work"
  printf '{"name":"durable-conformance","private":true,"type":"module"}\n' > package.json
  npm install --no-audit --no-fund --loglevel=error \
    "@durable-streams/server-conformance-tests@$SUITE_VERSION" "vitest@$VITEST_VERSION" >/dev/null
)

echo "-- start durable serve"
"$work/durable" serve --addr 127.0.0.1:0 --long-poll-timeout 2s --subscriptions --allow-loopback-webhooks >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
base=""
for _ in $(seq 100); do
  base=$(head -n1 "$work/serve.out" 2>/dev/null || true)
  [ -n "$base" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/serve.err"; exit 1; fi
  sleep 0.1
done
[ -n "$base" ] || { echo "durable serve printed no URL"; cat "$work/serve.err"; exit 1; }
echo "   serving on $base"

echo "-- run conformance suite"
set +e
(cd "$work" && DURABLE_BASE_URL="$base" DURABLE_LONG_POLL_MS=2000 DURABLE_SUBSCRIPTIONS=1 \
  npx vitest run --config vitest.config.mjs --reporter=default --reporter=json --outputFile="$work/result.json" \
  >"$work/vitest.log" 2>&1)
status=$?
set -e
sed 's/\x1b\[[0-9;]*m//g' "$work/vitest.log" | grep -E '^ (FAIL|×)|Tests ' || true
node -e '
  const r = require(process.argv[1]);
  console.log(`conformance: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped, ${r.numTotalTests} total`);
  const skipped = r.numPendingTests + r.numTodoTests;
  process.exit(r.numFailedTests === 0 && skipped === 0 && r.numPassedTests > 0 ? 0 : 1);
' "$work/result.json" || status=1
if [ "$status" -ne 0 ]; then
  sed 's/\x1b\[[0-9;]*m//g' "$work/vitest.log" | tail -n 80
  echo "conformance FAILED"
  exit 1
fi
