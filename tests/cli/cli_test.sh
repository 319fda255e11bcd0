#!/bin/sh
# Drives the built `memwise` binary for one CTest case:
#   cli_test.sh CASE MEMWISE_BINARY [EXAMPLE_BINARY]
# Exit 0 = pass, 77 = skipped (a model is absent; the reason is printed),
# anything else = fail. Models are found in $MEMWISE_TEST_MODELS, then
# $MEMWISE_SOURCE_DIR/../shared/models, then the setup script's cache.
set -u

CASE=$1
MW=$2
EXAMPLE=${3:-}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/memwise-cli-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL [$CASE]: $*"; exit 1; }

find_model() {
    for d in "${MEMWISE_TEST_MODELS:-}" "${MEMWISE_SOURCE_DIR:+$MEMWISE_SOURCE_DIR/../shared/models}" \
             "${MEMWISE_MODEL_CACHE:-}" "${HOME:+$HOME/.cache/memwise/models}"; do
        if [ -n "$d" ] && [ -f "$d/$1" ]; then echo "$d/$1"; return 0; fi
    done
    return 1
}

require_model() {
    if ! MODEL=$(find_model "$1"); then
        echo "SKIP: model $1 not found (\$MEMWISE_TEST_MODELS, ../shared/models, ~/.cache/memwise/models); run scripts/setup.sh"
        exit 77
    fi
}

# run_mw NAME ARGS...: runs memwise, keeps stdout/stderr in $TMP/NAME.out/.err, sets RC.
run_mw() {
    name=$1; shift
    "$MW" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    RC=$?
}

expect_usage_help() {  # expect_usage_help NAME ARGS...
    name=$1; shift
    run_mw "$name" "$@"
    [ "$RC" -eq 0 ] || fail "'memwise $*' exited $RC: $(cat "$TMP/$name.err")"
    grep -q "Usage" "$TMP/$name.out" || fail "'memwise $*' does not print a usage line"
}

expect_error() {  # expect_error NAME PATTERN ARGS...: non-zero exit, PATTERN on stderr
    name=$1; pattern=$2; shift 2
    run_mw "$name" "$@"
    [ "$RC" -ne 0 ] || fail "'memwise $*' exited 0"
    [ -s "$TMP/$name.err" ] || fail "'memwise $*' printed nothing on stderr"
    grep -qi -- "$pattern" "$TMP/$name.err" || fail "'memwise $*' stderr lacks '$pattern': $(cat "$TMP/$name.err")"
}

case "$CASE" in
help)
    expect_usage_help top --help
    for c in run chat inspect bench; do
        grep -q "$c" "$TMP/top.out" || fail "--help does not list '$c'"
        expect_usage_help "$c" "$c" --help
        grep -q "memwise $c" "$TMP/$c.out" || fail "'memwise $c --help' does not name the command"
    done
    grep -q -- "--temp" "$TMP/run.out" || fail "'run --help' does not document --temp"
    grep -q -- "--json" "$TMP/bench.out" || fail "'bench --help' does not document --json"
    run_mw version --version
    [ "$RC" -eq 0 ] || fail "--version exited $RC"
    grep -Eq '^memwise [0-9]+\.[0-9]+\.[0-9]+' "$TMP/version.out" || fail "--version printed: $(cat "$TMP/version.out")"
    run_mw none
    [ "$RC" -eq 2 ] || fail "no arguments exited $RC, expected 2"
    grep -q "Usage" "$TMP/none.err" || fail "no arguments: usage not on stderr"
    ;;
load_options)
    # --populate / --lock / --access: same greedy text as a default load; a bad
    # hint is a usage error; a lock the limit forbids names RLIMIT_MEMLOCK.
    require_model stories260K.gguf
    run_mw plain run "$MODEL" -p "Once upon a time" -n 16 --temp 0
    [ "$RC" -eq 0 ] || fail "run exited $RC: $(cat "$TMP/plain.err")"
    for opts in "--populate" "--lock" "--access random" "--access sequential" "--access willneed" \
                "--populate --lock --access=willneed"; do
        # shellcheck disable=SC2086
        run_mw opt run "$MODEL" -p "Once upon a time" -n 16 --temp 0 $opts
        [ "$RC" -eq 0 ] || fail "run $opts exited $RC: $(cat "$TMP/opt.err")"
        cmp -s "$TMP/plain.out" "$TMP/opt.out" || fail "run $opts printed other text: $(cat "$TMP/opt.out")"
        # shellcheck disable=SC2086
        run_mw b bench "$MODEL" --prompt-tokens 8 --gen-tokens 4 --threads 1 $opts
        [ "$RC" -eq 0 ] || fail "bench $opts exited $RC: $(cat "$TMP/b.err")"
    done
    expect_error bad_hint "--access must be" run "$MODEL" -p hi --access bogus
    [ "$RC" -eq 2 ] || fail "--access bogus exited $RC, expected 2"
    expect_error no_hint "needs a value" bench "$MODEL" --access
    # Roofline: bytes per token always; the bound and fraction with --bandwidth.
    run_mw roof bench "$MODEL" --prompt-tokens 4 --gen-tokens 4 --threads 1 --warmup 1 --bandwidth 10
    [ "$RC" -eq 0 ] || fail "bench --bandwidth exited $RC: $(cat "$TMP/roof.err")"
    grep -q "roofline: .* MiB of weights per token, 10.0 GB/s read -> decode bound .* tokens/s, memwise at" \
        "$TMP/roof.out" || fail "bench --bandwidth printed no roofline: $(cat "$TMP/roof.out")"
    run_mw roofj bench "$MODEL" --prompt-tokens 4 --gen-tokens 4 --threads 1 --bandwidth 10 --json
    grep -q '"decode_bound_tokens_per_s": [1-9]' "$TMP/roofj.out" || fail "bench --json lacks the bound: $(cat "$TMP/roofj.out")"
    expect_error roofbad "--bandwidth" bench "$MODEL" --bandwidth 0
    # Without CAP_IPC_LOCK (dropped from the bounding set: gone after exec) and
    # with a 16 KiB limit, --lock must fail and say why.
    # (AddressSanitizer turns mlock into a no-op, so sanitized builds skip it.)
    if [ "${MEMWISE_SANITIZED:-0}" = 1 ]; then
        echo "note: sanitized build: mlock is a no-op under AddressSanitizer; lock failure path not run"
    elif command -v setpriv >/dev/null 2>&1 &&
       setpriv --bounding-set=-ipc_lock true 2>/dev/null; then
        setpriv --bounding-set=-ipc_lock sh -c 'ulimit -l 16 && exec "$@"' sh \
            "$MW" run "$MODEL" -p hi -n 2 --lock >"$TMP/lk.out" 2>"$TMP/lk.err"
        RC=$?
        [ "$RC" -eq 1 ] || fail "--lock under a 16 KiB limit exited $RC: $(cat "$TMP/lk.err")"
        grep -q "RLIMIT_MEMLOCK is 16384 bytes" "$TMP/lk.err" || fail "lock error lacks the limit: $(cat "$TMP/lk.err")"
    else
        echo "note: setpriv cannot drop CAP_IPC_LOCK here; lock failure path covered by test_api_loading"
    fi
    ;;
bad_options)
    expect_error unknown_cmd "unknown command" frobnicate
    expect_error unknown_top "unknown option" --frobnicate
    expect_error unknown_opt "unknown option '--bogus'" run model.gguf -p hi --bogus
    expect_error bad_number "--temp" run model.gguf -p hi --temp abc
    expect_error neg_number "-n" run model.gguf -p hi -n -3
    expect_error out_of_range "--top-p" run model.gguf -p hi --top-p 1.5
    expect_error missing_value "needs a value" run model.gguf -p
    expect_error no_prompt "prompt" run model.gguf
    expect_error no_model "MODEL" inspect
    expect_error two_models "unexpected argument" inspect a.gguf b.gguf
    expect_error flag_value "takes no value" bench m.gguf --json=1
    expect_error bench_zero "--gen-tokens" bench m.gguf --gen-tokens 0
    [ "$RC" -eq 2 ] || fail "a usage error exited $RC, expected 2"
    ;;
missing_model)
    for c in "run $TMP/nope.gguf -p hi" "inspect $TMP/nope.gguf" "bench $TMP/nope.gguf" "chat $TMP/nope.gguf"; do
        # shellcheck disable=SC2086
        expect_error missing "nope.gguf" $c
        [ ! -s "$TMP/missing.out" ] || fail "'memwise $c' wrote to stdout: $(cat "$TMP/missing.out")"
    done
    ;;
run)
    require_model stories260K.gguf
    run_mw a run "$MODEL" -p "Once upon a time" -n 16 --temp 0 --threads 1
    [ "$RC" -eq 0 ] || fail "run exited $RC: $(cat "$TMP/a.err")"
    [ -n "$(tr -d ' \n' <"$TMP/a.out")" ] || fail "run printed no text"
    run_mw b run "$MODEL" -p "Once upon a time" -n 16 --temp 0 --threads 1
    cmp -s "$TMP/a.out" "$TMP/b.out" || fail "greedy output differs between runs: '$(cat "$TMP/a.out")' vs '$(cat "$TMP/b.out")'"
    run_mw m run "$MODEL" -p "Once upon a time" -n 16 --temp 0 --threads 1 --memory-report
    [ "$RC" -eq 0 ] || fail "run --memory-report exited $RC: $(cat "$TMP/m.err")"
    cmp -s "$TMP/a.out" "$TMP/m.out" || fail "--memory-report changed the output"
    grep -q "engine total" "$TMP/m.err" || fail "no memory report on stderr: $(cat "$TMP/m.err")"
    grep -q "KV cache" "$TMP/m.err" || fail "memory report without the KV cache line"
    # "-f -" reads the prompt from stdin.
    printf 'Once upon a time' | "$MW" run "$MODEL" -f - -n 16 --temp 0 --threads 1 >"$TMP/s.out" 2>"$TMP/s.err" ||
        fail "run -f - failed: $(cat "$TMP/s.err")"
    cmp -s "$TMP/a.out" "$TMP/s.out" || fail "prompt from stdin gives different output: '$(cat "$TMP/s.out")'"
    # A fixed seed makes sampling repeatable too; -f reads the prompt from a file.
    printf 'Once upon a time' >"$TMP/prompt.txt"
    run_mw c run "$MODEL" -f "$TMP/prompt.txt" -n 16 --temp 0.9 --seed 7 --top-k 0
    [ "$RC" -eq 0 ] || fail "seeded run exited $RC: $(cat "$TMP/c.err")"
    run_mw d run "$MODEL" -p "Once upon a time" -n 16 --temp 0.9 --seed 7 --top-k 0
    cmp -s "$TMP/c.out" "$TMP/d.out" || fail "seeded output differs: '$(cat "$TMP/c.out")' vs '$(cat "$TMP/d.out")'"
    # --verbose reports speeds on stderr, not stdout.
    run_mw v run "$MODEL" -p "Once upon a time" -n 4 --temp 0 --verbose
    [ "$RC" -eq 0 ] || fail "verbose run exited $RC"
    grep -q "prefill" "$TMP/v.err" || fail "--verbose printed no timings: $(cat "$TMP/v.err")"
    grep -q "tok/s" "$TMP/v.out" && fail "--verbose timings went to stdout"
    # A context too small for the prompt plus generation is an error, not a crash.
    expect_error overflow "MW_ERR" run "$MODEL" -p "Once upon a time" -n 64 --ctx 8
    echo "output: $(cat "$TMP/a.out")"
    ;;
inspect)
    require_model stories260K.gguf
    run_mw i inspect "$MODEL" --tensors
    [ "$RC" -eq 0 ] || fail "inspect exited $RC: $(cat "$TMP/i.err")"
    grep -Eq '^architecture: +llama' "$TMP/i.out" || fail "no 'architecture: llama' in: $(cat "$TMP/i.out")"
    grep -q "token_embd.weight" "$TMP/i.out" || fail "--tensors does not list token_embd.weight"
    grep -q "F32" "$TMP/i.out" || fail "no F32 in the tensor type histogram"
    grep -q "per token" "$TMP/i.out" || fail "no KV bytes per token"
    grep -Eq 'vocabulary: +512' "$TMP/i.out" || fail "vocabulary is not 512"
    # --budget: stories260K needs 640 B of F16 KV per token, so 10 MiB holds
    # 20 sequences of 512 tokens next to the weights and the step arena. At
    # 2048 tokens 5 sequences took exactly 10.00 MiB; the step arena of a
    # context over 1024 now also holds the flash attention's partials (~20 KB),
    # so 4 fit.
    run_mw b inspect "$MODEL" --budget 10MiB
    [ "$RC" -eq 0 ] || fail "inspect --budget exited $RC: $(cat "$TMP/b.err")"
    grep -Eq 'context 512 +20 sequences' "$TMP/b.out" || fail "unexpected budget plan: $(cat "$TMP/b.out")"
    grep -q "fits: 20 sequences of 512 tokens or 4 sequences of 2048 tokens" "$TMP/b.out" ||
        fail "no 'fits:' summary: $(cat "$TMP/b.out")"
    expect_error bad_budget "not a size" inspect "$MODEL" --budget 10XB
    ;;
chat)
    require_model stories260K.gguf
    # stories260K has no chat template: the command says so and exits 2.
    printf 'Hello\n' >"$TMP/in.txt"
    "$MW" chat "$MODEL" -n 8 <"$TMP/in.txt" >"$TMP/c.out" 2>"$TMP/c.err"
    RC=$?
    [ "$RC" -eq 2 ] || fail "chat without a template exited $RC, expected 2: $(cat "$TMP/c.err")"
    grep -q "MW_ERR_UNSUPPORTED" "$TMP/c.err" || fail "no MW_ERR_UNSUPPORTED message: $(cat "$TMP/c.err")"
    ;;
chat_smollm)
    require_model SmolLM2-135M-Instruct.Q4_1.gguf
    printf 'What is the capital of France?\n/reset\nSay hello.\n/exit\nnot read\n' >"$TMP/in.txt"
    "$MW" chat "$MODEL" -n 24 --temp 0 --system "You are brief." <"$TMP/in.txt" >"$TMP/c.out" 2>"$TMP/c.err"
    RC=$?
    [ "$RC" -eq 0 ] || fail "chat exited $RC: $(cat "$TMP/c.err")"
    [ "$(grep -c . "$TMP/c.out")" -ge 2 ] || fail "expected two replies, got: $(cat "$TMP/c.out")"
    grep -q "cleared" "$TMP/c.err" || fail "/reset did not report"
    grep -q "<|im_" "$TMP/c.out" && fail "template markers leaked into the reply: $(cat "$TMP/c.out")"
    echo "replies: $(cat "$TMP/c.out")"
    ;;
bench)
    require_model stories260K.gguf
    run_mw j bench "$MODEL" --prompt-tokens 32 --gen-tokens 8 --threads 1 --json
    [ "$RC" -eq 0 ] || fail "bench exited $RC: $(cat "$TMP/j.err")"
    python3 - "$TMP/j.out" <<'PY' || fail "bench --json output is wrong: $(cat "$TMP/j.out")"
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["model", "threads", "prompt_tokens", "gen_tokens", "load_seconds", "prefill_tokens_per_s",
        "decode_tokens_per_s", "peak_rss_bytes", "memwise_version"]
missing = [k for k in keys if k not in d]
assert not missing, "missing keys %s" % missing
assert d["prompt_tokens"] == 32 and d["gen_tokens"] == 8 and d["threads"] == 1, d
assert d["load_seconds"] > 0 and d["prefill_tokens_per_s"] > 0 and d["decode_tokens_per_s"] > 0, d
assert d["peak_rss_bytes"] > 1 << 20, d
m = d["memory"]
assert m["weights_mapped_bytes"] > 1 << 20 and m["kv_resident_bytes"] > 0, m
assert m["engine_total_bytes"] >= m["kv_resident_bytes"] + m["activations_high_water_bytes"], m
assert m["process_rss_bytes"] >= m["process_anonymous_bytes"] > 0, m
PY
    run_mw t bench "$MODEL" --prompt-tokens 16 --gen-tokens 4
    [ "$RC" -eq 0 ] || fail "bench (text) exited $RC: $(cat "$TMP/t.err")"
    grep -q "decode" "$TMP/t.out" || fail "bench text output lacks decode: $(cat "$TMP/t.out")"
    cat "$TMP/j.out"
    ;;
lora)
    require_model stories260K.gguf
    MAKE_LORA=$EXAMPLE
    [ -x "$MAKE_LORA" ] || fail "make_lora binary '$MAKE_LORA' missing"
    "$MAKE_LORA" "$MODEL" "$TMP/ad.gguf" 4 1 3 || fail "make_lora failed"
    run_mw base run "$MODEL" -p "Once upon a time" -n 16 --temp 0 --threads 1
    run_mw l run "$MODEL" -p "Once upon a time" -n 16 --temp 0 --threads 1 --lora "$TMP/ad.gguf" --memory-report
    [ "$RC" -eq 0 ] || fail "run --lora exited $RC: $(cat "$TMP/l.err")"
    cmp -s "$TMP/base.out" "$TMP/l.out" && fail "the adapter did not change the output: '$(cat "$TMP/l.out")'"
    grep -q "adapters" "$TMP/l.err" || fail "memory report without the adapters line: $(cat "$TMP/l.err")"
    run_mw z run "$MODEL" -p "Once upon a time" -n 16 --temp 0 --threads 1 --lora "$TMP/ad.gguf:0"
    [ "$RC" -eq 0 ] || fail "run --lora FILE:0 exited $RC: $(cat "$TMP/z.err")"
    cmp -s "$TMP/base.out" "$TMP/z.out" || fail "scale 0 differs from the base model: '$(cat "$TMP/z.out")'"
    expect_error lora_model "general.type" run "$MODEL" -p hi -n 2 --lora "$MODEL"
    expect_error lora_scale "--lora" run "$MODEL" -p hi -n 2 --lora "$TMP/ad.gguf:1e"
    expect_error lora_missing "adapter" run "$MODEL" -p hi -n 2 --lora "$TMP/nope.gguf"
    ;;
example)
    require_model stories260K.gguf
    [ -x "$EXAMPLE" ] || fail "example binary '$EXAMPLE' missing"
    "$EXAMPLE" "$MODEL" "Once upon a time" 16 >"$TMP/e.out" 2>"$TMP/e.err"
    RC=$?
    [ "$RC" -eq 0 ] || fail "generate exited $RC: $(cat "$TMP/e.err")"
    # The example and `memwise run --temp 0` are the same greedy request.
    run_mw r run "$MODEL" -p "Once upon a time" -n 16 --temp 0
    cmp -s "$TMP/e.out" "$TMP/r.out" || fail "example '$(cat "$TMP/e.out")' differs from run '$(cat "$TMP/r.out")'"
    "$EXAMPLE" "$TMP/nope.gguf" "x" >/dev/null 2>"$TMP/e2.err" && fail "example succeeded on a missing file"
    grep -q "mw_model_open" "$TMP/e2.err" || fail "example error lacks the call name"
    ;;
eval)
    require_model stories260K.gguf
    TEXT="$MEMWISE_TEST_DATA/english.txt"
    expect_usage_help eh eval --help
    expect_usage_help dh distill-export --help
    run_mw e1 eval "$MODEL" --text "$TEXT" --ref "$MODEL" --ctx 64 -t 2 --json
    [ "$RC" -eq 0 ] || fail "eval exited $RC: $(cat "$TMP/e1.err")"
    grep -q '"kl_mean": 0,' "$TMP/e1.out" || fail "KL of a model against itself is not 0: $(cat "$TMP/e1.out")"
    grep -q '"top1_agreement": 1,' "$TMP/e1.out" || fail "self top-1 agreement is not 1: $(cat "$TMP/e1.out")"
    run_mw d1 distill-export "$MODEL" --text "$TEXT" --top-k 8 --ctx 64 -t 2 "$TMP/x.mwdx"
    [ "$RC" -eq 0 ] && [ -s "$TMP/x.mwdx" ] || fail "distill-export exited $RC: $(cat "$TMP/d1.err")"
    # Every position of the text: n_tokens - 1 of them.
    grep -q "wrote .*: 1403 positions of 1404 tokens" "$TMP/d1.out" || fail "export does not cover every position: $(cat "$TMP/d1.out")"
    run_mw e2 eval "$MODEL" --ref-export "$TMP/x.mwdx" -t 2
    [ "$RC" -eq 0 ] || fail "eval --ref-export exited $RC: $(cat "$TMP/e2.err")"
    grep -q "KL mean: *0.000000" "$TMP/e2.out" || fail "KL against its own export is not 0: $(cat "$TMP/e2.out")"
    grep -q "compared: *1403 positions" "$TMP/e2.out" || fail "eval --ref-export does not compare every position: $(cat "$TMP/e2.out")"
    expect_error m1 "missing --text" eval "$MODEL"
    : >"$TMP/empty.txt"
    expect_error m2 "empty" eval "$MODEL" --text "$TMP/empty.txt"
    expect_error m3 "top-k 513 is out of range" distill-export "$MODEL" --text "$TEXT" --top-k 513 "$TMP/y.mwdx"
    [ ! -e "$TMP/y.mwdx" ] || fail "a failed export left $TMP/y.mwdx"
    expect_error m4 "missing --top-k" distill-export "$MODEL" --text "$TEXT" "$TMP/y.mwdx"
    head -c 300 "$TMP/x.mwdx" >"$TMP/cut.mwdx"
    expect_error m5 "MW_ERR_FORMAT" eval "$MODEL" --ref-export "$TMP/cut.mwdx"
    expect_error m6 "exact or llama" eval "$MODEL" --text "$TEXT" --ref "$MODEL" --kl-base-rounding nearest
    expect_error m7 "needs --ref" eval "$MODEL" --text "$TEXT" --kl-base-rounding llama
    run_mw e3 eval "$MODEL" --text "$TEXT" --ref "$MODEL" --ctx 64 -t 2 --kl-base-rounding llama --json
    [ "$RC" -eq 0 ] || fail "eval --kl-base-rounding llama exited $RC: $(cat "$TMP/e3.err")"
    ;;
compress)
    require_model stories260K.gguf
    TEXT="$MEMWISE_TEST_DATA/english.txt"
    expect_usage_help qh quantize --help
    expect_usage_help ph prune --help
    run_mw q1 quantize "$MODEL" "$TMP/q.gguf" --type q4_k --calib "$TEXT" -t 2
    [ "$RC" -eq 0 ] && [ -s "$TMP/q.gguf" ] || fail "quantize exited $RC: $(cat "$TMP/q1.err")"
    grep -q "blk.0.ffn_down.weight: rows of 172 are not a multiple of the Q4_K block (256): F16 instead" "$TMP/q1.err" ||
        fail "quantize does not report the fallback: $(cat "$TMP/q1.err")"
    run_mw q2 run "$TMP/q.gguf" -p "Once upon a time" -n 8 --temp 0
    [ "$RC" -eq 0 ] && [ -s "$TMP/q2.out" ] || fail "the quantized model does not run: $(cat "$TMP/q2.err")"
    # 5-bit: Q5_1 itself on the 64-wide rows, Q5_K falling back to Q5_1 there.
    run_mw q3 quantize "$MODEL" "$TMP/q5.gguf" --type Q5_1 -t 2
    [ "$RC" -eq 0 ] && [ -s "$TMP/q5.gguf" ] || fail "quantize --type Q5_1 exited $RC: $(cat "$TMP/q3.err")"
    grep -q "blk.0.ffn_down.weight: rows of 172 are not a multiple of the Q5_1 block (32): F16 instead" "$TMP/q3.err" ||
        fail "quantize Q5_1 does not report the fallback: $(cat "$TMP/q3.err")"
    run_mw q4 run "$TMP/q5.gguf" -p "Once upon a time" -n 8 --temp 0
    [ "$RC" -eq 0 ] && [ -s "$TMP/q4.out" ] || fail "the Q5_1 model does not run: $(cat "$TMP/q4.err")"
    run_mw q5 quantize "$MODEL" "$TMP/q5k.gguf" --type Q5_K -t 2
    grep -q "blk.0.attn_q.weight: rows of 64 are not a multiple of the Q5_K block (256): Q5_1 instead" "$TMP/q5.err" ||
        fail "Q5_K does not fall back to Q5_1: $(cat "$TMP/q5.err")"
    run_mw p1 prune "$MODEL" "$TMP/p.gguf" --ffn-keep 0.75 --heads-keep 0.5 --calib "$TEXT" -t 2
    [ "$RC" -eq 0 ] || fail "prune exited $RC: $(cat "$TMP/p1.err")"
    grep -q "FFN channels 860 -> 640, heads 40 -> 20" "$TMP/p1.err" || fail "prune summary: $(cat "$TMP/p1.err")"
    run_mw p2 run "$TMP/p.gguf" -p "Once upon a time" -n 8 --temp 0
    [ "$RC" -eq 0 ] && [ -s "$TMP/p2.out" ] || fail "the pruned model does not run: $(cat "$TMP/p2.err")"
    expect_error x1 "unknown quantization type 'Q2_X'" quantize "$MODEL" "$TMP/x.gguf" --type Q2_X
    : >"$TMP/empty.txt"
    expect_error x2 "is empty" quantize "$MODEL" "$TMP/x.gguf" --type Q8_0 --calib "$TMP/empty.txt"
    expect_error x3 "missing --calib" prune "$MODEL" "$TMP/x.gguf" --ffn-keep 0.5
    expect_error x4 "ffn-keep" prune "$MODEL" "$TMP/x.gguf" --ffn-keep 1.5 --calib "$TEXT"
    expect_error x5 "calibration" quantize "$MODEL" "$TMP/x.gguf" --target-bpw 5
    [ ! -e "$TMP/x.gguf" ] || fail "a failed command left $TMP/x.gguf"
    ;;
*)
    fail "unknown case '$CASE'"
    ;;
esac
echo "PASS [$CASE]"
exit 0
