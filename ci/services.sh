#!/usr/bin/env bash
# PostgreSQL and Redis for the scale-out tests, from Debian's packages, loopback only, in a
# temporary directory: `ci/services.sh start DIR` starts both on free ports and writes DIR/env
# (CHATBOX_TEST_POSTGRES, CHATBOX_TEST_REDIS, to `source`); `ci/services.sh stop DIR` stops them
# and removes DIR. Installs postgresql / redis-server with apt-get when missing (root).
# PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` user.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

pg_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return
        fi
    done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    if [ -z "$(pg_bin)" ] || ! command -v redis-server >/dev/null 2>&1; then
        echo "--- apt-get install -y postgresql redis-server"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql redis-server >/dev/null
    fi
    bin="$(pg_bin)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    mkdir -p "$dir/pg" "$dir/redis"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir/pg"
        chmod 755 "$dir"
    fi
    pg_port="$(free_port)"
    redis_port="$(free_port)"
    as_pg "$bin/initdb" -D "$dir/pg/data" -U chatbox --auth=trust -E UTF8 >"$dir/pg-initdb.log" 2>&1
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$dir/pg -c max_connections=200" start >/dev/null
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U chatbox chatbox
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --daemonize yes --dir "$dir/redis" --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log"
    for _ in $(seq 50); do
        if redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; then break; fi
        sleep 0.1
    done
    cat >"$dir/env" <<EOF
export CHATBOX_TEST_POSTGRES=postgres://chatbox@127.0.0.1:$pg_port/chatbox
export CHATBOX_TEST_REDIS=redis://127.0.0.1:$redis_port
EOF
    echo "PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port (source $dir/env)"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    bin="$(pg_bin)"
    if [ -f "$dir/pg/data/postmaster.pid" ] && [ -n "$bin" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/redis/redis.pid" ]; then
        kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
