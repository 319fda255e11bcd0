#!/usr/bin/env bash
# One command from a fresh clone to a streamed reply: installs what is missing
# (scripts/setup.sh), builds the Release `memwise` command in build/, and asks
# the default model (SmolLM2-135M-Instruct Q4_1) one chat question.
#   usage: scripts/run-default.sh [extra `memwise run` options...]
# Environment: MEMWISE_PROMPT (the question), MEMWISE_JOBS (build jobs, default 2),
# MEMWISE_MODEL_CACHE (where setup.sh keeps the model).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"   # CI may run without HOME
JOBS="${MEMWISE_JOBS:-2}"
MODEL="${MEMWISE_MODEL_CACHE:-$HOME/.cache/memwise/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT="${MEMWISE_PROMPT:-Explain in three sentences why memory-mapping a model file saves RAM.}"

bash scripts/setup.sh

gen=()
if [[ ! -f build/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then
    gen=(-G Ninja)
fi
echo "run-default: building build/tools/cli/memwise (Release)"
cmake -S . -B build "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DMEMWISE_SANITIZE=OFF >/dev/null
cmake --build build --target memwise_cli -j "$JOBS"

echo "run-default: memwise run $MODEL --chat -p \"$PROMPT\" -n 128 $*"
exec build/tools/cli/memwise run "$MODEL" --chat -p "$PROMPT" -n 128 "$@"
