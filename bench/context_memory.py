#!/usr/bin/env python3
"""Peak RSS and private (anonymous) memory of one sequence at a given context
length: memwise against llama.cpp on the same file.

    python3 bench/context_memory.py [--probe build/bench/mw_memprobe]
        [--llama-python ~/.cache/memwise/oracle-venv/bin/python]
        [--ctx 2048,8192] [--prompt-tokens 64] [--gen-tokens 64] [--threads 1]
        [--model PATH ...] [--no-synthetic] [--json OUT.json]

Models: SmolLM2-135M-Instruct Q4_1 and a model of TinyLlama-1.1B's geometry in
Q4_0 with random weights (n_embd 2048, 22 layers, 32 heads, 4 KV heads, FFN
5632, vocab 32000), written by make_synthetic_model when absent.

Each run is one fresh process: the model is opened, a context of --ctx tokens
created (memwise: an engine with n_ctx = ctx, one sequence, F16 KV, default
batch; llama.cpp: n_ctx = ctx, F16 KV, its default batch sizes), a prompt of
--prompt-tokens token ids decoded and --gen-tokens greedy tokens generated.
Reported, in MiB:

  peak RSS        VmHWM at the end (weights pages included: file-backed,
                  shared, and the same file for both engines)
  peak-base       peak RSS minus the RSS before the model was loaded (the
                  Python interpreter and library for llama.cpp, the probe's
                  ~3 MiB for memwise)
  anon            private anonymous memory at the end (smaps_rollup
                  Anonymous), i.e. what no other process can share
  anon-base       anon minus the anonymous memory before the load: what the
                  engine itself allocated (KV, activations, copies of weights)

llama.cpp runs in two configurations: "llama.cpp" (its extra CPU buffer types
off, as compare_llamacpp.py runs it because AMX crashes here) and
"llama.cpp repack" (llama.cpp's default on an x86 CPU without AMX: Q4_0
matrix weights repacked into a private interleaved copy; see
llama_memprobe.py --repack). For a file without Q4_0 matrices (SmolLM2 Q4_1)
the two are the same and only the first is run. The ratios are memwise over
llama.cpp of anon-base and peak-base.
"""

import argparse
import json
import os
import sys

import memlib


def row_of(r):
    b, e = r["before_open"], r["end"]
    return {"peak": e["peak_rss"], "peak_net": e["peak_rss"] - b["rss"], "anon": e["anonymous"],
            "anon_net": e["anonymous"] - b["anonymous"], "decode_tokens_per_s": r["decode_tokens_per_s"]}


def main():
    ap = argparse.ArgumentParser(description="Peak RSS and private memory per context length.")
    ap.add_argument("--model", action="append", help="GGUF file (repeatable)")
    ap.add_argument("--ctx", default="2048,8192")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=64)
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
        for model in models:
            for ctx in [int(c) for c in args.ctx.split(",")]:
                p, g = args.prompt_tokens, args.gen_tokens
                name = os.path.basename(model)
                print(f"{name} ctx {ctx}: memwise", file=sys.stderr, flush=True)
                mw = memlib.run_probe(memlib.memwise_cmd(args, model, ctx, p, g))
                print(f"{name} ctx {ctx}: llama.cpp", file=sys.stderr, flush=True)
                ll = memlib.run_probe(memlib.llama_cmd(args, model, ctx, p, g))
                entry = {"model": model, "ctx": ctx, "memwise": mw, "llama": ll, "llama_repack": None}
                print(f"{name} ctx {ctx}: llama.cpp repack", file=sys.stderr, flush=True)
                lr = memlib.run_probe(memlib.llama_cmd(args, model, ctx, p, g, ["--repack"]))
                if lr["repacked_tensors"]:
                    entry["llama_repack"] = lr
                results.append(entry)
    except memlib.BenchError as err:
        print(f"context_memory: error: {err}", file=sys.stderr)
        return 1

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
                       "threads": args.threads, "results": results}, f, indent=1)
    print(f"prompt {args.prompt_tokens} + gen {args.gen_tokens} tokens, {args.threads} thread(s); MiB")
    header = ("model", "ctx", "engine", "peak RSS", "peak-base", "anon", "anon-base", "anon ratio", "peak ratio")
    rows = []
    for e in results:
        mw = row_of(e["memwise"])
        name = os.path.basename(e["model"]).replace(".gguf", "")
        rows.append((name, e["ctx"], "memwise", memlib.mib(mw["peak"]), memlib.mib(mw["peak_net"]),
                     memlib.mib(mw["anon"]), memlib.mib(mw["anon_net"]), "", ""))
        for key, label in (("llama", "llama.cpp"), ("llama_repack", "llama.cpp repack")):
            if not e[key]:
                continue
            ll = row_of(e[key])
            rows.append((name, e["ctx"], label, memlib.mib(ll["peak"]), memlib.mib(ll["peak_net"]),
                         memlib.mib(ll["anon"]), memlib.mib(ll["anon_net"]),
                         memlib.ratio(mw["anon_net"], ll["anon_net"]), memlib.ratio(mw["peak_net"], ll["peak_net"])))
    memlib.print_table(header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
