#!/usr/bin/env bash
# Postgres store (offsetstore/pgstore, a nested module with its own go.mod):
# starts the machine's Postgres cluster if it is not running and waits for
# it, then gofmt, go vet, staticcheck and `go test -race ./...` in the
# module; then, in a go test of its own once every other test is done, the
# test that restarts Postgres under load (build tag pgrestart): while it
# restarts the database no other test may use it, and `go test ./...` runs
# packages in parallel. CI's machine is its own; never run that tag on a
# shared machine without warning. The replica kill test runs for
# PGSTORE_REPLICA_DURATION (20s here; 60s is its default by hand). A test
# that skips fails the step, and so does a restart test that did not run.
# DATABASE_URL defaults to the local test database.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$(go env GOPATH)/bin:$PATH"

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p 5432

cd offsetstore/pgstore
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "not gofmt-formatted:"; echo "$unformatted"; exit 1; fi
go vet ./...
go vet -tags pgrestart ./...
staticcheck ./...
staticcheck -tags pgrestart ./...

log=$(mktemp)
restartlog=$(mktemp)
trap 'rm -f "$log" "$restartlog"' EXIT
# summary FILE: the results, the crash tests' figures, failures.
summary() {
  grep -E '^(ok|FAIL|---|panic)|^\s+--- (FAIL|SKIP)|takeover|kills|writer B|lease tenures|Error' "$1" || true
}

status=0
PGSTORE_REPLICA_DURATION=${PGSTORE_REPLICA_DURATION:-20s} \
  go test -race -count=1 -v -timeout 15m ./... >"$log" 2>&1 || status=$?
summary "$log"
if [ "$status" -ne 0 ]; then
  echo "go test failed; full output:"; cat "$log"; exit "$status"
fi

echo "-- Postgres restarted under load (alone)"
go test -race -tags pgrestart -count=1 -v -timeout 10m -run '^TestSinkSurvivesPostgresRestart$' . >"$restartlog" 2>&1 || status=$?
summary "$restartlog"
if [ "$status" -ne 0 ]; then
  echo "go test -tags pgrestart failed; full output:"; cat "$restartlog"; exit "$status"
fi
if grep -qE -- '--- SKIP' "$log" "$restartlog"; then
  echo "a Postgres test skipped: the database must be there"; exit 1
fi
if ! grep -qE -- '^--- PASS: TestSinkSurvivesPostgresRestart ' "$restartlog"; then
  echo "TestSinkSurvivesPostgresRestart did not run"; cat "$restartlog"; exit 1
fi
echo "$(cat "$log" "$restartlog" | grep -c -- '--- PASS') passed, 0 failed"
