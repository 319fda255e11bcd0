#!/usr/bin/env bash
# Builds and tests the Java binding against an installed memwise:
#
#   bindings/java/test.sh PREFIX
#
#  1. makes sure a JDK (17 or newer), Maven, CMake and a C compiler are there
#     (apt-get installs what is missing, as scripts/setup.sh does);
#  2. builds the JNI library, libmemwise_jni.so, with CMake against PREFIX
#     (find_package(memwise) through CMAKE_PREFIX_PATH) into build/;
#  3. runs `mvn package`: compiles, runs the JUnit 5 tests under -Xcheck:jni
#     with -Dmemwise.library.path pointing at the library just built, and
#     packs the jar with the library inside (/native/<os>-<arch>/);
#  4. fails on any -Xcheck:jni warning;
#  5. builds examples/java against the jar and runs it with nothing but the
#     jar (the library extracted from its resources), comparing its output
#     with `PREFIX/bin/memwise run`.
# Maven downloads its plugins and JUnit into ~/.m2 on the first run; the tests
# themselves need no network. Models: stories260K.gguf from
# $MEMWISE_TEST_MODELS or ../shared/models next to the repository (tests that
# need it skip with a message when it is absent).
# Environment: MEMWISE_JOBS (parallel build jobs, default 2), MEMWISE_SKIP_PACKAGES=1.
set -euo pipefail

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
say() { printf 'java: %s\n' "$*"; }
die() { printf 'java: error: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 PREFIX (an installed memwise: cmake --install build --prefix PREFIX)"
PREFIX="$(cd "$1" && pwd)" || die "no such prefix: $1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
JOBS="${MEMWISE_JOBS:-2}"
BUILD="$HERE/build"
[[ -f "$PREFIX/include/memwise/memwise.h" ]] || die "$PREFIX has no include/memwise/memwise.h"

# ---- 1. tools ----------------------------------------------------------------

# Prints the major version of the JDK at $1 (0 when there is no javac).
jdk_major() {
    local v
    [[ -x "$1/bin/javac" ]] || { echo 0; return; }
    v="$("$1/bin/javac" -version 2>&1 | awk '{print $2}')"
    v="${v%%.*}"
    [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}

# Sets JAVA_HOME to a JDK >= 17: $JAVA_HOME, the javac on PATH, or one in /usr/lib/jvm.
find_jdk() {
    local candidates=() c
    [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME")
    if command -v javac >/dev/null 2>&1; then
        candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")")
    fi
    for c in /usr/lib/jvm/*; do candidates+=("$c"); done
    for c in "${candidates[@]}"; do
        if (($(jdk_major "$c") >= 17)); then
            JAVA_HOME="$c"
            return 0
        fi
    done
    return 1
}

apt_install() {
    if [[ "${MEMWISE_SKIP_PACKAGES:-0}" == 1 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "missing: $* (install them, or a JDK 17+ and Maven, and rerun)"
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "missing packages ($*) and not root without sudo"
        sudo=(sudo -n)
    fi
    say "installing: $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

missing=()
if ! find_jdk; then
    # Debian 12 ships 17; later releases ship a newer default JDK.
    if apt-cache show openjdk-17-jdk-headless >/dev/null 2>&1; then
        missing+=(openjdk-17-jdk-headless)
    else
        missing+=(default-jdk-headless)
    fi
fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
    find_jdk || die "no JDK 17 or newer found after installing ${missing[*]}"
fi
export JAVA_HOME
export PATH="$JAVA_HOME/bin:$PATH"
say "JDK $(jdk_major "$JAVA_HOME") at $JAVA_HOME; $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g')"

# ---- 2. the JNI library ------------------------------------------------------

# A fresh configure each time: PREFIX is usually a new temporary directory.
rm -rf "$BUILD/cmake"
cmake -S "$HERE/src/main/native" -B "$BUILD/cmake" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DJAVA_HOME="$JAVA_HOME" >/dev/null
cmake --build "$BUILD/cmake" -j "$JOBS" >/dev/null
LIB="$BUILD/cmake/libmemwise_jni.so"
[[ -f "$LIB" ]] || die "the build made no $LIB"
PLATFORM="$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m)"
rm -rf "$BUILD/native"
mkdir -p "$BUILD/native/$PLATFORM"
cp "$LIB" "$BUILD/native/$PLATFORM/"
say "built $LIB (resource /native/$PLATFORM/)"

# The JNI library finds libmemwise.so.0 through its RUNPATH (PREFIX/lib);
# LD_LIBRARY_PATH is the documented way for a relocated prefix.
export LD_LIBRARY_PATH="$PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- 3. Maven: compile, test under -Xcheck:jni, jar --------------------------

CLI="$PREFIX/bin/memwise"
[[ -x "$CLI" ]] || CLI=""
rm -rf "$HERE/target"   # no stale classes or reports from an earlier run
LOG="$BUILD/mvn.log"
set +e
(cd "$HERE" && mvn -B -q -Dstyle.color=never package \
    -Dmemwise.library.path="$LIB" -Dmemwise.cli="$CLI" -Dmemwise.native.dir="$BUILD/native") 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e

# One line from the Surefire reports: tests run, skipped, failed.
summary() {
    local f tag total=0 skipped=0 failed=0
    attr() { local v; v="$(sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$tag")"; echo "${v:-0}"; }
    for f in "$HERE"/target/surefire-reports/TEST-*.xml; do
        [[ -f "$f" ]] || continue
        tag="$(grep -o '<testsuite [^>]*' "$f" | head -1)"
        total=$((total + $(attr tests)))
        skipped=$((skipped + $(attr skipped)))
        failed=$((failed + $(attr failures) + $(attr errors)))
    done
    say "JUnit: $total tests, $skipped skipped, $failed failed"
}
summary || true
grep -h "SKIP:" "$HERE"/target/surefire-reports/*-output.txt "$LOG" 2>/dev/null | sort -u || true
((rc == 0)) || die "mvn package failed (exit $rc); reports in $HERE/target/surefire-reports"

# ---- 4. -Xcheck:jni must have nothing to say ---------------------------------

# Surefire puts what the JVM itself prints into *.dumpstream files.
if grep -l "WARNING in native method\|FATAL ERROR in native method" "$LOG" "$HERE"/target/surefire-reports/* 2>/dev/null; then
    grep -h -A4 "in native method" "$LOG" "$HERE"/target/surefire-reports/* 2>/dev/null | head -40
    die "-Xcheck:jni reported a problem in the JNI glue"
fi

JAR="$HERE/target/memwise-0.1.0.jar"
[[ -f "$JAR" ]] || die "no $JAR"
unzip -l "$JAR" 2>/dev/null | grep -q "native/$PLATFORM/libmemwise_jni.so" ||
    jar tf "$JAR" | grep -q "native/$PLATFORM/libmemwise_jni.so" ||
    die "$JAR lacks native/$PLATFORM/libmemwise_jni.so"
say "jar: $JAR (with native/$PLATFORM/libmemwise_jni.so)"

# ---- 5. the example, from the jar alone ---------------------------------------

MODEL=""
for d in "${MEMWISE_TEST_MODELS:-}" "$ROOT/../shared/models"; do
    [[ -n "$d" && -f "$d/stories260K.gguf" ]] && { MODEL="$d/stories260K.gguf"; break; }
done
rm -rf "$BUILD/example"
mkdir -p "$BUILD/example"
javac -Xlint:all -Werror -cp "$JAR" -d "$BUILD/example" "$ROOT/examples/java/Main.java"
if [[ -z "$MODEL" ]]; then
    say "SKIP: stories260K.gguf not found (\$MEMWISE_TEST_MODELS, ../shared/models); example built, not run"
elif [[ -z "$CLI" ]]; then
    say "SKIP: $PREFIX/bin/memwise missing; example built, not run"
else
    PROMPT="Once upon a time"
    got="$(java -Xcheck:jni -cp "$JAR:$BUILD/example" Main "$MODEL" "$PROMPT" 48 2>"$BUILD/example.err" </dev/null)" ||
        { cat "$BUILD/example.err" >&2; die "examples/java failed"; }
    want="$("$CLI" run "$MODEL" -p "$PROMPT" -n 48 --temp 0 2>/dev/null </dev/null)"
    if grep -q "in native method" "$BUILD/example.err"; then
        cat "$BUILD/example.err" >&2
        die "-Xcheck:jni reported a problem running the example"
    fi
    [[ "$got" == "$want" ]] || die "examples/java printed
$got
but memwise run printed
$want"
    say "examples/java (library extracted from the jar) prints what memwise run prints: $(head -c 60 <<<"$got")..."
fi
say "ok"
