#!/usr/bin/env bash
# The nested module otel/ (package durableotel, its own go.mod on the
# OpenTelemetry Go API, replacing the core module with ../): gofmt, go vet,
# staticcheck and go test -race, as .ci/run does for the core module. Its
# tests record with the OpenTelemetry SDK's in-memory exporters against the
# in-process testserver: no collector, no network.
set -euo pipefail
exec "$(dirname "$0")/../nested-module.sh" otel
