#!/usr/bin/env bash
# Installs what the checks need and a clean machine lacks; skips whatever is already there, so
# it is quick on a warm machine. Idempotent; needs root for apt-get (CI runs as root).
source "$(dirname "$0")/common.sh"

RUST_TARGETS=(thumbv7em-none-eabihf s390x-unknown-linux-gnu)
# qemu-user: qemu-s390x (ci/bigendian.sh); qemu-system-arm (ci/qemu-arm.sh, ci/nostd.sh);
# gcc-s390x-linux-gnu + libc6-dev-s390x-cross: linker and libc for s390x;
# binutils-arm-none-eabi: arm-none-eabi-size for the firmware budget (ci/nostd.sh);
# oathtool, zbar-tools, tmux, sqlite3, imagemagick: end-to-end checks (TOTP codes, QR decoding,
# driving the TUI, inspecting the database, screenshots);
# postgresql, postgresql-client, redis-server: the scale-out checks (ci/cluster.sh, ci/services.sh);
# systemd (systemd-analyze verify/security on the unit; nothing is started), procps (pkill),
# logrotate: the Debian package check (ci/deb.sh).
APT_PACKAGES=(qemu-user qemu-system-arm gcc-s390x-linux-gnu libc6-dev-s390x-cross
    binutils-arm-none-eabi oathtool zbar-tools tmux sqlite3 imagemagick
    postgresql postgresql-client redis-server systemd procps logrotate)
# cargo tools: name, crate, version. cargo-deb: the Debian packages (ci/deb.sh).
CARGO_TOOLS=("defmt-print defmt-print 1.2.0" "cargo-deb cargo-deb 3.8.0")

installed_targets=$(rustup target list --installed)
for t in "${RUST_TARGETS[@]}"; do
    if grep -qx "$t" <<<"$installed_targets"; then
        echo "rust target $t: present"
    else
        step "rustup target add $t"
        rustup target add "$t"
    fi
done

missing=()
for p in "${APT_PACKAGES[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        :
    else
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "Debian packages: all ${#APT_PACKAGES[@]} present"
else
    step "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        </dev/null >"$log" 2>&1; then
        cat "$log" >&2
        echo "error: apt-get could not install ${missing[*]}" >&2
        exit 1
    fi
    rm -f "$log"
    echo "Debian packages: installed ${missing[*]}"
fi

for entry in "${CARGO_TOOLS[@]}"; do
    read -r bin crate version <<<"$entry"
    if command -v "$bin" >/dev/null 2>&1; then
        echo "cargo tool $bin: present ($("$bin" --version 2>/dev/null | head -n 1))"
    else
        step "cargo install $crate --version $version --locked"
        cargo install "$crate" --version "$version" --locked
    fi
done
