#!/usr/bin/env bash
# The README's test command: every workspace crate's unit, integration and doc tests on the host.
source "$(dirname "$0")/common.sh"
step "cargo test --workspace"
cargo test --workspace
