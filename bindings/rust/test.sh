#!/usr/bin/env bash
# Builds and tests the Rust bindings against an installed memwise prefix:
#   bindings/rust/test.sh PREFIX
# 1. regenerates memwise-sys/src/bindings.rs with bindgen and fails on a diff
# 2. cargo test (memwise-sys layout tests, the memwise integration tests)
# 3. builds examples/rust through the MEMWISE_LIB_DIR override (no pkg-config)
#    and checks its output against the installed `memwise run`
# Installs what is missing: libclang (Debian libclang-dev) for bindgen, pkg-config.
# Build outputs stay in bindings/rust/target.
set -euo pipefail

if [[ $# -ne 1 || ! -d "$1" ]]; then
    echo "usage: $0 PREFIX   (an installed memwise: PREFIX/lib/pkgconfig/memwise.pc)" >&2
    exit 2
fi
PREFIX="$(cd "$1" && pwd)"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

say() { printf '== rust: %s\n' "$*"; }

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "rust: need $* and there is no apt-get; install it by hand" >&2
        return 1
    fi
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null ||
        { "${sudo[@]}" apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null; }
}

command -v cargo >/dev/null 2>&1 || { echo "rust: cargo not found (install Rust with rustup)" >&2; exit 1; }
command -v pkg-config >/dev/null 2>&1 || apt_install pkg-config
# bindgen loads libclang at run time and needs clang's own headers (stddef.h);
# Debian's libclang-dev brings both. LIBCLANG_PATH points bindgen elsewhere.
if [[ -z "${LIBCLANG_PATH:-}" ]] &&
    ! { compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null &&
        compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" >/dev/null; }; then
    apt_install libclang-dev
fi

export CARGO_TARGET_DIR="$HERE/target"
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MEMWISE_CLI="$PREFIX/bin/memwise"
export CARGO_TERM_COLOR=never

say "cargo $(cargo --version | cut -d' ' -f2), rustc $(rustc --version | cut -d' ' -f2), memwise $(pkg-config --modversion memwise)"

say "bindgen: regenerate memwise-sys/src/bindings.rs and compare"
fresh="$(mktemp "${TMPDIR:-/tmp}/memwise-bindings.XXXXXX.rs")"
trap 'rm -f "$fresh"' EXIT
cargo run --quiet --locked -p memwise-regen -- "$fresh" "$ROOT/include/memwise/memwise.h"
if ! diff -u memwise-sys/src/bindings.rs "$fresh"; then
    echo "rust: memwise-sys/src/bindings.rs is stale; run: (cd bindings/rust && cargo run -p memwise-regen)" >&2
    exit 1
fi
say "bindings.rs matches the header"

say "cargo test"
cargo test --locked

say "example through MEMWISE_LIB_DIR (no pkg-config)"
MEMWISE_LIB_DIR="$PREFIX/lib" MEMWISE_INCLUDE_DIR="$PREFIX/include" PKG_CONFIG_PATH=/nonexistent \
    cargo build --locked -p memwise-example
model=""
for dir in "${MEMWISE_TEST_MODELS:-}" "$ROOT/../shared/models" "${MEMWISE_MODEL_CACHE:-}" "$HOME/.cache/memwise/models"; do
    if [[ -n "$dir" && -f "$dir/stories260K.gguf" ]]; then
        model="$dir/stories260K.gguf"
        break
    fi
done
if [[ -z "$model" ]]; then
    say "SKIP: stories260K.gguf not found; not running the example"
else
    got="$("$CARGO_TARGET_DIR/debug/generate" "$model" "Once upon a time" 24 </dev/null)"
    want="$("$MEMWISE_CLI" run "$model" -p "Once upon a time" -n 24 --temp 0 </dev/null)"
    if [[ "$got" != "$want" ]]; then
        printf 'rust: example output differs from memwise run\n  example: %q\n  cli:     %q\n' "$got" "$want" >&2
        exit 1
    fi
    say "example output equals memwise run: $got"
fi
say "OK"
