#!/bin/bash
# Mixed precision on one model, both ways round between two texts (each the
# calibration text once and the held-out text once): the single-type
# importance-weighted files, and mixed precision at several budgets with and
# without the measured choice among candidate plans (--plan-candidates 8 / 1)
# and with and without round-to-nearest encoder candidates (--rtn-variants).
# Prints one line per file: direction, what, bytes, held-out KL, top-1, PPL.
# Accuracy only (no timing).
#
# Usage: mixed_precision_ablation.sh MEMWISE MODEL TEXT_A TEXT_B OUTDIR [BUDGETS...]
set -euo pipefail
mw=$1 model=$2 ta=$3 tb=$4 out=$5
shift 5
budgets=("$@")
[ ${#budgets[@]} -gt 0 ] || budgets=(268558 275392 320000 379264)
mkdir -p "$out"
ev() {
    "$mw" eval "$1" --text "$2" --ref "$model" --ctx 256 --threads 2 --json |
        python3 -c "import json,sys; d=json.load(sys.stdin); print('%.6f %.2f%% %.2f' % (d['ref']['kl_mean'], 100*d['ref']['top1_agreement'], d['perplexity']))"
}
for dir in AB BA; do
    if [ $dir = AB ]; then calib=$ta held=$tb; else calib=$tb held=$ta; fi
    for t in Q4_0 Q4_1 Q8_0; do
        f="$out/$dir-$t.gguf"
        "$mw" quantize "$model" "$f" --type $t --calib "$calib" --threads 2 -q 2>/dev/null
        echo "$dir single $t $(stat -c %s "$f") $(ev "$f" "$held")"
    done
    for b in "${budgets[@]}"; do
        for var in off on; do
            for pc in 1 8; do
                f="$out/$dir-$b-$var-$pc.gguf"
                extra=()
                [ $var = on ] && extra=(--rtn-variants)
                "$mw" quantize "$model" "$f" --calib "$calib" --target-size "$b" --threads 2 --plan-candidates $pc \
                    "${extra[@]}" -q 2>/dev/null
                echo "$dir $b rtn-variants=$var plan-candidates=$pc $(stat -c %s "$f") $(ev "$f" "$held")"
            done
        done
    done
done
