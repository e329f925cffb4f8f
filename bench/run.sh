#!/usr/bin/env bash
# Reproduces every figure of BENCHMARKS.md.
#
#   bench/run.sh [outdir]        (default: bench/results/run-<UTC time>)
#
# Runs each Go benchmark COUNT times (default 6) and summarises it with
# benchstat (installed with `go install` if missing), then compares the
# Go SDK with the TypeScript reference client (@durable-streams/client
# 0.2.7, installed with npm into a temporary directory) against one
# `durable serve`, alternating the two COUNT times. Needs go, node, npm.
# PARTS (default "core scale codecs ts") selects what runs: core = the
# SDK's own benchmarks, scale = N Readers/Writers (issue 17, ~10 min),
# codecs = JSON libraries and jsoncodec catch-up, ts = the comparison with
# the TypeScript client (jsoncodec included).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/run-$(date -u +%Y%m%dT%H%M%SZ)}
COUNT=${COUNT:-6}
PARTS=${PARTS:-core scale codecs ts}
part() { [[ " $PARTS " == *" $1 "* ]]; }
mkdir -p "$out"
benchstat=$(go env GOPATH)/bin/benchstat
[ -x "$benchstat" ] || go install golang.org/x/perf/cmd/benchstat@latest

{ date -u; go version; uname -srm; grep -m1 'model name' /proc/cpuinfo || true; nproc; uptime; } > "$out/machine.txt"

gobench() { # name, package, benchtime, regexp
	go test -run '^$' -bench "$4" -benchmem -benchtime "$3" -count "$COUNT" -timeout 60m "$2" | tee "$out/$1.txt"
	"$benchstat" "$out/$1.txt" > "$out/$1.stat"
}

if part core; then

# Writer vs net/http, interleaved per op (ratios), then alone (allocs/op = per message).
gobench writer-paired . 2x 'BenchmarkWriterPaired'
gobench writer-json . 200000x '^BenchmarkWriter$/json100B'
gobench writer-1mib . 200x '^BenchmarkWriter$/bytes1MiB'
# Reader catch-up of 1,000,000 messages (typed, raw, ceiling, interleaved, heap).
gobench reader-catchup . 1x 'BenchmarkReaderCatchUp'
# Reader decode of one 1 MiB chunk without HTTP, alone and interleaved.
gobench reader-decode . 1s 'BenchmarkReaderDecode$'
gobench reader-decode-paired . 40x 'BenchmarkReaderDecodePaired'
# Live latency, Write/Append -> Next, and its ceilings.
gobench latency . 2000x 'BenchmarkReaderLatency'
# Commits.
gobench reader-commit . 1x 'BenchmarkReaderCommit'
gobench offsetstore ./offsetstore 1s 'BenchmarkFileSave'
fi

# Issue 17: N = 100, 1,000, 10,000 live Readers or Writers on N streams of
# `durable serve` in another process, HTTP/1.1 and h2c; heap profiles of
# the idle state beside the figures.
if part scale; then
	mkdir -p "$out/scale-profiles"
	DURABLE_SCALE_PROFILE="$out/scale-profiles" gobench scale . 400x 'BenchmarkScale'
fi

# JSON libraries on the SDK's message shapes (one core), and typed catch-up
# with jsoncodec against encoding/json (one core, alternating in each op).
if part codecs; then
	(cd bench/codecs && go test -v -run TestAgreement . && go test -run '^$' -bench . -cpu 1 -count "$COUNT" .) | tee "$out/codecs-candidates.txt"
	"$benchstat" -col /lib "$out/codecs-candidates.txt" > "$out/codecs-candidates.stat"
	(cd jsoncodec && go test -run '^$' -bench CatchUp -cpu 1 -benchtime 2x -count "$COUNT" -timeout 60m .) | tee "$out/codecs-catchup.txt"
	"$benchstat" "$out/codecs-catchup.txt" > "$out/codecs-catchup.stat"
fi

part ts || { echo "results in $out"; exit 0; }

# Go SDK vs TypeScript client against the same `durable serve`; "gojc" is
# the Go reader with jsoncodec, "gojc1" the same on one core (GOMAXPROCS=1).
tmp=$(mktemp -d)
trap 'kill "${srv:-0}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/durable" ./cmd/durable
go build -o "$tmp/goclient" ./bench/goclient
(cd jsoncodec && go build -o "$tmp/goclient-jc" ./internal/goclient)
(cd "$tmp" && npm init -y >/dev/null && npm install --silent @durable-streams/client@0.2.7 >/dev/null)
cp bench/ts-client.mjs "$tmp/"
port=$((20000 + RANDOM % 20000))
"$tmp/durable" serve -addr "127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
srv=$!
base="http://127.0.0.1:$port/v1/stream/"
for _ in $(seq 50); do curl -s -o /dev/null "$base" && break; sleep 0.1; done
sleep 0.5
"$tmp/goclient" fill "$base" catchup 1000000
: > "$out/ts-vs-go.txt"
for _ in $(seq "$COUNT"); do
	echo "go $("$tmp/goclient" write "$base" 200000)" | tee -a "$out/ts-vs-go.txt"
	echo "ts $(cd "$tmp" && node ts-client.mjs write "$base" 200000)" | tee -a "$out/ts-vs-go.txt"
	echo "go $("$tmp/goclient" read "$base" catchup)" | tee -a "$out/ts-vs-go.txt"
	echo "ts $(cd "$tmp" && node ts-client.mjs read "$base" catchup)" | tee -a "$out/ts-vs-go.txt"
	echo "gojc $("$tmp/goclient-jc" read "$base" catchup jsoncodec)" | tee -a "$out/ts-vs-go.txt"
	echo "gojc1 $(GOMAXPROCS=1 "$tmp/goclient-jc" read "$base" catchup jsoncodec)" | tee -a "$out/ts-vs-go.txt"
done
# Median msgs/s per client and mode.
for c in go ts gojc gojc1; do for m in write read; do
	awk -v c=$c -v m=$m '$1==c && $2==m {print $5}' "$out/ts-vs-go.txt" | sort -n |
		awk -v c=$c -v m=$m '{v[NR]=$1} END {if (NR) {md = NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%s %s median %.0f msgs/s (n=%d)\n", c, m, md, NR}}'
done; done | tee "$out/ts-vs-go.stat"
echo "results in $out"
