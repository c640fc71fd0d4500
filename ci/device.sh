#!/usr/bin/env bash
# A Cortex-M device logs in and chats with the real server: embedded/'s device-client firmware
# on qemu-system-arm (mps2-an386), its UART0 joined to a real chatbox-server on 127.0.0.1 by
# `-serial tcp:`. Checks the flash budget (.text + .rodata <= 96 KiB), then ci/device.py: hello,
# !ping/pong, !echo of 1 000 bytes, !stats, !bye -> exit 0 (RAM: static + peak stack <= 48 KiB);
# another server's key -> exit 3; a refused login -> exit 4; a bad frame or a lost connection ->
# exit 2. Every step has a time limit; no process is left behind.
source "$(dirname "$0")/common.sh"
target=thumbv7em-none-eabihf
flash_budget=$((96 * 1024))
ram_budget=$((48 * 1024))
need_target "$target"
need qemu-system-arm "Debian package qemu-system-arm"
need defmt-print "cargo install defmt-print --locked"
need oathtool "Debian package oathtool"
need python3 "Debian package python3"

step "embedded/: cargo build --release --bin device-client"
(cd embedded && timeout 900 cargo build --release --bin device-client)
elf=$(cd embedded && cargo_executables bin build --release --bin device-client)
[ -n "$elf" ] || { echo "error: no device-client executable was built" >&2; exit 1; }

need arm-none-eabi-size "Debian package binutils-arm-none-eabi"
step "section sizes (arm-none-eabi-size -A ${elf#"$PWD"/})"
sections=$(arm-none-eabi-size -A "$elf")
awk '$1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/ { printf "  %-14s %8d bytes\n", $1, $2 }' <<<"$sections"
size_of() { awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }' <<<"$sections"; }
text=$(size_of .text) rodata=$(size_of .rodata) vectors=$(size_of .vector_table)
data=$(size_of .data) bss=$(size_of .bss) uninit=$(size_of .uninit)
flash=$((text + rodata))
static_ram=$((data + bss + uninit))
printf 'device-client flash (.text + .rodata): %d bytes = %d.%d KiB (budget 96 KiB, %d%% used; +%d vector table, +%d .data image)\n' \
    "$flash" $((flash / 1024)) $((flash % 1024 * 10 / 1024)) $((flash * 100 / flash_budget)) "$vectors" "$data"
printf 'device-client static RAM (.data + .bss + .uninit): %d bytes; the peak stack is measured on the board\n' "$static_ram"
if [ "$flash" -gt "$flash_budget" ]; then
    echo "error: device-client is over the 96 KiB flash budget by $((flash - flash_budget)) bytes" >&2
    exit 1
fi

step "cargo build --release -p chatbox-server -p chatbox-client"
timeout 1800 cargo build --release -p chatbox-server -p chatbox-client
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

# timeout signals its whole process group: QEMU, the servers and the clients go with python.
step "ci/device.py: the firmware under QEMU against real servers (timeout 300 s)"
timeout --kill-after=10 300 python3 ci/device.py "$target_dir/release/chatbox-server" \
    "$target_dir/release/chatbox-client" "$elf" "$static_ram" "$ram_budget"
