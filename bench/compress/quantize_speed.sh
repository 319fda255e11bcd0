#!/bin/sh
# Times `memwise quantize` of one model with two memwise builds, alternating
# run by run, under the shared benchmark lock; prints wall and user CPU time.
#
#   bench/compress/quantize_speed.sh A_DIR B_DIR MODEL CALIB [RUNS] [-- extra quantize args]
#
# A_DIR / B_DIR: directories holding a `memwise` binary and its
# libmemwise.so.0 (copy both out of a build to keep a version). Default
# quantize arguments: --type Q4_K --calib CALIB --calib-tokens 512 --threads 2.
set -eu
A=$1; B=$2; MODEL=$3; CALIB=$4; RUNS=${5:-2}
shift 4; [ $# -gt 0 ] && shift
EXTRA=${*:-"--type Q4_K --calib-tokens 512 --threads 2"}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mw-qspeed.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
i=1
while [ "$i" -le "$RUNS" ]; do
    for d in "$A" "$B"; do
        flock /tmp/memwise-bench.lock env LD_LIBRARY_PATH="$d" /usr/bin/time -f "$d run $i: %e s wall, %U s user" \
            "$d/memwise" quantize "$MODEL" "$TMP/out.gguf" --calib "$CALIB" $EXTRA -q 2>&1 | grep "wall"
    done
    i=$((i + 1))
done
