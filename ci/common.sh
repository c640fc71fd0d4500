# Sourced by every ci/*.sh: strict mode, repo root as the working directory, cargo's bin dir on
# PATH, and small helpers. Not a check itself.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Prints a step of a check.
step() { printf -- '--- %s\n' "$*"; }

# Fails with a clear message when a command is missing.
need() {
    local cmd=$1 hint=$2
    if ! command -v "$cmd" >/dev/null 2>&1; then
        printf 'error: %s not found (%s; `bash .ci/run` installs it)\n' "$cmd" "$hint" >&2
        exit 1
    fi
}

# Fails with a clear message when a rustup target is missing.
need_target() {
    if ! rustup target list --installed | grep -qx "$1"; then
        printf 'error: rust target %s not installed (rustup target add %s; `bash .ci/run` does it)\n' "$1" "$1" >&2
        exit 1
    fi
}

# The QEMU command line of the Cortex-M board (also embedded/.cargo/config.toml's runner).
QEMU_ARM=(qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic
    -semihosting-config enable=on,target=native -kernel)

# Runs an embedded ELF on the emulated board with a time limit, decoding its defmt output to
# stdout. Returns QEMU's exit status (the program's semihosting exit code; 124 on timeout).
run_on_board() {
    local elf=$1 limit=${2:-300} status
    set +e
    timeout --kill-after=10 "$limit" "${QEMU_ARM[@]}" "$elf" </dev/null | defmt-print -e "$elf"
    status=("${PIPESTATUS[@]}")
    set -e
    if [ "${status[1]}" -ne 0 ]; then
        echo "error: defmt-print failed (status ${status[1]})" >&2
        return 1
    fi
    return "${status[0]}"
}

# `cargo_executables KIND ARGS...`: runs `cargo ARGS... --message-format=json-render-diagnostics`
# (diagnostics on stderr as usual) and prints the paths of the executables it produced for
# targets of kind KIND (bin, test), one a line.
cargo_executables() {
    local kind=$1 json
    shift
    json=$(cargo "$@" --message-format=json-render-diagnostics) || return 1
    { grep -F "\"kind\":[\"$kind\"]" <<<"$json" || true; } |
        { grep -o '"executable":"[^"]*"' || true; } | cut -d'"' -f4
}
