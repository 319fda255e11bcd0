#!/usr/bin/env bash
# Records the ABI of libmemwise as the baseline that tests/packaging/run.sh
# checks against: abi/memwise.symbols (exported names) and
# abi/libmemwise.abi.xml (abidw: functions and the public types they use).
# Run it on purpose, after reviewing what changed (see abi/README.md), and
# commit both files with the change that made them differ.
#   usage: abi/update-baseline.sh [PREFIX]
# PREFIX is an installed memwise (`cmake --install BUILD --prefix PREFIX`, not
# --strip). Without it the library is built here (Release, build-abi-baseline/)
# and installed into a temporary prefix.
set -euo pipefail
export LC_ALL=C   # one byte order for sort and comm, whatever the locale

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=abigail.sh
source "$HERE/abigail.sh"

say() { printf 'update-baseline: %s\n' "$*"; }
die() { printf 'update-baseline: error: %s\n' "$*" >&2; exit 1; }

mw_abi_ensure_tools || die "abidw/abidiff unavailable"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/memwise-abi.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

if [[ $# -ge 1 ]]; then
    PREFIX="$(cd "$1" && pwd)"
else
    BUILD="$ROOT/build-abi-baseline"
    say "building the library in $BUILD"
    gen=()
    [[ ! -f "$BUILD/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
    cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
          -DMEMWISE_BUILD_TESTS=OFF -DMEMWISE_BUILD_CLI=OFF >/dev/null
    cmake --build "$BUILD" --target memwise -j "${MEMWISE_JOBS:-2}"
    PREFIX="$TMP/prefix"
    cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
fi

PC_FILE="$(find "$PREFIX" -path '*/pkgconfig/memwise.pc' -print -quit)"
[[ -n "$PC_FILE" ]] || die "no pkgconfig/memwise.pc under $PREFIX: not an installed memwise"
LIBDIR="$(dirname "$(dirname "$PC_FILE")")"
LIB="$LIBDIR/libmemwise.so"
HEADERS="$PREFIX/include/memwise"
[[ -e "$LIB" && -f "$HEADERS/memwise.h" ]] || die "$LIB or $HEADERS/memwise.h missing"

# ---- exported names ------------------------------------------------------------
nm -D --defined-only "$LIB" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u >"$TMP/symbols"
if grep -v '^mw_' "$TMP/symbols" >"$TMP/foreign"; then
    sed 's/^/    /' "$TMP/foreign" >&2
    die "the library exports names outside mw_* (above); fix src/api/memwise.map, not the list"
fi
grep -E '^MW_API ' "$HEADERS/memwise.h" | grep -oE '\bmw_[a-z0-9_]+[[:space:]]*\(' | tr -d ' (' | sort -u >"$TMP/declared"
if ! cmp -s "$TMP/declared" "$TMP/symbols"; then
    say "warning: the header's MW_API functions and the exports differ (< header only, > library only):"
    diff "$TMP/declared" "$TMP/symbols" | grep '^[<>]' | sed 's/^/    /' || true
fi

# ---- ABI --------------------------------------------------------------------------
mw_abi_dump "$LIB" "$HEADERS" "$TMP/abi.xml" || die "abidw failed on $LIB"
soname="$(mw_abi_soname "$LIB")"
if [[ -f "$HERE/libmemwise.abi.xml" ]]; then
    rc=0
    abidiff --no-show-locs "$HERE/libmemwise.abi.xml" "$TMP/abi.xml" >"$TMP/diff.txt" || rc=$?
    say "changes against the previous baseline (abidiff exit $rc):"
    sed 's/^/    /' "$TMP/diff.txt"
fi

cp "$TMP/symbols" "$HERE/memwise.symbols"
cp "$TMP/abi.xml" "$HERE/libmemwise.abi.xml"
say "wrote abi/memwise.symbols ($(wc -l <"$HERE/memwise.symbols") names) and abi/libmemwise.abi.xml (SONAME $soname) from $LIB"
