#!/bin/sh
# memwise eval against llama.cpp's llama-perplexity on the same files, text and
# context: perplexity of BASE and of MODEL, and KL(BASE || MODEL) with
# llama-perplexity --kl-divergence-base / --kl-divergence.
#
#   bench/compare_eval_llamacpp.sh LLAMA_CPP_BIN MEMWISE BASE MODEL TEXT CTX [CHUNKS]
#
# LLAMA_CPP_BIN: directory with llama-perplexity (may also come from
# $LLAMA_CPP_BIN); skips (exit 77) when it is absent. CHUNKS limits both tools
# to the first N windows. Accuracy figures only: no timing is taken.
# memwise runs the model twice against BASE: with exact reference
# log-probabilities (its default) and with --kl-base-rounding llama, which
# stores them as llama-perplexity stores its base (16-bit steps, tokens below
# -16 nats left out of KL); the second column compares number for number.
# LLAMA_FA: llama-perplexity's --flash-attn (default off, see below).
# KEEP_TMP=1 keeps the logs and JSON in the temporary directory (under $TMPDIR).
# llama-perplexity's base run sometimes exits without printing its last
# chunk and "Final estimate" (seen with --kl-divergence-base here): its
# ppl_base then shows as nan; run again for it.
set -eu
BIN=${1:-${LLAMA_CPP_BIN:-}}
MW=$2; BASE=$3; MODEL=$4; TEXT=$5; CTX=$6; CHUNKS=${7:-0}
if [ -z "$BIN" ] || [ ! -x "$BIN/llama-perplexity" ]; then
    echo "SKIP: llama-perplexity not found in '$BIN' (pass the llama.cpp bin directory)"; exit 77
fi
export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mw-eval-cmp.XXXXXX")
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
# -nr: no weight repacking (the repacked Q4_0 path crashes on this machine).
# -fa off: memwise computes attention as llama.cpp's non-flash CPU path does
# (bit for bit on stories260K); llama-perplexity's default (auto) turns on its
# CPU flash attention, whose other arithmetic moves the figures a little
# (docs/COMPRESSION.md). LLAMA_FA=auto (or on) runs llama.cpp that way.
LC="-c $CTX -b $CTX -t 2 -nr -fa ${LLAMA_FA:-off}"
MWC="--ctx $CTX -t 2"
if [ "$CHUNKS" -gt 0 ]; then LC="$LC --chunks $CHUNKS"; MWC="$MWC --chunks $CHUNKS"; fi

# llama.cpp: base logits saved, then the model against them.
"$BIN/llama-perplexity" -m "$BASE" -f "$TEXT" $LC --kl-divergence-base "$TMP/base.kld" >"$TMP/l1.log" 2>&1 ||
    { tail -5 "$TMP/l1.log"; exit 1; }
"$BIN/llama-perplexity" -m "$MODEL" -f "$TEXT" $LC --kl-divergence-base "$TMP/base.kld" --kl-divergence \
    >"$TMP/l2.log" 2>&1 || { tail -5 "$TMP/l2.log"; exit 1; }
# memwise
"$MW" eval "$BASE" --text "$TEXT" $MWC --json >"$TMP/m1.json"
"$MW" eval "$MODEL" --text "$TEXT" --ref "$BASE" $MWC --json >"$TMP/m2.json"
"$MW" eval "$MODEL" --text "$TEXT" --ref "$BASE" $MWC --kl-base-rounding llama --json >"$TMP/m3.json"

python3 - "$TMP" <<'PY'
import json, re, sys
d = sys.argv[1]
l1 = open(d + "/l1.log", errors="replace").read()
l2 = open(d + "/l2.log", errors="replace").read()
def grab(pat, text=l2):
    m = re.search(pat, text)
    return float(m.group(1)) if m else float("nan")
# PPL(base) from the base run itself: the --kl-divergence run's "Mean PPL(base)"
# and ln ratio use the base log-probs as stored, quantized to 16 bits.
llama = {
    "ppl_base": grab(r"Final estimate: PPL = ([0-9.]+)", l1),
    "ppl": grab(r"Mean PPL\(Q\)\s*:\s*([0-9.]+)"),
    "kl_mean": grab(r"Mean\s+KLD:\s*([0-9.]+)"),
    "kl_p99": grab(r"99\.0%\s+KLD:\s*([0-9.]+)"),
    "same_top": grab(r"Same top p:\s*([0-9.]+)") / 100,
}
m1 = json.load(open(d + "/m1.json")); m2 = json.load(open(d + "/m2.json")); m3 = json.load(open(d + "/m3.json"))
mw = {"ppl_base": m1["perplexity"], "ppl": m2["perplexity"], "ln_ratio": m2["ref"]["ln_ppl_ratio"],
      "kl_mean": m2["ref"]["kl_mean"], "kl_p99": m2["ref"]["kl_p99"], "same_top": m2["ref"]["top1_agreement"]}
# With the llama-stored base, the reference's perplexity comes from the stored
# values too, so its ln ratio compares with llama.cpp's own "Mean ln(PPL(Q)/PPL(base))".
mr = {"ppl_base": m3["ref"]["perplexity"], "ppl": m3["perplexity"], "ln_ratio": m3["ref"]["ln_ppl_ratio"],
      "kl_mean": m3["ref"]["kl_mean"], "kl_p99": m3["ref"]["kl_p99"], "same_top": m3["ref"]["top1_agreement"]}
import math
llama["ln_ratio"] = math.log(llama["ppl"] / llama["ppl_base"])
stored = grab(r"Mean ln\(PPL\(Q\)/PPL\(base\)\)\s*:\s*(-?[0-9.]+)")
stored_base = grab(r"Mean PPL\(base\)\s*:\s*([0-9.]+)")
print(f"windows: memwise {m2['n_windows']} x {m2['n_ctx']} ({m2['n_scored']} predictions)")
print(f"{'measure':<10} {'llama.cpp':>12} {'memwise':>12} {'diff %':>8} {'mw llama-rnd':>13} {'diff %':>8}")
def pct(b, a):
    return 100 * (b - a) / a if a else float("nan")
for k in llama:
    a, b = llama[k], mw[k]
    # The rounded column compares like with like: llama.cpp's stored-base PPL and ln ratio.
    a2 = {"ppl_base": stored_base, "ln_ratio": stored}.get(k, a)
    print(f"{k:<10} {a:>12.6f} {b:>12.6f} {pct(b, a):>8.3f} {mr[k]:>13.6f} {pct(mr[k], a2):>8.3f}")
print(f"(llama.cpp's own 'Mean PPL(base)' {stored_base:.6f} and 'Mean ln(PPL(Q)/PPL(base))' {stored:.6f} come"
      f" from its 16-bit stored base; the llama-rnd column is compared with those; ln_ratio of the plain"
      f" column is ln of llama.cpp's two perplexities)")
PY
