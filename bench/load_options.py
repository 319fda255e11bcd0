#!/usr/bin/env python3
"""Cold-start time and peak RSS at load for each model loading option.

    python3 bench/load_options.py [--model PATH ...] [--probe build/bench/mw_memprobe]
        [--repeat 3] [--threads 1] [--no-synthetic] [--json OUT.json]

Options measured (mw_model_options, `memwise run/bench` flags): default,
populate (MAP_POPULATE), lock (mlock), random / sequential / willneed
(madvise). Each run is one fresh mw_memprobe process: open, an engine of 256
tokens, a 16-token prompt and 8 generated tokens.

Cold runs: the model is first copied to a private file (so that no other
process maps it), and before every cold run its pages are dropped from the
page cache with posix_fadvise(POSIX_FADV_DONTNEED); the probe measures with
mincore how much of the file was still cached when it started ("cached"
column), so a run that was not cold shows it. Each warm run follows the cold
run of the same option (after a cold `random` run only the pages it touched are
cached). Figures are medians over --repeat runs:

  open      mw_model_open (map, validate, options applied), seconds
  first     open to the first generated token (engine, prefill of 16 tokens:
            every weight page read once), seconds
  RSS@open  RSS right after mw_model_open, MiB
  peak@open peak RSS (VmHWM) right after mw_model_open, MiB: the peak at load
  peak      peak RSS (VmHWM) at the end of the run, MiB

Models: SmolLM2-135M Q4_1 and the synthetic 1.1B Q4_0 (written by
make_synthetic_model when absent; --no-synthetic skips it). Runs as root lock
past RLIMIT_MEMLOCK (CAP_IPC_LOCK); otherwise `ulimit -l` must allow the file.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

import memlib

OPTIONS = [
    ("default", []),
    ("populate", ["--populate"]),
    ("lock", ["--lock"]),
    ("random", ["--access", "random"]),
    ("sequential", ["--access", "sequential"]),
    ("willneed", ["--access", "willneed"]),
]


def private_copy(src, directory):
    dst = os.path.join(directory, os.path.basename(src))
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)  # written back, so DONTNEED can drop every page
    finally:
        os.close(fd)
    return dst


def measure(args, model, extra):
    cmd = memlib.memwise_cmd(args, model, 256, 16, 8, extra)
    r = memlib.run_probe(cmd)
    return {
        "cached": r["file_cached_before_bytes"], "open": r["open_seconds"], "first": r["first_token_seconds"],
        "rss_open": r["after_open"]["rss"], "peak_open": r["after_open"]["peak_rss"], "peak": r["end"]["peak_rss"],
    }


def main():
    ap = argparse.ArgumentParser(description="Load time and peak RSS at load per loading option.")
    ap.add_argument("--model", action="append", help="GGUF file (repeatable)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic 1.1B model")
    ap.add_argument("--synthetic", default=memlib.SYNTHETIC_1B)
    ap.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
    memlib.add_common_args(ap, threads=1)
    args = ap.parse_args()
    results = []
    try:
        models = args.model or [memlib.find_model(memlib.SMOLLM)]
        if not args.model and not args.no_synthetic:
            models.append(memlib.ensure_synthetic_1b(args.synthetic, memlib.default_synth_tool(args.probe)))
        with tempfile.TemporaryDirectory(dir=os.path.dirname(memlib.SYNTHETIC_1B)) as tmp:
            for src in models:
                model = private_copy(src, tmp)
                runs = {name: {"cold": [], "warm": []} for name, _ in OPTIONS}
                for rep in range(args.repeat):
                    print(f"{os.path.basename(src)}: repeat {rep + 1}/{args.repeat}", file=sys.stderr, flush=True)
                    for name, extra in OPTIONS:
                        memlib.evict_from_page_cache(model)
                        runs[name]["cold"].append(measure(args, model, extra))
                        runs[name]["warm"].append(measure(args, model, extra))  # the cold run read it all
                os.unlink(model)
                results.append({"model": src, "file_bytes": os.path.getsize(src), "runs": runs})
    except memlib.BenchError as err:
        print(f"load_options: error: {err}", file=sys.stderr)
        return 1

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"repeat": args.repeat, "threads": args.threads, "results": results}, f, indent=1)
    for res in results:
        print(f"\nmodel {res['model']} ({memlib.mib(res['file_bytes'])} MiB), median of {args.repeat}; "
              "seconds and MiB")
        header = ("option", "cache", "cached", "open s", "first s", "RSS@open", "peak@open", "peak")
        rows = []
        for name, _ in OPTIONS:
            for cache in ("cold", "warm"):
                rs = res["runs"][name][cache]
                med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                rows.append((name, cache, memlib.mib(med["cached"]), f"{med['open']:.3f}", f"{med['first']:.3f}",
                             memlib.mib(med["rss_open"]), memlib.mib(med["peak_open"]), memlib.mib(med["peak"])))
        memlib.print_table(header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
