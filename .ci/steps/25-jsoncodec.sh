#!/usr/bin/env bash
# The nested module jsoncodec/ (its own go.mod, replacing the core module
# with ../): gofmt, go vet, staticcheck and go test -race, as .ci/run does
# for the core module. Its fuzz target (FuzzCodec) runs in 20-fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/../../jsoncodec"
export PATH="$(go env GOPATH)/bin:$PATH"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "not gofmt-formatted:"; echo "$unformatted"; exit 1; fi
go vet ./...
staticcheck ./...
go test -race -count=1 ./...
