#!/usr/bin/env bash
# Builds (does not run) the benchmarks and the load generator: numbers are too noisy for CI,
# but they must keep compiling. Run them with bench/run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --workspace --no-run
echo "benches: built"
