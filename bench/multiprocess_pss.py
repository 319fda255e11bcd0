#!/usr/bin/env python3
"""Weights shared across processes: total PSS of 1, 2, 4 and 8 processes that
each open the same model and decode.

    python3 bench/multiprocess_pss.py [--model PATH] [--probe build/bench/mw_memprobe]
        [--llama-python ~/.cache/memwise/oracle-venv/bin/python]
        [--counts 1,2,4,8] [--ctx 2048] [--prompt-tokens 64] [--gen-tokens 64]
        [--threads 1] [--engines memwise,llama-mmap,llama-nommap] [--json OUT.json]

For each engine and each count N, N processes start at once; each opens the
model (SmolLM2-135M Q4_1 by default), creates a context of --ctx tokens,
decodes --prompt-tokens + --gen-tokens, then holds everything open
(mw_memprobe --hold / llama_memprobe.py --hold). When all N are holding, this
script reads each one's /proc/PID/smaps_rollup and /proc/PID/smaps (the
mappings of the model file) from outside, then lets them exit. Printed per N:

  total PSS      sum of the processes' Pss (shared pages divided among sharers)
  model PSS      sum of the Pss of the model file's mappings: the weights,
                 counted once however many processes map them
  +PSS/proc      (total PSS(N) - total PSS(1)) / (N - 1): what one more
                 process costs
  anon/proc      mean Anonymous (private, not file-backed) per process, and the
                 part of it allocated after the pre-load baseline (the Python
                 interpreter for llama.cpp, ~1 MiB for mw_memprobe)
  private/proc   mean Private_Clean + Private_Dirty (includes file pages only
                 this process maps: with N = 1 the weights are "private")

Engines: memwise (mmap, always), llama.cpp with mmap, and llama.cpp with
mmap off (its copy-everything mode: every process reads its own copy of the
weights into anonymous memory). llama.cpp runs through llama-cpp-python
without its extra buffer types (AMX crashes on this machine).
"""

import argparse
import json
import subprocess
import sys
import tempfile

import memlib

ENGINES = {
    "memwise": ("memwise", []),
    "llama-mmap": ("llama.cpp mmap", []),
    "llama-nommap": ("llama.cpp no-mmap", ["--no-mmap"]),
}


def run_group(args, engine, n):
    label, extra = ENGINES[engine]
    if engine == "memwise":
        cmd = memlib.memwise_cmd(args, args.model, args.ctx, args.prompt_tokens, args.gen_tokens, hold=True)
    else:
        cmd = memlib.llama_cmd(args, args.model, args.ctx, args.prompt_tokens, args.gen_tokens, extra, hold=True)
    procs = []
    try:
        for _ in range(n):
            err = tempfile.TemporaryFile()
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
            procs.append((p, err))
        reports = []
        for p, err in procs:  # each prints its JSON once it has decoded, then holds
            line = p.stdout.readline()
            if not line:
                p.wait()
                err.seek(0)
                raise memlib.BenchError(f"{label} exited {p.returncode} before holding:\n"
                                        f"{err.read().decode(errors='replace')[-2000:]}")
            reports.append(memlib.parse_json_line(line, cmd))
        # all N are alive and holding: sample them now, from outside
        samples = []
        for p, _ in procs:
            roll = memlib.smaps_rollup(p.pid)
            fpss, frss = memlib.file_pss(p.pid, args.model)
            samples.append({"rollup": roll, "model_pss": fpss, "model_rss": frss})
    finally:
        for p, err in procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p, err in procs:
            p.wait()
            err.close()
    total_pss = sum(s["rollup"]["Pss"] for s in samples)
    anon = [s["rollup"]["Anonymous"] for s in samples]
    base_anon = [r["before_open"]["anonymous"] for r in reports]
    private = [s["rollup"]["Private_Clean"] + s["rollup"]["Private_Dirty"] for s in samples]
    return {
        "engine": engine, "label": label, "n": n,
        "total_pss": total_pss,
        "model_pss": sum(s["model_pss"] for s in samples),
        "anon_per_proc": sum(anon) / n,
        "anon_net_per_proc": sum(a - b for a, b in zip(anon, base_anon)) / n,
        "private_per_proc": sum(private) / n,
        "rss_per_proc": sum(s["rollup"]["Rss"] for s in samples) / n,
        "decode_tokens_per_s": [r["decode_tokens_per_s"] for r in reports],
        "samples": samples, "reports": reports,
    }


def main():
    ap = argparse.ArgumentParser(description="Total PSS of N processes sharing one model file.")
    ap.add_argument("--model", help=f"GGUF file (default: {memlib.SMOLLM})")
    ap.add_argument("--counts", default="1,2,4,8")
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--engines", default="memwise,llama-mmap,llama-nommap")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
    memlib.add_common_args(ap, threads=1)
    args = ap.parse_args()
    try:
        args.model = args.model or memlib.find_model(memlib.SMOLLM)
        counts = [int(c) for c in args.counts.split(",")]
        engines = args.engines.split(",")
        for e in engines:
            if e not in ENGINES:
                raise memlib.BenchError(f"unknown engine {e} (one of {', '.join(ENGINES)})")
        results = []
        for e in engines:
            for n in counts:
                print(f"{ENGINES[e][0]}: {n} process(es)...", file=sys.stderr, flush=True)
                results.append(run_group(args, e, n))
    except memlib.BenchError as err:
        print(f"multiprocess_pss: error: {err}", file=sys.stderr)
        return 1

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "ctx": args.ctx, "prompt_tokens": args.prompt_tokens,
                       "gen_tokens": args.gen_tokens, "threads": args.threads, "results": results}, f, indent=1)
    print(f"model {args.model}: ctx {args.ctx}, prompt {args.prompt_tokens} + gen {args.gen_tokens} tokens, "
          f"{args.threads} thread(s) per process; MiB")
    header = ("engine", "N", "total PSS", "model PSS", "+PSS/proc", "anon/proc", "anon-base/proc",
              "private/proc")
    rows = []
    for r in results:
        one = next(x for x in results if x["engine"] == r["engine"] and x["n"] == counts[0])
        growth = ((r["total_pss"] - one["total_pss"]) / (r["n"] - one["n"])) if r["n"] > one["n"] else None
        rows.append((r["label"], r["n"], memlib.mib(r["total_pss"]), memlib.mib(r["model_pss"]),
                     memlib.mib(growth) if growth is not None else "-", memlib.mib(r["anon_per_proc"]),
                     memlib.mib(r["anon_net_per_proc"]), memlib.mib(r["private_per_proc"])))
    memlib.print_table(header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
