# libabigail helpers shared by abi/update-baseline.sh and tests/packaging/run.sh
# (sourced, not run): both must read the library the same way for abidiff to
# compare like with like.

# mw_abi_ensure_tools: makes abidw and abidiff available, installing the Debian
# package abigail-tools when they are missing (as root, or with sudo that needs
# no password). Returns non-zero, with a message, when that is impossible.
mw_abi_ensure_tools() {
    command -v abidw >/dev/null 2>&1 && command -v abidiff >/dev/null 2>&1 && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        printf 'abi: abidw/abidiff missing and no apt-get: install libabigail (abigail-tools)\n' >&2
        return 1
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null 2>&1; then
            printf 'abi: abidw/abidiff missing; not root and no sudo: apt-get install abigail-tools\n' >&2
            return 1
        fi
        sudo=(sudo -n)
    fi
    printf 'abi: installing abigail-tools (abidw, abidiff)\n' >&2
    local log
    log="$(mktemp "${TMPDIR:-/tmp}/memwise-abigail-apt.XXXXXX")"
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
           "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
               apt-get install -y -q --no-install-recommends abigail-tools; } >"$log" 2>&1 </dev/null; then
        cat "$log" >&2
        rm -f "$log"
        printf 'abi: apt-get install abigail-tools failed\n' >&2
        return 1
    fi
    rm -f "$log"
    command -v abidw >/dev/null 2>&1 && command -v abidiff >/dev/null 2>&1
}

# mw_abi_dump LIBRARY PUBLIC_HEADERS_DIR OUT.xml: writes the ABI of an
# installed libmemwise as libabigail XML, reduced to what a caller sees: the
# exported mw_* functions and the public header's types reachable from them.
# The structs behind the opaque handles (struct mw_model & co., defined in
# c_api.cpp) stay declaration-only, so changing them is not an ABI change.
# Paths and DT_NEEDED are left out so the file does not depend on the build
# machine or on which libraries the engine happens to link.
mw_abi_dump() {
    local lib="$1" headers="$2" out="$3"
    # Without DWARF abidw would see symbol names only and miss every type change.
    if ! readelf -S --wide "$lib" | grep -q '\.debug_info'; then
        printf 'abi: %s has no DWARF (.debug_info): installed with --strip, or built without the -g that CMakeLists.txt adds?\n' "$lib" >&2
        return 1
    fi
    abidw --exported-interfaces-only --headers-dir "$headers" --drop-private-types \
          --no-corpus-path --no-comp-dir-path --short-locs --no-elf-needed \
          --out-file "$out" "$lib"
}

# mw_abi_soname LIBRARY: prints the DT_SONAME of an ELF shared library.
mw_abi_soname() {
    readelf -d "$1" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p'
}
