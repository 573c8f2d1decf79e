#!/usr/bin/env bash
# Median analysis time of local repositories (issue 5: target < 10 ms), with `nixpacks plan` timed
# in the same run when nixpacks is installed.
#
#   bash bench/analyze.sh [runs] [repo ...]     (default: 500 runs over a few analyzer fixtures)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-500}"
shift || true
fixtures=crates/analyzer/tests/fixtures
repos=("$@")
if [ ${#repos[@]} -eq 0 ]; then
  repos=("$fixtures/python-django-poetry" "$fixtures/node-express-npm" "$fixtures/go-gin-cmd"
         "$fixtures/rust-workspace" "$fixtures/monorepo-slipway-app-dir" "$PWD")
fi

cargo build --release -q -p slipway-analyzer --example analyze_bench
bin="${CARGO_TARGET_DIR:-target}/release/examples/analyze_bench"

echo "== slipway analyzer ($runs runs each, $(nproc) cores) =="
for repo in "${repos[@]}"; do
  "$bin" "$repo" "$runs"
done

echo
if command -v nixpacks >/dev/null 2>&1; then
  echo "== nixpacks plan (median of 20 runs) =="
  for repo in "${repos[@]}"; do
    ts=()
    for _ in $(seq 20); do
      s=$(date +%s%N); nixpacks plan "$repo" >/dev/null 2>&1 || true; e=$(date +%s%N)
      ts+=($(( (e - s) / 1000 )))
    done
    median=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n '10p')
    printf '%s\tmedian=%s.%03dms\n' "$repo" $((median / 1000)) $((median % 1000))
  done
else
  echo "nixpacks is not installed here, so it was not measured in this run."
fi
