#!/usr/bin/env bash
# One run on a machine with an NVIDIA GPU does all the CUDA backend's checks
# and benchmarks, and writes OUT/summary.md (plus every log and raw JSON):
#   1. the machine: GPU, driver, toolkit (nvidia-smi, nvcc);
#   2. binaries: built there (build-gpu/, -DMEMWISE_CUDA=ON for this GPU), or
#      taken from a bundle prepared on another machine (--bundle, below);
#   3. tests on the GPU: CUDA kernels against CPU references (test_cuda_kernels),
#      backend selection and a CPU + CUDA engine on one model (test_backend_select),
#      the CUDA executor against the CPU one step by step (test_step_executor),
#      greedy agreement with llama.cpp and the shared-batch serving checks
#      (test_api_oracle) and KL / top-1 against llama.cpp's distributions
#      (test_teacher_forced), both with MEMWISE_TEST_BACKEND=cuda;
#   4. benchmarks, memwise CUDA against llama.cpp's CUDA build on the same file
#      (when LLAMA_CPP_CUDA_BIN is given): prefill and decode tokens/s at batch 1
#      and 64 concurrent requests, and peak device memory (nvidia-smi, sampled),
#      for SmolLM2-135M (the real file when found, else its geometry, synthetic)
#      and the TinyLlama-1.1B geometry (synthetic, Q4_0); batch 1 again with
#      CUDA graphs off.
#
# Usage:
#   bench/gpu-check.sh [OUT_DIR]                 build here and run (default OUT: gpu-check-out)
#   bench/gpu-check.sh --prepare BUNDLE          on a machine WITHOUT a GPU: build for sm_80 and
#                                                sm_90 with setup.sh's toolkit wheels and put the
#                                                binaries, the shared libraries they need (not
#                                                cuBLASLt) and stories260K.gguf in BUNDLE (~30 MB)
#   bench/gpu-check.sh --bundle BUNDLE [OUT_DIR] on the GPU machine: run from BUNDLE (for an
#                                                image without mimalloc, zstd, PCRE2 or CMocka);
#                                                libcublasLt.so.13 is found in the toolkit or in
#                                                Python's nvidia packages
# Environment:
#   CUDA_ROOT           toolkit directory (default: nvcc on PATH, $CUDA_HOME,
#                       /usr/local/cuda, then setup.sh's wheel toolkit)
#   LLAMA_CPP_CUDA_BIN  directory with llama-bench and llama-batched-bench built
#                       with CUDA; without it the llama.cpp columns say "not run"
#   MEMWISE_TEST_MODELS directory with SmolLM2-135M-Instruct.Q4_1.gguf and
#                       stories260K.gguf (also looked for in the bundle, in
#                       ../shared/models and ~/.cache/memwise/models)
#   JOBS                build jobs (default: all cores)
# Exit status: 0 when every test passed, 1 when one failed, 2 without a GPU or toolkit.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
JOBS="${JOBS:-$(nproc)}"
TARGETS=(memwise memwise_cli gpu_bench make_synthetic_model test_cuda_kernels test_backend_select
         test_cuda_block_decode test_step_executor test_api_oracle test_teacher_forced)
# Where each program lands in a build tree (and flat in a bundle's bin/).
declare -A BUILD_PATH=(
    [gpu_bench]=bench/gpu_bench [make_synthetic_model]=bench/make_synthetic_model [memwise]=tools/cli/memwise
    [test_cuda_kernels]=tests/cuda/test_cuda_kernels [test_backend_select]=tests/cuda/test_backend_select
    [test_cuda_block_decode]=tests/cuda/test_cuda_block_decode [test_step_executor]=tests/cuda/test_step_executor
    [test_api_oracle]=tests/api/test_api_oracle [test_teacher_forced]=tests/model/test_teacher_forced)

if [[ "${1:-}" == --prepare ]]; then
    [[ -n "${2:-}" ]] || { echo "usage: bench/gpu-check.sh --prepare BUNDLE" >&2; exit 2; }
    BUNDLE="$(mkdir -p "$2" && cd "$2" && pwd)"
    TK="${CUDA_ROOT:-$HOME/.cache/memwise/cuda-13/site/nvidia/cu13}"
    [[ -x "$TK/bin/nvcc" ]] || { echo "no nvcc in $TK: run scripts/setup.sh --cuda first" >&2; exit 2; }
    cmake -S "$ROOT" -B "$ROOT/build-gpu-bundle" -DCMAKE_BUILD_TYPE=Release -DMEMWISE_CUDA=ON -DMEMWISE_BUILD_BENCH=ON \
        -DCMAKE_CUDA_COMPILER="$TK/bin/nvcc" -DCUDAToolkit_ROOT="$TK" -DCMAKE_CUDA_ARCHITECTURES="80;90" \
        >/dev/null &&
        cmake --build "$ROOT/build-gpu-bundle" -j "$JOBS" --target "${TARGETS[@]}" || exit 1
    rm -rf "$BUNDLE/bin" "$BUNDLE/lib" "$BUNDLE/models"
    mkdir -p "$BUNDLE/bin" "$BUNDLE/lib" "$BUNDLE/models"
    for t in "${!BUILD_PATH[@]}"; do cp "$ROOT/build-gpu-bundle/${BUILD_PATH[$t]}" "$BUNDLE/bin/"; done
    cp -P "$ROOT/build-gpu-bundle/src/"libmemwise.so* "$BUNDLE/lib/"
    # The shared libraries the programs need beyond the C library and CUDA's own.
    for lib in $(ldd "$BUNDLE"/bin/* | awk '/=> \// {print $3}' | sort -u); do
        case "$(basename "$lib")" in
            libmimalloc*|libzstd*|libpcre2*|libcmocka*) cp -L "$lib" "$BUNDLE/lib/" ;;
        esac
    done
    for d in "${MEMWISE_TEST_MODELS:-}" "$ROOT/../shared/models" "$HOME/.cache/memwise/models"; do
        [[ -n "$d" && -f "$d/stories260K.gguf" ]] && { cp "$d/stories260K.gguf" "$BUNDLE/models/"; break; }
    done
    echo "bundle ready: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1)); on the GPU machine: bench/gpu-check.sh --bundle $BUNDLE OUT"
    exit 0
fi

BUNDLE=""
if [[ "${1:-}" == --bundle ]]; then
    [[ -d "${2:-}/bin" ]] || { echo "usage: bench/gpu-check.sh --bundle BUNDLE [OUT_DIR] (BUNDLE/bin missing)" >&2; exit 2; }
    BUNDLE="$(cd "$2" && pwd)"
    shift 2
fi
OUT="$(mkdir -p "${1:-gpu-check-out}" && cd "${1:-gpu-check-out}" && pwd)"
SUMMARY="$OUT/summary.md"
FAILED=0
START=$SECONDS

note() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
: >"$SUMMARY"
note "# memwise CUDA check ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
note ""

# ---- 1. the machine ------------------------------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >"$OUT/nvidia-smi.txt" 2>&1; then
    note "SKIP: no NVIDIA driver or GPU here (nvidia-smi missing or failing); nothing run."
    exit 2
fi
GPU="$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader -i 0)"
CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader -i 0 | tr -d ' .')"
note "- GPU: $GPU"

find_nvcc() {
    local c
    for c in "${CUDA_ROOT:+$CUDA_ROOT/bin/nvcc}" "$(command -v nvcc 2>/dev/null)" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" \
             /usr/local/cuda/bin/nvcc "$HOME/.cache/memwise/cuda-13/site/nvidia/cu13/bin/nvcc"; do
        [[ -n "$c" && -x "$c" ]] && { printf '%s' "$c"; return 0; }
    done
    return 1
}
# ---- 2. binaries -------------------------------------------------------------------
note ""
note "## Binaries"
if [[ -n "$BUNDLE" ]]; then
    # cuBLASLt comes from this machine: a toolkit, or Python's nvidia wheels.
    LT="$(find ${CUDA_ROOT:+"$CUDA_ROOT"} /usr/local /opt /usr/lib -name 'libcublasLt.so.13*' 2>/dev/null | head -n 1)"
    if [[ -z "$LT" ]]; then
        note "SKIP: libcublasLt.so.13 not found on this machine (toolkit or Python nvidia-cublas)."
        exit 2
    fi
    export LD_LIBRARY_PATH="$BUNDLE/lib:$(dirname "$LT")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    bin() { printf '%s' "$BUNDLE/bin/$(basename "${BUILD_PATH[$1]}")"; }
    export MEMWISE_TEST_MODELS="${MEMWISE_TEST_MODELS:-$BUNDLE/models}"
    note "- from the bundle $BUNDLE (built for sm_80 and sm_90); cuBLASLt: $LT"
else
    if ! NVCC="$(find_nvcc)"; then
        note "SKIP: no CUDA toolkit (set CUDA_ROOT, or prepare a bundle with --prepare elsewhere)."
        exit 2
    fi
    TK="$(cd "$(dirname "$NVCC")/.." && pwd)"
    note "- toolkit: $TK ($("$NVCC" --version | tail -n 1))"
    # Libraries of a wheel toolkit are not on the loader's path.
    export LD_LIBRARY_PATH="$TK/lib64:$TK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    T0=$SECONDS
    if cmake -S "$ROOT" -B "$ROOT/build-gpu" -DCMAKE_BUILD_TYPE=Release -DMEMWISE_CUDA=ON -DMEMWISE_BUILD_BENCH=ON \
            -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$TK" -DCMAKE_CUDA_ARCHITECTURES="$CAP" \
            >"$OUT/configure.log" 2>&1 &&
        cmake --build "$ROOT/build-gpu" -j "$JOBS" --target "${TARGETS[@]}" >"$OUT/build.log" 2>&1; then
        note "- built for sm_$CAP in $((SECONDS - T0)) s"
    else
        note "- BUILD FAILED (see configure.log, build.log; an image without mimalloc, zstd, PCRE2 or"
        note "  CMocka needs a bundle: bench/gpu-check.sh --prepare BUNDLE on another machine):"
        tail -n 20 "$OUT/build.log" "$OUT/configure.log" 2>/dev/null | sed 's/^/    /' >>"$SUMMARY"
        exit 1
    fi
    bin() { printf '%s' "$ROOT/build-gpu/${BUILD_PATH[$1]}"; }
fi
export MEMWISE_SOURCE_DIR="$ROOT" MEMWISE_TEST_DATA="$ROOT/tests/data"

# ---- 3. tests on the GPU ------------------------------------------------------------
note ""
note "## Tests"
# run_test NAME PROGRAM [VAR=VALUE...]: exit 0 passes, 77 is a skip (said in its output).
run_test() {
    local name="$1" prog="$2" rc
    shift 2
    env "$@" timeout 300 "$(bin "$prog")" >"$OUT/test-$name.log" 2>&1
    rc=$?
    if ((rc == 0)); then
        note "- $name: PASS"
    elif ((rc == 77)); then
        note "- $name: SKIPPED"
    else
        note "- $name: FAIL (exit $rc, test-$name.log)"
        FAILED=1
    fi
    grep -E "SKIP|identical|differs|agree|device:|file-backed RSS|top-1 agreement|FAILED|ERROR" "$OUT/test-$name.log" |
        head -n 20 | sed 's/^/    /' >>"$SUMMARY"
}
run_test block-decode test_cuda_block_decode
run_test kernels test_cuda_kernels
run_test backend test_backend_select
run_test executor test_step_executor
run_test oracle-cuda test_api_oracle MEMWISE_TEST_BACKEND=cuda
run_test teacher-kl-cuda test_teacher_forced MEMWISE_TEST_BACKEND=cuda

# ---- 4. benchmarks --------------------------------------------------------------------
note ""
note "## Benchmarks (prompt 512, generate 128; one run each, memwise first for batch 1, llama.cpp first for 64)"
MODELS_DIR="${TMPDIR:-/tmp}/memwise-gpu-models"  # not under OUT: they are large
mkdir -p "$MODELS_DIR"
SMOL=""
for d in "${MEMWISE_TEST_MODELS:-}" "$ROOT/../shared/models" "$HOME/.cache/memwise/models"; do
    [[ -n "$d" && -f "$d/SmolLM2-135M-Instruct.Q4_1.gguf" ]] && { SMOL="$d/SmolLM2-135M-Instruct.Q4_1.gguf"; break; }
done
if [[ -z "$SMOL" ]]; then
    SMOL="$MODELS_DIR/smollm2-geometry-q4_0.gguf"
    "$(bin make_synthetic_model)" "$SMOL" --n-embd 576 --n-layer 30 --n-head 9 --n-head-kv 3 --n-ff 1536 \
        --n-vocab 49152 --n-ctx 8192 >"$OUT/make-smollm2.log" 2>&1
    note "- SmolLM2-135M file not found: its geometry with random Q4_0 weights stands in"
fi
TINY="$MODELS_DIR/tinyllama-1.1b-geometry-q4_0.gguf"
"$(bin make_synthetic_model)" "$TINY" >"$OUT/make-tinyllama.log" 2>&1

# peak_mem LABEL CMD...: runs CMD (stdout to OUT/LABEL.out), samples the GPU's
# used memory every 0.2 s, prints the peak above the idle level in MiB.
peak_mem() {
    local label="$1" base peak=0 pid m
    shift
    base="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | tr -d ' ')"
    [[ "$base" =~ ^[0-9]+$ ]] || base=0
    "$@" >"$OUT/$label.out" 2>"$OUT/$label.err" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        m="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | tr -d ' ')"
        [[ "$m" =~ ^[0-9]+$ ]] && ((m > peak)) && peak=$m
        sleep 0.2
    done
    wait "$pid" || echo "FAILED" >>"$OUT/$label.err"
    echo $((peak > base ? peak - base : 0))
}
# llama-bench JSON lines: avg_ts of the prompt test (pp) or the generation test (tg).
llbench() {
    python3 - "$@" <<'PY' 2>/dev/null || echo n/a
import json, sys
path, kind = sys.argv[1:3]
for line in open(path):
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    if (kind == "pp" and d.get("n_gen") == 0) or (kind == "tg" and d.get("n_prompt") == 0):
        print(round(d["avg_ts"], 1))
        break
else:
    print("n/a")
PY
}
json() { python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(d.get(sys.argv[2], 'n/a'))" "$@" 2>/dev/null || echo n/a; }

LB="${LLAMA_CPP_CUDA_BIN:-}"
[[ -n "$LB" && -x "$LB/llama-bench" && -x "$LB/llama-batched-bench" ]] || LB=""
[[ -z "$LB" ]] && note "- llama.cpp: not run (set LLAMA_CPP_CUDA_BIN to a CUDA build with llama-bench and llama-batched-bench)"

note ""
note "| model | batch | memwise prefill t/s | llama.cpp prefill t/s | memwise decode t/s | llama.cpp decode t/s | memwise device MiB | llama.cpp device MiB |"
note "|---|---|---|---|---|---|---|---|"
for model in "$SMOL" "$TINY"; do
    name="$(basename "$model" .gguf)"
    for n in 1 64; do
        mw_run() { peak_mem "mw-$name-$n" timeout 300 "$(bin gpu_bench)" "$model" cuda "$n" 512 128; }
        ll_run() {
            if [[ -z "$LB" ]]; then echo 0; return; fi
            if ((n == 1)); then
                peak_mem "ll-$name-$n" timeout 300 "$LB/llama-bench" -m "$model" -ngl 99 -p 512 -n 128 -r 2 -o jsonl
            else
                peak_mem "ll-$name-$n" timeout 300 "$LB/llama-batched-bench" -m "$model" -ngl 99 -c $((n * 640)) -b 2048 -ub 512 \
                    -npp 512 -ntg 128 -npl "$n" --output-format jsonl
            fi
        }
        if ((n == 1)); then mw_mem="$(mw_run)"; ll_mem="$(ll_run)"; else ll_mem="$(ll_run)"; mw_mem="$(mw_run)"; fi
        mw_pp="$(json "$OUT/mw-$name-$n.out" prefill_tokens_per_s)"
        mw_tg="$(json "$OUT/mw-$name-$n.out" decode_tokens_per_s)"
        ll_pp="not run"; ll_tg="not run"
        if [[ -n "$LB" ]]; then
            if ((n == 1)); then
                ll_pp="$(llbench "$OUT/ll-$name-$n.out" pp)"
                ll_tg="$(llbench "$OUT/ll-$name-$n.out" tg)"
            else
                ll_pp="$(json "$OUT/ll-$name-$n.out" speed_pp)"
                ll_tg="$(json "$OUT/ll-$name-$n.out" speed_tg)"
            fi
        else
            ll_mem="not run"
        fi
        note "| $name | $n | $mw_pp | $ll_pp | $mw_tg | $ll_tg | $mw_mem | $ll_mem |"
    done
done
# CUDA graphs for decode steps: batch 1 again with them off.
note ""
for model in "$SMOL" "$TINY"; do
    name="$(basename "$model" .gguf)"
    MEMWISE_CUDA_GRAPHS=0 timeout 300 "$(bin gpu_bench)" "$model" cuda 1 512 128 >"$OUT/mw-$name-1-nographs.out" 2>&1
    note "- $name batch 1 decode t/s: $(json "$OUT/mw-$name-1.out" decode_tokens_per_s) with CUDA graphs, $(json "$OUT/mw-$name-1-nographs.out" decode_tokens_per_s) without"
done
note ""
note "Raw output: $OUT/*.out (memwise gpu_bench JSON: device memory by component; llama.cpp JSON lines)."
note "Decode t/s at batch 64 is the aggregate over the 64 sequences for both engines."
note ""
note "Total $((SECONDS - START)) s; tests $([[ $FAILED == 0 ]] && echo passed || echo FAILED)."
exit "$FAILED"
