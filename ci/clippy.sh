#!/usr/bin/env bash
# Lints: clippy on every workspace crate and target, then on embedded/ (Cortex-M firmware and
# test suite, with chatbox-core's defmt feature), warnings are errors.
source "$(dirname "$0")/common.sh"
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "embedded/: cargo clippy --all-targets -- -D warnings (target thumbv7em-none-eabihf)"
need_target thumbv7em-none-eabihf
(cd embedded && cargo clippy --all-targets -- -D warnings)
echo "clippy: ok"
