#!/usr/bin/env bash
# Browser tests of the Test UI of `durable serve` (issue 19): headless
# Chromium (Debian's chromium package, installed here if missing) driven by
# playwright-core from npm, against `durable serve` and the Node reference
# server. Installs the pinned npm packages, .ci/ui/ and the reference-server
# script of .ci/interop/ into a temporary directory, builds durable, runs
# .ci/ui/stream.test.mjs (the page's protocol module in Node) and
# .ci/ui/ui.test.mjs (the page in the browser) with node's test runner, and
# keeps the screenshots in .ci/artifacts/ui/ (git-ignored). The tests start
# and stop every child process themselves.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

PLAYWRIGHT_VERSION=1.65.2
SERVER_VERSION=0.3.7
chromium=/usr/bin/chromium
artifacts="$root/.ci/artifacts/ui"

if [ ! -x "$chromium" ]; then
  echo "-- install chromium (Debian package)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium >/dev/null
fi
echo "-- $("$chromium" --version 2>/dev/null | head -n1)"

node_bin=$(command -v node) || { echo "ui: node not found on PATH"; exit 1; }
echo "-- node $("$node_bin" --version)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "-- build durable"
go build -o "$work/durable" ./cmd/durable

echo "-- install playwright-core@$PLAYWRIGHT_VERSION @durable-streams/server@$SERVER_VERSION into $work"
cp "$root"/.ci/ui/*.mjs "$root"/.ci/interop/node-server.mjs "$work"/
mkdir "$work/static"
cp "$root"/cmd/durable/ui/static/*.js "$work/static/"
(
  cd "$work"
  printf '{"name":"durable-ui-tests","private":true,"type":"module"}\n' > package.json
  npm install --no-audit --no-fund --loglevel=error \
    "playwright-core@$PLAYWRIGHT_VERSION" "@durable-streams/server@$SERVER_VERSION" >/dev/null
)

rm -rf "$artifacts"
mkdir -p "$artifacts"
echo "-- node --test stream.test.mjs ui.test.mjs"
set +e
(
  cd "$work"
  DURABLE_UI_BIN="$work/durable" DURABLE_UI_ARTIFACTS="$artifacts" DURABLE_UI_CHROMIUM="$chromium" \
    timeout 300 "$node_bin" --test --test-reporter=spec stream.test.mjs ui.test.mjs
) >"$work/test.log" 2>&1
status=$?
set -e
cat "$work/test.log"
count() { sed -nE "s/^ℹ $1 ([0-9]+)$/\1/p" "$work/test.log" | tail -n1; }
passed=$(count pass); failed=$(count fail); skipped=$(( $(count skipped || echo 0) + $(count todo || echo 0) + $(count cancelled || echo 0) ))
passed=${passed:-0}; failed=${failed:-0}
echo "ui: $passed passed, $failed failed, $skipped skipped; screenshots in $artifacts"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$skipped" -ne 0 ] || [ "$passed" -eq 0 ]; then
  echo "ui FAILED"
  exit 1
fi
