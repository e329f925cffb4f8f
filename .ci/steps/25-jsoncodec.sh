#!/usr/bin/env bash
# The nested module jsoncodec/ (its own go.mod, replacing the core module
# with ../): gofmt, go vet, staticcheck and go test -race, as .ci/run does
# for the core module. Its fuzz target (FuzzCodec) runs in 20-fuzz.sh.
set -euo pipefail
exec "$(dirname "$0")/../nested-module.sh" jsoncodec
