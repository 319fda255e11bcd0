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
#   - the library's SONAME is libmemwise.so.MAJOR (project version in
#     CMakeLists.txt, also memwise.pc's Version) and it exports only mw_* symbols,
#     including every MW_API function the header declares
#   - the exported names equal the checked-in list abi/memwise.symbols
#   - abidiff finds no ABI change against abi/libmemwise.abi.xml other than
#     added functions (or compatible enum additions), unless the SONAME changed;
#     abigail-tools is installed with apt-get when missing
#   - memwise.pc: shared and --static flags; the CMake package's version rules
#     (with 0.1.0: find_package 0.1 and 0.1.0 pass, 0.0, 0.2, 0.1.1 and 1.0 fail)
#     and its imported target (tests/packaging/version_check)
# To change the API on purpose: abi/README.md (abi/update-baseline.sh).
# Exits non-zero on any failure, listing every failed check.
set -uo pipefail
export LC_ALL=C   # one byte order for sort and comm, whatever the locale

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX="${1:?usage: run.sh PREFIX [MODEL.gguf]}"
PREFIX="$(cd "$PREFIX" && pwd)"
MODEL="${2:-}"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
FAILS=()
# shellcheck source=../../abi/abigail.sh
source "$ROOT/abi/abigail.sh"

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
# The version the source tree declares; the installed files must agree with it.
VERSION="$(sed -n 's/^project(memwise VERSION \([0-9]*\.[0-9]*\.[0-9]*\).*/\1/p' "$ROOT/CMakeLists.txt")"
SONAME="libmemwise.so.${VERSION%%.*}"
say "prefix $PREFIX, libdir $LIBDIR, version ${VERSION:-?}"
[[ -n "$VERSION" ]] || fail "version" "no 'project(memwise VERSION X.Y.Z' in $ROOT/CMakeLists.txt"
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
    if [[ "$soname" == "$SONAME" ]]; then
        ok "SONAME $soname"
    else
        fail "soname" "SONAME is '${soname}', want $SONAME (version $VERSION)"
    fi
    [[ -e "$LIBDIR/$SONAME" ]] || fail "soname-link" "$LIBDIR/$SONAME (the SONAME link) missing"

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

    # The exported names against the checked-in list: a name appearing or
    # vanishing must be a decision recorded in the same commit.
    LIST="$ROOT/abi/memwise.symbols"
    if [[ ! -f "$LIST" ]]; then
        fail "symbol-list" "$LIST missing (abi/update-baseline.sh writes it)"
    elif ! sort -u "$LIST" | cmp -s - "$LIST"; then
        fail "symbol-list" "abi/memwise.symbols is not sorted and unique (LC_ALL=C sort -u)"
    else
        comm -13 "$LIST" "$WORK/exports" >"$WORK/unlisted"
        comm -23 "$LIST" "$WORK/exports" >"$WORK/vanished"
        if [[ -s "$WORK/unlisted" || -s "$WORK/vanished" ]]; then
            fail "symbol-list" "exported names differ from abi/memwise.symbols (+ exported but not listed, - listed but not exported):"
            sed 's/^/    + /' "$WORK/unlisted"
            sed 's/^/    - /' "$WORK/vanished"
            say "if the change is intended, record it: abi/update-baseline.sh PREFIX (see abi/README.md)"
        else
            ok "exported names equal abi/memwise.symbols ($(wc -l <"$LIST"))"
        fi
    fi

    # The ABI against the checked-in baseline (libabigail). abidiff exit status
    # bits: 1 error, 2 usage error, 4 ABI change, 8 incompatible change
    # (something removed). A type change (a field's type, an option struct's
    # layout) only sets 4, so the verdict comes from a run that hides added
    # functions: any change left is a break. Compatible by libabigail's own
    # judgement, and so not reported: added enumerators.
    BASELINE="$ROOT/abi/libmemwise.abi.xml"
    if [[ ! -f "$BASELINE" ]]; then
        fail "abi" "$BASELINE missing (abi/update-baseline.sh writes it)"
    elif ! mw_abi_ensure_tools; then
        fail "abi" "abidw/abidiff (Debian package abigail-tools) unavailable"
    elif ! mw_abi_dump "$LIB" "$PREFIX/include/memwise" "$WORK/current.abi.xml"; then
        fail "abi" "abidw could not read the ABI of $LIB"
    else
        base_soname="$(sed -n "s/^<abi-corpus [^>]* soname='\([^']*\)'.*/\1/p" "$BASELINE" | head -n1)"
        abidiff --no-show-locs --no-added-syms "$BASELINE" "$WORK/current.abi.xml" >"$WORK/abi-breaks.txt" 2>&1
        verdict=$?
        abidiff --no-show-locs "$BASELINE" "$WORK/current.abi.xml" >"$WORK/abi-all.txt" 2>&1
        all=$?
        if [[ -z "$base_soname" ]]; then
            fail "abi" "no soname='...' in the first line of abi/libmemwise.abi.xml"
        elif ((verdict & 3)); then
            fail "abi" "abidiff failed (exit $verdict):"
            sed 's/^/    /' "$WORK/abi-breaks.txt"
        elif [[ "$soname" != "$base_soname" ]]; then
            ok "SONAME changed ($base_soname -> $soname): ABI breaks allowed (abidiff exit $all); record the new ABI with abi/update-baseline.sh"
            sed 's/^/    /' "$WORK/abi-all.txt"
        elif ((verdict != 0)); then
            fail "abi" "ABI break against abi/libmemwise.abi.xml with the SONAME unchanged (abidiff exit $verdict$( ((verdict & 8)) && echo ', incompatible')):"
            sed 's/^/    /' "$WORK/abi-breaks.txt"
            say "either undo the change, or bump the SONAME (project VERSION major) and run abi/update-baseline.sh; a field appended to a struct_size struct is compatible by the API's rules but still needs abi/update-baseline.sh (see abi/README.md)"
        elif ((all != 0)); then
            ok "ABI compatible with abi/libmemwise.abi.xml; additions not yet in the baseline (abi/update-baseline.sh records them):"
            sed -n 's/^ *\[A\] /    /p' "$WORK/abi-all.txt"
        else
            ok "ABI identical to abi/libmemwise.abi.xml"
        fi
    fi
fi

# ---- consumer 1: C99 via pkg-config -------------------------------------------
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
C_BIN="$WORK/consumer_c"
if pc_flags="$(pkg-config --cflags --libs memwise)"; then
    say "pkg-config --cflags --libs memwise: $pc_flags"
    # Shared linking: the header directory and -lmemwise, none of the private
    # dependencies (the library's DT_NEEDED brings those).
    pc_want="-I$(pkg-config --variable=includedir memwise) -L$(pkg-config --variable=libdir memwise) -lmemwise"
    if [[ "$(echo $pc_flags)" == "$pc_want" && "$(cd "$(pkg-config --variable=includedir memwise)" && pwd)" == "$PREFIX/include" ]]; then
        ok "pkg-config shared flags are exactly: $pc_want"
    else
        fail "pkg-config-flags" "pkg-config --cflags --libs memwise gives '$pc_flags', want '$pc_want' (includedir $PREFIX/include)"
    fi
    # Static linking adds the private dependencies (Requires.private, Libs.private).
    pc_version="$(pkg-config --modversion memwise)"
    [[ "$pc_version" == "$VERSION" ]] || fail "pkg-config-version" "memwise.pc says Version $pc_version, the source tree $VERSION"
    if pc_static="$(pkg-config --static --libs memwise)"; then
        missing_static=""
        for flag in -lmemwise -lzstd -lpcre2-8 -lmimalloc -lstdc++; do
            [[ " $pc_static " == *" $flag "* ]] || missing_static+=" $flag"
        done
        if [[ -z "$missing_static" ]]; then
            ok "pkg-config --static --libs memwise: $pc_static"
        else
            fail "pkg-config-static" "pkg-config --static --libs memwise ('$pc_static') lacks$missing_static"
        fi
    else
        fail "pkg-config-static" "pkg-config --static --libs memwise failed"
    fi
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

# ---- the CMake package's version rules ----------------------------------------
if cmake -S "$HERE/version_check" -B "$WORK/version-check" -DMEMWISE_PREFIX="$PREFIX" \
        -DMEMWISE_VERSION="$VERSION" >"$WORK/version.log" 2>&1; then
    ok "find_package(memwise) version rules hold for $VERSION; memwise::memwise is the installed shared library"
    grep -o 'find_package(memwise [^)]*) with .*' "$WORK/version.log" | sed 's/^/    /'
else
    sed 's/^/    /' "$WORK/version.log"
    fail "cmake-version" "the installed CMake package breaks a version rule (above)"
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
    if [[ "$(readlink -f "$resolved")" != "$(readlink -f "$LIBDIR/$SONAME")" ]]; then
        fail "consumer-c-lib" "consumer_c loads '$resolved', not the installed $LIBDIR/$SONAME"
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
