#!/usr/bin/env bash
# no_std: chatbox-core builds for a Cortex-M4F (thumbv7em-none-eabihf, no alloc), and a small
# client firmware that links the handshake, session seal/open, TOTP and QR fits the flash budget:
# .text <= 48 KiB. The firmware then runs on QEMU's mps2-an386 and checks its results against
# the protocol's known answers.
source "$(dirname "$0")/common.sh"
target=thumbv7em-none-eabihf
budget=$((48 * 1024))
need_target "$target"

step "cargo build -p chatbox-core --target $target --release"
cargo build -p chatbox-core --target "$target" --release

step "embedded/: cargo build --release --bin firmware"
elf=$(cd embedded && cargo_executables bin build --release --bin firmware)
[ -n "$elf" ] || { echo "error: no firmware executable was built" >&2; exit 1; }

size_tool=
for t in arm-none-eabi-size llvm-size rust-size size; do
    if command -v "$t" >/dev/null 2>&1 && "$t" -A "$elf" >/dev/null 2>&1; then
        size_tool=$t
        break
    fi
done
[ -n "$size_tool" ] || { echo "error: no size tool (Debian package binutils-arm-none-eabi)" >&2; exit 1; }
step "section sizes ($size_tool -A ${elf#"$PWD"/})"
sections=$("$size_tool" -A "$elf")
awk '$1 ~ /^\.(vector_table|text|rodata|data|bss|uninit)$/ { printf "  %-14s %8d bytes\n", $1, $2 }' <<<"$sections"
text=$(awk '$1 == ".text" { print $2 }' <<<"$sections")
[ -n "$text" ] || { echo "error: no .text section in $elf" >&2; exit 1; }
printf 'firmware .text: %d bytes = %d.%d KiB (budget %d bytes = 48 KiB, %d%% used)\n' \
    "$text" $((text / 1024)) $((text % 1024 * 10 / 1024)) "$budget" $((text * 100 / budget))
if [ "$text" -gt "$budget" ]; then
    echo "error: firmware .text is over the 48 KiB budget by $((text - budget)) bytes" >&2
    exit 1
fi

if command -v qemu-system-arm >/dev/null 2>&1 && command -v defmt-print >/dev/null 2>&1; then
    step "run the firmware on qemu-system-arm mps2-an386"
    run_on_board "$elf" 60 || { echo "error: the firmware failed on the board (status $?)" >&2; exit 1; }
else
    need qemu-system-arm "Debian package qemu-system-arm"
    need defmt-print "cargo install defmt-print --locked"
fi
echo "nostd: ok"
