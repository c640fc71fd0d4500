#!/usr/bin/env bash
# chatbox-core's on-target test suite (embedded/tests, defmt-test) on a Cortex-M4F emulated by
# qemu-system-arm (mps2-an386, semihosting). defmt-test prints no summary, so this script counts
# the tests from the decoded output and prints `N passed, M failed` (tests a failure stopped
# before they ran are reported as skipped). Exits non-zero on any failure, crash or timeout.
source "$(dirname "$0")/common.sh"
target=thumbv7em-none-eabihf
limit=${QEMU_TEST_TIMEOUT:-300}
need_target "$target"
need qemu-system-arm "Debian package qemu-system-arm"
need defmt-print "cargo install defmt-print --locked"

step "embedded/: cargo test --no-run (target $target)"
list=$(cd embedded && cargo_executables test test --no-run)
[ -n "$list" ] || { echo "error: no test executable was built" >&2; exit 1; }
mapfile -t elves <<<"$list"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0 failed=0 skipped=0
for elf in "${elves[@]}"; do
    name=$(basename "$elf")
    step "qemu-system-arm mps2-an386: ${name%-*} (timeout ${limit}s)"
    status=0
    run_on_board "$elf" "$limit" >"$log" || status=$?
    cat "$log"
    # defmt-test announces each test as `(i/N) running `name`...` (or `ignoring`) and ends with
    # `all tests passed!`; a failing test panics, which exits QEMU with a non-zero status.
    total=$(sed -n 's/^(\([0-9]*\)\/\([0-9]*\)) \(running\|ignoring\) .*/\2/p' "$log" | tail -n 1)
    started=$(grep -c '^([0-9]*/[0-9]*) running ' "$log" || true)
    ignored=$(grep -c '^([0-9]*/[0-9]*) ignoring ' "$log" || true)
    total=${total:-0}
    if [ "$status" -eq 0 ] && grep -q '^all tests passed!$' "$log"; then
        passed=$((passed + started))
        skipped=$((skipped + ignored))
    else
        case $status in
            124 | 137) why="timed out after ${limit}s" ;;
            101) why="a test failed (panic)" ;;
            102) why="HardFault" ;;
            0) why="exited without 'all tests passed!'" ;;
            *) why="exit status $status" ;;
        esac
        echo "error: ${name%-*}: $why" >&2
        if [ "$started" -gt 0 ]; then
            passed=$((passed + started - 1))
        fi
        failed=$((failed + 1))
        skipped=$((skipped + total - started))
    fi
done
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
