#!/usr/bin/env bash
# Runs every fuzz target in the repository for a short time (FUZZTIME, default
# 10s each). Targets are discovered, not listed, so new packages' Fuzz*
# functions are picked up automatically. Any crasher fails the step; go test
# writes it under the package's testdata/fuzz/ so it can be kept as a
# regression test.
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzztime="${FUZZTIME:-10s}"

# Packages whose test files declare a fuzz target.
mapfile -t dirs < <(
  grep -rl --include='*_test.go' --exclude-dir=testdata --exclude-dir=node_modules \
    --exclude-dir=vendor --exclude-dir=.git -E '^func Fuzz[A-Za-z0-9_]*\(' . |
    xargs -r -n1 dirname | sort -u
)
if [ "${#dirs[@]}" -eq 0 ]; then
  echo "no fuzz targets found"
  exit 0
fi

total=0
for dir in "${dirs[@]}"; do
  # A package of a nested module (its own go.mod, e.g. jsoncodec/) is
  # fuzzed from that module's directory.
  mod=$dir
  while [ "$mod" != "." ] && [ ! -f "$mod/go.mod" ]; do mod=$(dirname "$mod"); done
  pkg=./${dir#"$mod"}
  pkg=${pkg/#.\/\//./}
  # Build tags or a broken package must fail loudly, not hide the targets.
  list=$(cd "$mod" && go test -list '^Fuzz' "$pkg")
  mapfile -t targets < <(printf '%s\n' "$list" | grep -E '^Fuzz[A-Za-z0-9_]*$' || true)
  if [ "${#targets[@]}" -eq 0 ]; then
    echo "FAIL: $dir has a 'func Fuzz' but go test -list finds no target" >&2
    exit 1
  fi
  for target in "${targets[@]}"; do
    echo "-- fuzz $dir $target ($fuzztime)"
    if ! (cd "$mod" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"); then
      echo "FAIL: fuzz target $target in $dir crashed; the input is under $dir/testdata/fuzz/$target/" >&2
      exit 1
    fi
    total=$((total + 1))
  done
done
echo "fuzzed $total targets for $fuzztime each"
