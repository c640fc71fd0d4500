#!/usr/bin/env bash
# Fuzzing smoke run: every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 15) each, one
# at a time in a single process, starting from the committed corpus (fuzz/corpus/<target>/,
# read only: new inputs go to a scratch directory). Nightly toolchain and cargo-fuzz are
# installed if missing. Prints each target's executions and ends with `N passed, M failed`.
#
# Builds with --sanitizer none and debug assertions: chatbox-core forbids unsafe code, so the
# findings that matter are panics (overflow checks included), not memory errors. Set
# FUZZ_SANITIZER=address to use ASan anyway. A failing input is kept under
# fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run -s none -a <target> fuzz/artifacts/<target>/<file>
# and keep it as a regression in fuzz/regressions/<target>/ (replayed by `cargo test` in fuzz/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

seconds="${FUZZ_SECONDS:-15}"
sanitizer="${FUZZ_SANITIZER:-none}"
step() { printf -- '--- %s\n' "$*"; }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    step "rustup toolchain install nightly --profile minimal"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi

cd fuzz
flags=(--sanitizer "$sanitizer" --debug-assertions)
step "cargo +nightly fuzz build ${flags[*]}"
cargo +nightly fuzz build "${flags[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
failures=()
start=$SECONDS
for target in $(cargo +nightly fuzz list); do
    step "$target: ${seconds}s"
    mkdir -p "$scratch/$target" "artifacts/$target" "corpus/$target"
    log="$scratch/$target.log"
    # One process (no -jobs/-workers: libFuzzer then fuzzes in-process, one worker).
    if cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$target/" >"$log" 2>&1; then
        status=ok
        passed=$((passed + 1))
    else
        status=FAILED
        failed=$((failed + 1))
        failures+=("$target")
        grep -E 'panicked|SUMMARY|Test unit written|ERROR' "$log" | head -n 20 || tail -n 30 "$log"
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    printf '%-22s %s: %s executions (%s exec/s)\n' "$target" "$status" "${execs:-?}" "${rate:-?}"
done
echo "fuzzing took $((SECONDS - start))s"
if ((failed > 0)); then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
