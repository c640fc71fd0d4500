#!/usr/bin/env bash
# Scale-out: PostgreSQL and Redis from Debian's packages on 127.0.0.1 in a temp dir
# (ci/services.sh), then the storage behaviour suite on both backends (tests/store_suite.rs)
# and the cross-node test (tests/cluster.rs: three server processes, users on different nodes,
# one node killed mid-conversation, full history for everyone), then the real client with
# several --server addresses surviving a node kill (ci/cluster_client.py, when present).
source "$(dirname "$0")/common.sh"
need psql "Debian package postgresql-client"
need redis-server "Debian package redis-server"
svc=$(mktemp -d /tmp/chatbox-cluster.XXXXXX)
trap 'bash ci/services.sh stop "$svc"' EXIT
step "PostgreSQL + Redis"
bash ci/services.sh start "$svc"
# shellcheck disable=SC1091
source "$svc/env"
step "cargo test -p chatbox-server --test store_suite --test cluster"
timeout 900 cargo test -p chatbox-server --test store_suite --test cluster -- --nocapture
if [ -f ci/cluster_client.py ]; then
    step "real clients with several --server addresses across a node kill"
    cargo build --release -p chatbox-server -p chatbox-client
    target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    timeout 300 python3 ci/cluster_client.py "$target_dir/release/chatbox-server" "$target_dir/release/chatbox-client"
fi
