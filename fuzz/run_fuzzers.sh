#!/usr/bin/env bash
# Runs each libFuzzer target for a fixed time and prints executions and
# coverage per target (docs/RELIABILITY.md). Needs a clang build:
#   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMWISE_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_gguf fuzz_tokenizer fuzz_chat fuzz_submit fuzz_zst fuzz_distill
#   fuzz/run_fuzzers.sh build-fuzz 60 [target...]
# New inputs go to a scratch directory (the committed corpus is only read);
# a crash leaves crash-* in the scratch directory and fails the run.
set -uo pipefail
BUILD="${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS [target...]}"
SECS="${2:?seconds per target}"
shift 2
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(gguf tokenizer chat submit zst distill)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRATCH="${MEMWISE_FUZZ_SCRATCH:-$(mktemp -d "${TMPDIR:-/tmp}/memwise-fuzz.XXXXXX")}"
export MEMWISE_SOURCE_DIR="$(cd "$HERE/.." && pwd)"
rc=0
for t in "${TARGETS[@]}"; do
    mkdir -p "$SCRATCH/$t"
    log="$SCRATCH/$t.log"
    (cd "$SCRATCH/$t" && "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECS" -print_final_stats=1 -rss_limit_mb=4096 \
        -timeout=20 -max_len=65536 "$SCRATCH/$t" "$HERE/corpus/$t") >"$log" 2>&1 || rc=1
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    crashes=$(ls "$SCRATCH/$t" 2>/dev/null | grep -c -E '^(crash|leak|timeout|oom)-')
    printf '%-10s %4ss  execs %-9s cov %-6s ft %-6s corpus %-5s crashes %s\n' "$t" "$SECS" "${execs:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$crashes"
    ((crashes == 0)) || rc=1
done
echo "logs and new inputs: $SCRATCH"
exit $rc
