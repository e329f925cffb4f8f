#!/usr/bin/env bash
# Chaos run (internal/testsupport/chaos, build tag "chaos"): `durable serve --data-dir`,
# three writer and two reader processes, killed with SIGKILL at random for
# about 45 s, then the whole history is checked. Bounded to about a minute.
# Everything runs under -race: the supervisor, and the worker and server
# binaries it builds (a race report from any process fails the run;
# CHAOS_RACE=0 builds those two without -race, for speed). It prints the
# seed and one summary line (-v, so they show when the run passes); replay
# a failure with CHAOS_SEED=<seed>. CHAOS_DURATION and CHAOS_RATE tune the
# run.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -race -tags chaos -run Chaos -count=1 -v -timeout 5m ./internal/testsupport/chaos/...
