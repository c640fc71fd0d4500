#!/usr/bin/env bash
# End-to-end: release binaries, real server and client processes on 127.0.0.1, oathtool for
# TOTP, sqlite3 tables, log files, verify-log, SIGTERM + restart, tmux menu and the QR on screen.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in oathtool tmux zbarimg python3; do
    command -v "$tool" >/dev/null || { echo "e2e: missing $tool (run .ci/run to install)"; exit 1; }
done
echo "e2e: building release binaries"
cargo build --release -p chatbox-server -p chatbox-client
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
timeout 300 python3 ci/e2e.py "$target_dir/release/chatbox-server" "$target_dir/release/chatbox-client"
