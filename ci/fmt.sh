#!/usr/bin/env bash
# Formatting: the workspace and the embedded crate must be exactly as rustfmt writes them.
source "$(dirname "$0")/common.sh"
step "cargo fmt --all --check (workspace)"
cargo fmt --all --check
step "cargo fmt --check (embedded/)"
cargo fmt --manifest-path embedded/Cargo.toml --check
echo "fmt: ok"
