#!/usr/bin/env bash
# Checks one nested module (its own go.mod, replacing the core module with
# a relative path) as .ci/run checks the core module: gofmt, go vet,
# staticcheck and go test -race. Usage: .ci/nested-module.sh DIR (from the
# repository root, or any directory: DIR is relative to the root).
set -euo pipefail
cd "$(dirname "$0")/../$1"
export PATH="$(go env GOPATH)/bin:$PATH"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "not gofmt-formatted:"; echo "$unformatted"; exit 1; fi
go vet ./...
staticcheck ./...
go test -race -count=1 ./...
