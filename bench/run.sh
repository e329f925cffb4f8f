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
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/run-$(date -u +%Y%m%dT%H%M%SZ)}
COUNT=${COUNT:-6}
mkdir -p "$out"
benchstat=$(go env GOPATH)/bin/benchstat
[ -x "$benchstat" ] || go install golang.org/x/perf/cmd/benchstat@latest

{ date -u; go version; uname -srm; grep -m1 'model name' /proc/cpuinfo || true; nproc; uptime; } > "$out/machine.txt"

gobench() { # name, package, benchtime, regexp
	go test -run '^$' -bench "$4" -benchmem -benchtime "$3" -count "$COUNT" "$2" | tee "$out/$1.txt"
	"$benchstat" "$out/$1.txt" > "$out/$1.stat"
}

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

# Go SDK vs TypeScript client against the same `durable serve`.
tmp=$(mktemp -d)
trap 'kill "${srv:-0}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/durable" ./cmd/durable
go build -o "$tmp/goclient" ./bench/goclient
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
done
# Median msgs/s per client and mode.
for c in go ts; do for m in write read; do
	awk -v c=$c -v m=$m '$1==c && $2==m {print $5}' "$out/ts-vs-go.txt" | sort -n |
		awk -v c=$c -v m=$m '{v[NR]=$1} END {md = NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%s %s median %.0f msgs/s (n=%d)\n", c, m, md, NR}'
done; done | tee "$out/ts-vs-go.stat"
echo "results in $out"
