#!/usr/bin/env python3
"""memwise against llama.cpp's own llama-bench on the same GGUF files.

    python3 bench/compare_llamabench.py --memwise build/tools/cli/memwise \
        [--llama-bin DIR] [--no-amx build/bench/no_amx] [--threads 2] \
        [--repeat 3] [--prompt 512] [--gen 128] [--json OUT] MODEL.gguf ...

For each model and each repeat, both engines run once, in alternating order
(A B, B A, ...), each in a fresh process, under the same thread count:
  llama.cpp: llama-bench -m MODEL -t T -p P -n G -r 1 -o json
             (pp P and tg G, each after llama-bench's own warm-up run;
             tg starts from an empty context)
  memwise:   memwise bench MODEL -t T -p P -n 1 --warmup 1 --json   (prefill)
             memwise bench MODEL -t T -p 1 -n G+1 --warmup 1 --json (decode:
             G tokens after the first, from an almost empty context)
The medians over repeats and the ratios memwise / llama.cpp are printed as a
Markdown table. --no-amx runs llama-bench through bench/no_amx (AMX refused,
llama.cpp's other x86 defaults, weight repacking included, kept): needed on
machines whose CPU reports AMX that the hypervisor does not grant.

The machine may be shared: before each run the script waits (up to
--idle-wait seconds) for a second in which the CPUs are at least 90% idle, and
it reports the busy fraction seen just before each run.

llama-bench is looked up in --llama-bin, else $LLAMA_CPP_BIN; when absent the
script says so and exits with status 0 (nothing to compare).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def run_json(cmd):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True).stdout
    start = min(i for i in (out.find("["), out.find("{")) if i >= 0)
    return json.loads(out[start:])


def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v)  # idle + iowait, total


def busy_fraction(seconds=1.0):
    i0, t0 = cpu_times()
    time.sleep(seconds)
    i1, t1 = cpu_times()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_idle(max_wait):
    """Waits for a quiet second (<= 10% busy); returns the last busy fraction."""
    deadline = time.time() + max_wait
    while True:
        b = busy_fraction()
        if b <= 0.10 or time.time() >= deadline:
            return b


def llama_once(args, bench, model):
    cmd = ([args.no_amx] if args.no_amx else []) + [
        bench, "-m", model, "-t", str(args.threads), "-p", str(args.prompt), "-n", str(args.gen), "-r", "1",
        "-o", "json"]
    res = {}
    for e in run_json(cmd):
        if e.get("n_prompt", 0) > 0 and e.get("n_gen", 0) == 0:
            res["prefill"] = e["avg_ts"]
        elif e.get("n_gen", 0) > 0 and e.get("n_prompt", 0) == 0:
            res["decode"] = e["avg_ts"]
    return res


def memwise_once(args, model):
    base = [args.memwise, "bench", model, "-t", str(args.threads), "--warmup", "1", "--json"]
    pre = run_json(base + ["-p", str(args.prompt), "-n", "1"])
    dec = run_json(base + ["-p", "1", "-n", str(args.gen + 1)])
    return {"prefill": pre["prefill_tokens_per_s"], "decode": dec["decode_tokens_per_s"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--memwise", required=True)
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_CPP_BIN", ""))
    ap.add_argument("--no-amx", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--json", default="")
    ap.add_argument("--idle-wait", type=float, default=120.0)
    args = ap.parse_args()
    bench = os.path.join(args.llama_bin, "llama-bench") if args.llama_bin else ""
    if not bench or not os.access(bench, os.X_OK):
        print("compare_llamabench: no llama-bench (set --llama-bin or LLAMA_CPP_BIN); nothing to compare")
        return 0

    raw = []
    busy = []
    rows = []
    for model in args.models:
        runs = {"memwise": [], "llama.cpp": []}
        for r in range(args.repeat):
            order = ["memwise", "llama.cpp"] if r % 2 == 0 else ["llama.cpp", "memwise"]
            for eng in order:
                busy.append(wait_idle(args.idle_wait))
                t0 = time.time()
                res = memwise_once(args, model) if eng == "memwise" else llama_once(args, bench, model)
                runs[eng].append(res)
                raw.append({"model": model, "engine": eng, "repeat": r, "seconds": time.time() - t0,
                            "busy_before": busy[-1], **res})
                print(f"# {os.path.basename(model)} {eng} run {r + 1} (busy before {100 * busy[-1]:.0f}%): {res}",
                      file=sys.stderr, flush=True)
        for metric in ("prefill", "decode"):
            m = statistics.median(x[metric] for x in runs["memwise"])
            l = statistics.median(x[metric] for x in runs["llama.cpp"])
            rows.append((os.path.basename(model), metric, m, l, m / l if l else float("nan")))

    print(f"threads {args.threads}, prompt {args.prompt}, gen {args.gen}, median of {args.repeat} alternating runs; "
          f"CPU busy (other processes) in the second before each run: {100 * min(busy):.0f}% to "
          f"{100 * max(busy):.0f}%")
    print()
    print("| model | metric | memwise (tokens/s) | llama.cpp (tokens/s) | memwise / llama.cpp |")
    print("|---|---|---:|---:|---:|")
    for name, metric, m, l, ratio in rows:
        label = f"prefill ({args.prompt})" if metric == "prefill" else f"decode ({args.gen})"
        print(f"| {name} | {label} | {m:.1f} | {l:.1f} | {ratio:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "raw": raw}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
