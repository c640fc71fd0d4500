#!/usr/bin/env bash
# chatbox-core's whole test suite on a big-endian 64-bit target: s390x, cross-compiled with
# Debian's s390x gcc and run under qemu-user. Catches any byte-order assumption in the core.
source "$(dirname "$0")/common.sh"
target=s390x-unknown-linux-gnu
need_target "$target"
need s390x-linux-gnu-gcc "Debian packages gcc-s390x-linux-gnu, libc6-dev-s390x-cross"
need qemu-s390x "Debian package qemu-user"
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER=s390x-linux-gnu-gcc
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUNNER="qemu-s390x -L /usr/s390x-linux-gnu"
# Emulated: fewer property-test cases than on the host, same properties.
export PROPTEST_CASES="${PROPTEST_CASES:-64}"
step "cargo test -p chatbox-core --target $target (runner: qemu-s390x, PROPTEST_CASES=$PROPTEST_CASES)"
cargo test -p chatbox-core --target "$target"
