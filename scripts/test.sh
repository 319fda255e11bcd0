#!/usr/bin/env bash
# Builds and tests memwise the way CI does:
#   1. scripts/setup.sh (packages, default model)
#   2. Release build in build/ and its CTest suite
#   3. AddressSanitizer + UBSan build in build-asan/ (RelWithDebInfo: Debug is
#      too slow for the real-model tests) and its CTest suite
#   4. ThreadSanitizer build in build-tsan/ of only the tests labelled
#      "concurrency" (the serving tests), and those tests
#   5. CUDA backend (no GPU needed): setup.sh --cuda (toolkit wheels), then
#      configure build-cuda/ with them, compile and link it for sm_80 and sm_90, run
#      the CUDA-side tests (GPU ones report SKIP without a device)
#   6. install build/ to a temporary prefix and run tests/packaging/run.sh
#      (pkg-config and find_package consumers, SONAME, exported symbols), then
#      each bindings/<language>/test.sh PREFIX (Go, Rust, Java)
# Later steps still run after a failed test step so one run shows every
# failure; a failed build skips the steps that need it. Exits non-zero when
# anything failed and ends with one summary line.
# Environment: MEMWISE_JOBS (parallel jobs, default 2), MEMWISE_SKIP_ASAN=1,
# MEMWISE_SKIP_TSAN=1, MEMWISE_SKIP_CUDA=1 (no toolkit download, no CUDA build).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
JOBS="${MEMWISE_JOBS:-2}"
START=$SECONDS
RESULTS=()
FAILED=0

say() { printf '\n==== test.sh: %s\n' "$*"; }

# step NAME COMMAND...: runs the command, records ok/FAIL with its duration.
step() {
    local name="$1" t0=$SECONDS rc
    shift
    say "$name"
    "$@"
    rc=$?
    if ((rc == 0)); then
        RESULTS+=("$name=ok($((SECONDS - t0))s)")
    else
        RESULTS+=("$name=FAIL($((SECONDS - t0))s)")
        FAILED=1
        printf '==== test.sh: %s failed (exit %d)\n' "$name" "$rc"
    fi
    return "$rc"
}

skip() { RESULTS+=("$1=skipped"); FAILED=1; printf '==== test.sh: %s skipped: %s\n' "$1" "$2"; }

summary() {
    local verdict=PASS
    ((FAILED)) && verdict=FAIL
    printf '\n==== test.sh SUMMARY: %s -> %s in %ds\n' "${RESULTS[*]}" "$verdict" $((SECONDS - START))
    exit "$FAILED"
}

# configure DIR ARGS...: a Ninja generator when ninja exists (only on first
# configure: an existing cache keeps the generator it was made with).
configure() {
    local dir="$1"
    shift
    local gen=()
    if [[ ! -f "$dir/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
        gen=(-G Ninja)
    fi
    cmake -S "$ROOT" -B "$dir" "${gen[@]}" "$@"
}

build_release() {
    local extra=()
    # Keep the kernel benchmarks compiling once they exist (libbenchmark-dev comes from setup.sh).
    [[ -f "$ROOT/bench/CMakeLists.txt" ]] && extra+=(-DMEMWISE_BUILD_BENCH=ON)
    configure build -DCMAKE_BUILD_TYPE=Release -DMEMWISE_BUILD_TESTS=ON -DMEMWISE_SANITIZE=OFF "${extra[@]}" &&
        cmake --build build -j "$JOBS"
}

build_asan() {
    configure build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMWISE_BUILD_TESTS=ON -DMEMWISE_SANITIZE=ON &&
        cmake --build build-asan -j "$JOBS"
}

run_ctest() {
    ctest --test-dir "$1" --output-on-failure --no-tests=error -j "$JOBS"
}

run_ctest_asan() {
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_ctest build-asan
}

# The CUDA backend compiled and linked against the wheel toolkit: only what it
# needs (no CLI), then the tests that run without a GPU and the GPU tests' SKIP.
CUDA_ROOT="${MEMWISE_CUDA_DIR:-${HOME:-/root}/.cache/memwise/cuda-13}/site/nvidia/cu13"
build_cuda() {
    configure build-cuda -DCMAKE_BUILD_TYPE=Release -DMEMWISE_CUDA=ON -DMEMWISE_BUILD_CLI=OFF \
        -DCMAKE_CUDA_COMPILER="$CUDA_ROOT/bin/nvcc" -DCUDAToolkit_ROOT="$CUDA_ROOT" \
        -DCMAKE_CUDA_ARCHITECTURES="80;90" &&
        cmake --build build-cuda -j "$JOBS" --target memwise test_cuda_kernels test_backend_select test_cuda_block_decode \
            test_step_executor
}
run_ctest_cuda() {
    LD_LIBRARY_PATH="$CUDA_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        ctest --test-dir build-cuda --output-on-failure --no-tests=error -R 'test_cuda_|test_backend_select|test_step_executor'
}

# Only the concurrency tests' targets: the rest gains nothing from TSan.
TSAN_TARGETS=(test_serving)
build_tsan() {
    configure build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMWISE_BUILD_TESTS=ON -DMEMWISE_SANITIZE=thread \
        -DMEMWISE_BUILD_CLI=OFF &&
        cmake --build build-tsan -j "$JOBS" --target "${TSAN_TARGETS[@]}"
}

run_ctest_tsan() {
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        ctest --test-dir build-tsan --output-on-failure --no-tests=error -L concurrency -j "$JOBS"
}

PREFIX=""
cleanup() { [[ -n "$PREFIX" ]] && rm -rf "$PREFIX"; }
trap cleanup EXIT

install_release() {
    PREFIX="$(mktemp -d "${TMPDIR:-/tmp}/memwise-prefix.XXXXXX")" &&
        cmake --install build --prefix "$PREFIX"
}

if ! step setup bash scripts/setup.sh; then
    summary   # without packages nothing else can work
fi

if step release-build build_release; then
    step release-tests run_ctest build
    if step install install_release; then
        step packaging bash tests/packaging/run.sh "$PREFIX"
        # Each language binding tests itself against the installed prefix.
        for binding_test in bindings/*/test.sh; do
            [[ -f "$binding_test" ]] || continue
            name="binding-$(basename "$(dirname "$binding_test")")"
            step "$name" bash "$binding_test" "$PREFIX"
        done
    else
        skip packaging "install failed"
    fi
else
    skip release-tests "release build failed"
    skip packaging "release build failed"
fi

# The toolkit wheels are their own step: a failed download fails the CUDA
# steps only.
if [[ "${MEMWISE_SKIP_CUDA:-0}" == 1 ]]; then
    RESULTS+=("cuda=skipped(MEMWISE_SKIP_CUDA=1)")
elif ! step cuda-setup env MEMWISE_SKIP_PACKAGES=1 MEMWISE_SKIP_MODEL=1 bash scripts/setup.sh --cuda; then
    skip cuda-build "CUDA toolkit setup failed"
elif step cuda-build build_cuda; then
    step cuda-tests run_ctest_cuda
else
    skip cuda-tests "CUDA build failed"
fi

if [[ "${MEMWISE_SKIP_ASAN:-0}" == 1 ]]; then
    RESULTS+=("asan=skipped(MEMWISE_SKIP_ASAN=1)")
elif step asan-build build_asan; then
    step asan-tests run_ctest_asan
else
    skip asan-tests "asan build failed"
fi

if [[ "${MEMWISE_SKIP_TSAN:-0}" == 1 ]]; then
    RESULTS+=("tsan=skipped(MEMWISE_SKIP_TSAN=1)")
elif step tsan-build build_tsan; then
    step tsan-tests run_ctest_tsan
else
    skip tsan-tests "tsan build failed"
fi

summary
