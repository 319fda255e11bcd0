#!/usr/bin/env bash
# Packaging test: checks an installed memwise the way a downstream user meets it.
#   usage: tests/packaging/run.sh PREFIX [MODEL.gguf]
# PREFIX is what `cmake --install build --prefix PREFIX` filled. MODEL defaults
# to stories260K.gguf from $MEMWISE_TEST_MODELS or ../shared/models next to the
# source tree; without it the two consumers are built but not run (SKIP).
# Checks:
#   - memwise.h compiles alone as C99 and as C++ with -Wall -Wextra -pedantic -Werror
#   - consumer_c.c builds with `cc $(pkg-config --cflags --libs memwise)`
#   - consumer_cpp.cpp builds with CMake find_package(memwise 0.1) + memwise::memwise
#   - both generate the same non-empty 16 greedy tokens from the model
#   - the library's SONAME is libmemwise.so.0 and it exports only mw_* symbols,
#     including every MW_API function the header declares
# Exits non-zero on any failure, listing every failed check.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX="${1:?usage: run.sh PREFIX [MODEL.gguf]}"
PREFIX="$(cd "$PREFIX" && pwd)"
MODEL="${2:-}"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
FAILS=()

say() { printf 'packaging: %s\n' "$*"; }
fail() { printf 'packaging: FAIL: %s\n' "$*"; FAILS+=("$1"); }
ok() { printf 'packaging: ok: %s\n' "$*"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/memwise-packaging.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# ---- where things were installed -------------------------------------------
PC_FILE="$(find "$PREFIX" -path '*/pkgconfig/memwise.pc' -print -quit)"
if [[ -z "$PC_FILE" ]]; then
    fail "memwise.pc" "no pkgconfig/memwise.pc under $PREFIX"
    printf 'packaging: FAILED: %s\n' "${FAILS[*]}"
    exit 1
fi
LIBDIR="$(dirname "$(dirname "$PC_FILE")")"
HEADER="$PREFIX/include/memwise/memwise.h"
say "prefix $PREFIX, libdir $LIBDIR"
[[ -f "$HEADER" ]] || fail "header" "$HEADER not installed"
[[ -f "$LIBDIR/cmake/memwise/memwiseConfig.cmake" ]] || fail "cmake-config" "memwiseConfig.cmake not installed in $LIBDIR/cmake/memwise"

# ---- the header alone -------------------------------------------------------
printf '#include <memwise/memwise.h>\n' >"$WORK/header_only.c"
cp "$WORK/header_only.c" "$WORK/header_only.cpp"
if "$CC" -std=c99 -Wall -Wextra -pedantic -Werror -I"$PREFIX/include" -c "$WORK/header_only.c" -o "$WORK/h.o"; then
    ok "memwise.h compiles alone as C99"
else
    fail "header-c99" "memwise.h does not compile alone with -std=c99 -Wall -Wextra -pedantic -Werror"
fi
if "$CXX" -std=c++11 -Wall -Wextra -pedantic -Werror -I"$PREFIX/include" -c "$WORK/header_only.cpp" -o "$WORK/hpp.o"; then
    ok "memwise.h compiles alone as C++11"
else
    fail "header-cxx" "memwise.h does not compile alone as C++11 with -Wall -Wextra -pedantic -Werror"
fi

# ---- the shared library: SONAME and exported symbols --------------------------
LIB="$LIBDIR/libmemwise.so"
if [[ ! -e "$LIB" ]]; then
    fail "library" "$LIB not installed"
else
    soname="$(readelf -d "$LIB" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')"
    if [[ "$soname" == libmemwise.so.0 ]]; then
        ok "SONAME $soname"
    else
        fail "soname" "SONAME is '${soname}', want libmemwise.so.0"
    fi
    [[ -e "$LIBDIR/libmemwise.so.0" ]] || fail "soname-link" "$LIBDIR/libmemwise.so.0 (the SONAME link) missing"

    nm -D --defined-only "$LIB" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u >"$WORK/exports"
    grep -v '^mw_' "$WORK/exports" >"$WORK/foreign" || true
    if [[ -s "$WORK/foreign" ]]; then
        fail "exports" "$(wc -l <"$WORK/foreign") exported symbols outside mw_*:"
        sed 's/^/    /' "$WORK/foreign"
    else
        ok "exports only mw_* ($(wc -l <"$WORK/exports") symbols)"
    fi
    # Every function the header declares with MW_API must be defined.
    if [[ -f "$HEADER" ]]; then
        grep -E '^MW_API ' "$HEADER" | grep -oE '\bmw_[a-z0-9_]+[[:space:]]*\(' | tr -d ' (' | sort -u >"$WORK/declared"
        comm -23 "$WORK/declared" "$WORK/exports" >"$WORK/missing"
        if [[ -s "$WORK/missing" ]]; then
            fail "missing-exports" "header functions not exported by the library:"
            sed 's/^/    /' "$WORK/missing"
        else
            ok "all $(wc -l <"$WORK/declared") MW_API functions of the header are exported"
        fi
    fi
fi

# ---- consumer 1: C99 via pkg-config -------------------------------------------
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
C_BIN="$WORK/consumer_c"
if pc_flags="$(pkg-config --cflags --libs memwise)"; then
    say "pkg-config --cflags --libs memwise: $pc_flags"
    # shellcheck disable=SC2086  # the flags are meant to split
    if "$CC" -std=c99 -Wall -Wextra -pedantic -Werror "$HERE/consumer_c.c" -o "$C_BIN" $pc_flags; then
        ok "consumer_c built with pkg-config"
    else
        fail "consumer-c-build" "consumer_c.c does not build with pkg-config flags"
        C_BIN=""
    fi
else
    fail "pkg-config" "pkg-config --cflags --libs memwise failed (PKG_CONFIG_PATH=$PKG_CONFIG_PATH)"
    C_BIN=""
fi

# ---- consumer 2: C++ via CMake find_package ---------------------------------
CPP_BIN="$WORK/cpp-build/consumer_cpp"
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
if cmake -S "$HERE" -B "$WORK/cpp-build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 &&
    cmake --build "$WORK/cpp-build" >>"$WORK/cmake.log" 2>&1; then
    ok "consumer_cpp built with find_package(memwise 0.1) and memwise::memwise"
else
    cat "$WORK/cmake.log"
    fail "consumer-cpp-build" "consumer_cpp.cpp does not build with find_package(memwise)"
    CPP_BIN=""
fi

# ---- run both on the same model ---------------------------------------------
if [[ -z "$MODEL" ]]; then
    for d in "${MEMWISE_TEST_MODELS:-}" "$ROOT/../shared/models"; do
        if [[ -n "$d" && -f "$d/stories260K.gguf" ]]; then
            MODEL="$d/stories260K.gguf"
            break
        fi
    done
fi
if [[ -z "$MODEL" ]]; then
    say "SKIP: stories260K.gguf not found (\$MEMWISE_TEST_MODELS, ../shared/models); consumers not run"
elif [[ -n "$C_BIN" && -n "$CPP_BIN" ]]; then
    say "running both consumers on $MODEL"
    export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # Run against the installed copy, not a build tree.
    resolved="$(ldd "$C_BIN" | awk '$1 ~ /^libmemwise\.so/ { print $3 }')"
    if [[ "$(readlink -f "$resolved")" != "$(readlink -f "$LIBDIR/libmemwise.so.0")" ]]; then
        fail "consumer-c-lib" "consumer_c loads '$resolved', not the installed $LIBDIR/libmemwise.so.0"
    fi
    "$C_BIN" "$MODEL" >"$WORK/out_c"
    c_rc=$?
    "$CPP_BIN" "$MODEL" >"$WORK/out_cpp"
    cpp_rc=$?
    ((c_rc == 0)) || fail "consumer-c-run" "consumer_c exited with $c_rc"
    ((cpp_rc == 0)) || fail "consumer-cpp-run" "consumer_cpp exited with $cpp_rc"
    say "consumer_c output:"
    sed 's/^/    /' "$WORK/out_c"
    if ((c_rc == 0 && cpp_rc == 0)); then
        n_tokens="$(grep -c $'^[0-9]\+\t' "$WORK/out_c")"
        # Text of the token lines, ids stripped: must not be all empty pieces.
        text="$(grep $'^[0-9]\+\t' "$WORK/out_c" | cut -f2- | tr -d '\n')"
        if [[ "$n_tokens" -ne 16 ]]; then
            fail "consumer-output" "consumer_c printed $n_tokens token lines, want 16"
        elif [[ -z "${text//[[:space:]]/}" ]]; then
            fail "consumer-output" "the 16 tokens decode to no visible text"
        elif ! cmp -s "$WORK/out_c" "$WORK/out_cpp"; then
            fail "consumer-compare" "consumer_c and consumer_cpp outputs differ:"
            diff "$WORK/out_c" "$WORK/out_cpp" | sed 's/^/    /'
        else
            ok "consumer_c and consumer_cpp print the same 16 tokens"
        fi
    fi
fi

if ((${#FAILS[@]})); then
    printf 'packaging: FAILED: %s\n' "${FAILS[*]}"
    exit 1
fi
say "all checks passed"
