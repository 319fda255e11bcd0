#!/usr/bin/env bash
# Tests the OpenAI-compatible Go server with the official `openai` Python
# client (installed from PyPI into a venv under ~/.cache/memwise/).
#   examples/go-server/test.sh SERVER_BINARY [MEMWISE_CLI]
# SERVER_BINARY: the built go-server (bindings/go/test.sh builds it).
# MEMWISE_CLI: the installed `memwise` program; when given, the server's greedy
# text must equal what `memwise run` prints for the same prompt.
# Completions run on stories260K; chat needs a chat template, so it runs on
# SmolLM2 and is skipped (with a message) when that model is absent.
# Each server listens on 127.0.0.1 with a port the kernel picks, and is
# always stopped at the end.
set -euo pipefail

SERVER="${1:?usage: test.sh SERVER_BINARY [MEMWISE_CLI]}"
CLI="${2:-}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/memwise"
VENV="$CACHE/openai-venv"
OPENAI_SPEC='openai>=1.40,<4'

say() { printf 'go-server test: %s\n' "$*"; }

# ---- the openai client ------------------------------------------------------
if ! "$VENV/bin/python" -c 'import openai' >/dev/null 2>&1; then
    say "installing $OPENAI_SPEC into $VENV"
    python3 -m venv "$VENV" 2>/dev/null || {
        # Debian splits venv support out of python3.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv </dev/null
        python3 -m venv "$VENV"
    }
    "$VENV/bin/pip" install -q --disable-pip-version-check "$OPENAI_SPEC" </dev/null
fi

# ---- models -----------------------------------------------------------------
find_model() {
    local d
    for d in "${MEMWISE_TEST_MODELS:-}" "$ROOT/../shared/models" "${MEMWISE_MODEL_CACHE:-}" "$HOME/.cache/memwise/models"; do
        [[ -n "$d" && -f "$d/$1" ]] && { printf '%s\n' "$d/$1"; return 0; }
    done
    return 1
}

# ---- servers ------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/memwise-go-server.XXXXXX")"
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT

# start_server MODEL: starts the server on a free port; sets BASE.
start_server() {
    local log="$WORK/server.log" i
    : >"$log"
    "$SERVER" -model "$1" -addr 127.0.0.1:0 -threads 2 -ctx 1024 -max-seqs 4 </dev/null >"$log" 2>&1 &
    SERVER_PID=$!
    BASE=""
    for ((i = 0; i < 300; i++)); do
        BASE="$(grep -o 'listening on http://[0-9.:]*' "$log" | sed 's/listening on //' || true)"
        [[ -n "$BASE" ]] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$log" >&2
            say "server exited at start"
            return 1
        fi
        sleep 0.1
    done
    [[ -n "$BASE" ]] || { cat "$log" >&2; say "server did not start listening"; return 1; }
    say "server for $(basename "$1") at $BASE"
}

# expected_text OUT ARGS...: what `memwise run ARGS` prints, less the final newline.
expected_text() {
    local out="$1"
    shift
    [[ -n "$CLI" ]] || return 0
    "$CLI" run "$@" --temp 0 --threads 2 --ctx 1024 </dev/null >"$out.raw"
    python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(d[:-1] if d.endswith(b"\n") else d)' \
        "$out.raw" "$out"
}

PY="$VENV/bin/python"
TESTED=0
if STORIES="$(find_model stories260K.gguf)"; then
    EXPECT=()
    if [[ -n "$CLI" ]]; then
        expected_text "$WORK/completion.txt" "$STORIES" -p "Once upon a time" -n 16
        EXPECT=("$WORK/completion.txt")
    fi
    start_server "$STORIES"
    "$PY" "$HERE/test_openai.py" completions "$BASE" "${EXPECT[@]}"
    stop_server
    TESTED=1
else
    say "SKIP completions: stories260K.gguf not found (\$MEMWISE_TEST_MODELS, ../shared/models, ~/.cache/memwise/models)"
fi

if SMOL="$(find_model SmolLM2-135M-Instruct.Q4_1.gguf)"; then
    EXPECT=()
    if [[ -n "$CLI" ]]; then
        expected_text "$WORK/chat.txt" "$SMOL" --chat -p "What is the capital of France?" -n 24
        EXPECT=("$WORK/chat.txt")
    fi
    start_server "$SMOL"
    "$PY" "$HERE/test_openai.py" chat "$BASE" "${EXPECT[@]}"
    stop_server
    TESTED=1
else
    say "SKIP chat: SmolLM2-135M-Instruct.Q4_1.gguf not found (run scripts/setup.sh); chat needs its chat template"
fi
if [[ $TESTED == 1 ]]; then say PASS; else say "SKIP: no model to test with"; fi
