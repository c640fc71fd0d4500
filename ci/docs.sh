#!/usr/bin/env bash
# API docs of chatbox-core build without a single rustdoc warning (broken links, missing docs).
source "$(dirname "$0")/common.sh"
step 'RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p chatbox-core'
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p chatbox-core
echo "docs: ok"
