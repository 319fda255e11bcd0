#!/usr/bin/env bash
# Builds and tests the Go binding and the Go example server against an
# installed memwise prefix:
#   bindings/go/test.sh PREFIX
# 1. go vet and gofmt on the binding and the server
# 2. go test -race ./... (greedy equality with the C API, 32 goroutines,
#    cancellation, bad input, Close order)
# 3. a build with -tags memwise_nopkgconfig (CGO_CFLAGS/CGO_LDFLAGS instead of pkg-config)
# 4. builds examples/go-server and tests it with the official openai Python
#    client (examples/go-server/test.sh)
# Needs Go >= 1.23 (a Go >= 1.21 fetches it through the module proxy by itself),
# a C compiler and pkg-config (scripts/setup.sh installs the latter two).
set -euo pipefail

PREFIX="${1:?usage: bindings/go/test.sh PREFIX}"
PREFIX="$(cd "$PREFIX" && pwd)"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"   # CI may run without HOME
export HOME

say() { printf '\n== go binding: %s\n' "$*"; }

# ---- Go toolchain -----------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
    for d in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin" "$HOME/sdk/go/bin"; do
        [[ -x "$d/go" ]] && { export PATH="$d:$PATH"; break; }
    done
fi
if ! command -v go >/dev/null 2>&1; then
    say "no Go toolchain; installing golang-go"
    DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends golang-go </dev/null
fi
for tool in pkg-config cc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "go binding: $tool is missing (run scripts/setup.sh)" >&2; exit 1; }
done

export CGO_ENABLED=1
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Go's build cache does not key cgo packages on pkg-config's output, so a
# cached build could link against an earlier (deleted) prefix. The CGO_*
# variables are part of the key: naming the prefix here rebuilds per prefix.
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -I$PREFIX/include"
export CGO_LDFLAGS="${CGO_LDFLAGS:--O2 -g} -L$PREFIX/lib"
export MEMWISE_CLI="$PREFIX/bin/memwise"
# No VCS stamping: a fresh clone owned by another user makes git refuse.
export GOFLAGS="-buildvcs=false${GOFLAGS:+ $GOFLAGS}"
go version

WORK="$(mktemp -d "${TMPDIR:-/tmp}/memwise-go.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

check_fmt() {
    local bad
    bad="$(gofmt -l "$1")"
    [[ -z "$bad" ]] || { echo "gofmt: not formatted: $bad" >&2; return 1; }
}

# ---- the binding --------------------------------------------------------------
cd "$HERE"
say "vet"
check_fmt .
go vet ./...

say "test -race"
go test -race -count=1 ./...

say "build without pkg-config (-tags memwise_nopkgconfig)"
env -u PKG_CONFIG_PATH CGO_CFLAGS="-I$PREFIX/include" CGO_LDFLAGS="-L$PREFIX/lib" \
    go test -tags memwise_nopkgconfig -count=1 -run 'TestVersion|TestBadModelFile' .

# ---- the example server ------------------------------------------------------
cd "$ROOT/examples/go-server"
say "example server: vet, build"
check_fmt .
go vet ./...
go build -o "$WORK/go-server" .

say "example server: openai client test"
bash "$ROOT/examples/go-server/test.sh" "$WORK/go-server" "$MEMWISE_CLI"

say "PASS"
