#!/usr/bin/env bash
# Build every example program to wasm and write programs/<name>/<name>.wasm.
#
# Uses Debian's Rust 1.63 (/usr/bin/rustc, /usr/bin/cargo) and its wasm32 std
# (package libstd-rust-dev-wasm32), never a rustup toolchain, so the output is
# the same on every machine with those packages. Gear programs are linked with
# imported memory and a 64 KiB stack placed first in memory, then rewritten by
# postprocess.py (exports, __gear_stack_end, zero-trimmed data, no custom
# sections). bench_kernels is a plain wasm module: only its custom sections
# are stripped.
#
# Usage: bash programs/build.sh [NAME...]      (default: all)
set -euo pipefail

cd "$(dirname "$0")"
HERE="$(pwd)"

GEAR_PROGRAMS=(ping counter token mandelbrot fnv proxy panicker looper membomb waiter sender)
PLAIN_PROGRAMS=(bench_kernels)   # not Gear programs: exports/memory kept as built
TARGET=wasm32-unknown-unknown
STACK_SIZE=65536                 # becomes __gear_stack_end (must be a multiple of 64 KiB)

RUSTC_BIN=/usr/bin/rustc
CARGO_BIN=/usr/bin/cargo
if [[ ! -x $RUSTC_BIN || ! -x $CARGO_BIN ]] ||
    ! compgen -G "$($RUSTC_BIN --print sysroot)/lib/rustlib/$TARGET/lib/libcore-*.rlib" >/dev/null; then
    echo "programs/build.sh: Debian's Rust toolchain with the wasm32 std is missing: install Debian's rustc cargo libstd-rust-dev-wasm32 (apt-get install rustc cargo libstd-rust-dev-wasm32)" >&2
    exit 1
fi
PYTHON=${PYTHON:-python3}

export RUSTC=$RUSTC_BIN
export CARGO_INCREMENTAL=0
export CARGO_TARGET_DIR="$HERE/target"
# No absolute build path may leak into the binaries.
export RUSTFLAGS="--remap-path-prefix=$HERE=."
unset CARGO_BUILD_TARGET CARGO_ENCODED_RUSTFLAGS

if [[ $# -gt 0 ]]; then WANT=("$@"); else WANT=("${GEAR_PROGRAMS[@]}" "${PLAIN_PROGRAMS[@]}"); fi

is_plain() {
    local p
    for p in "${PLAIN_PROGRAMS[@]}"; do [[ $p == "$1" ]] && return 0; done
    return 1
}

build() { # NAME LINK-ARGS...
    local name=$1
    shift
    "$CARGO_BIN" rustc --quiet --offline --release --target "$TARGET" -p "$name" -- "$@"
}

for name in "${WANT[@]}"; do
    [[ -f $name/Cargo.toml ]] || { echo "programs/build.sh: no program '$name'" >&2; exit 1; }
    out="target/$TARGET/release/$name.wasm"
    if is_plain "$name"; then
        build "$name" -C link-arg=-zstack-size=$STACK_SIZE
        "$PYTHON" postprocess.py --plain "$out" "$name/$name.wasm"
    else
        build "$name" -C link-arg=--import-memory -C link-arg=-zstack-size=$STACK_SIZE
        "$PYTHON" postprocess.py "$out" "$name/$name.wasm"
    fi
    printf '%-14s %7d bytes\n' "$name" "$(wc -c <"$name/$name.wasm")"
done
