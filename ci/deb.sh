#!/usr/bin/env bash
# Debian packages: cargo deb builds chatbox-server and chatbox-client (release, reusing e2e's
# build), `systemd-analyze verify` on the unit, dpkg -i, the packaged server started as the
# chatbox user with --config /etc/chatbox/chatbox.toml, registration and chat with the packaged
# client (oathtool codes), /metrics scraped, owners and modes under /var/lib/chatbox and
# /var/log/chatbox, every setting documented in the conffile, then both packages purged.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in cargo-deb dpkg oathtool python3 setpriv pkill systemd-analyze; do
    command -v "$tool" >/dev/null || { echo "deb: missing $tool (run .ci/run to install)"; exit 1; }
done
if dpkg-query -W -f='${Status}' chatbox-server 2>/dev/null | grep -q 'ok installed'; then
    echo "deb: chatbox-server is already installed on this machine; refusing to touch it"
    exit 1
fi

echo "deb: cargo deb (the release build e2e made; built here if missing)"
cargo build --release -q -p chatbox-server -p chatbox-client
server_deb=$(cargo deb -p chatbox-server --no-build | tail -n 1)
client_deb=$(cargo deb -p chatbox-client --no-build | tail -n 1)
for f in "$server_deb" "$client_deb"; do
    [ -f "$f" ] || { echo "deb: cargo deb did not produce a package ($f)"; exit 1; }
    echo "  $f"
done
echo "deb: package contents"
dpkg-deb -c "$server_deb" | awk '{print "  " $1, $2, $6}'
dpkg-deb -c "$client_deb" | awk '{print "  " $1, $2, $6}'

cleanup() {
    pkill -KILL -x -u chatbox chatbox-server 2>/dev/null || true
    dpkg --purge chatbox-server chatbox-client >/dev/null 2>&1 || true
    # Purge keeps the data and the user (Debian's way with user data); CI leaves nothing.
    rm -rf /var/lib/chatbox
    userdel chatbox 2>/dev/null || true
}
trap cleanup EXIT

echo "deb: dpkg -i"
dpkg -i "$server_deb" "$client_deb"

echo "deb: systemd-analyze verify"
systemd-analyze verify /lib/systemd/system/chatbox-server.service
echo "deb: systemd-analyze security (offline)"
systemd-analyze security --offline=yes /lib/systemd/system/chatbox-server.service 2>&1 | tail -n 3 || true

echo "deb: logrotate -d (syntax and what it would do)"
logrotate -d /etc/logrotate.d/chatbox-server 2>&1 | grep -iE 'error|rotating pattern' | sed 's/^/  /'
if logrotate -d /etc/logrotate.d/chatbox-server 2>&1 | grep -qi '^error'; then
    echo "deb: logrotate refuses /etc/logrotate.d/chatbox-server"; exit 1
fi

timeout 300 python3 ci/deb.py

echo "deb: dpkg --purge"
dpkg --purge chatbox-server chatbox-client
for f in /usr/bin/chatbox-server /usr/bin/chatbox-client /lib/systemd/system/chatbox-server.service \
    /etc/chatbox/chatbox.toml /etc/logrotate.d/chatbox-server /var/log/chatbox; do
    if [ -e "$f" ]; then echo "deb: $f left after purge"; exit 1; fi
done
echo "deb: purged (kept, as documented: /var/lib/chatbox and the chatbox user)"
