#!/usr/bin/env python3
"""Side-by-side benchmark: memwise against llama.cpp on the same GGUF file.

Usage (with a Python that has llama-cpp-python installed):

    python bench/compare_llamacpp.py --model PATH --memwise build/tools/cli/memwise \
        [--prompt-tokens 512] [--gen-tokens 128] [--threads 2] [--repeat 3] [--json]

Each repeat runs both engines once, each in its own fresh process so that its
peak RSS is its own; the order alternates between repeats so neither engine
always runs on a warmer page cache. The medians over repeats are reported with
the ratio memwise / llama.cpp (above 1 is better for tokens/s, below 1 is
better for seconds and bytes).

memwise runs as
    memwise bench MODEL --prompt-tokens N --gen-tokens M --threads T --json
and must print a JSON object with prefill_tokens_per_s, decode_tokens_per_s,
peak_rss_bytes and load_seconds.

llama.cpp runs through llama-cpp-python's C API in a child process of this
script (`--llama-worker`): the same file, n_threads = n_threads_batch = T,
n_ctx = prompt + gen rounded up to a multiple of 256, n_batch = n_ubatch = 512,
F16 KV cache, everything else at llama.cpp's defaults. It measures
  load    model load + context creation, in seconds;
  prefill the prompt (seeded random token ids) in llama_decode calls of up to
          n_batch tokens, logits for the last one only;
  decode  M single-token llama_decode calls, each fed the greedy (argmax)
          token from llama.cpp's own greedy sampler;
  RSS     getrusage(RUSAGE_SELF).ru_maxrss, which includes the Python
          interpreter: its size before the model loads is reported as
          llama_baseline_rss_bytes so it can be subtracted by eye.
Both engines' peak RSS is also measured from outside with wait4() ("OS").

llama.cpp's extra CPU buffer types (AMX and weight repacking) are off by
default because the AMX path crashes on machines whose kernel or hypervisor
does not grant AMX tile state; --llama-extra-bufts turns them back on.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MEMWISE_KEYS = ("prefill_tokens_per_s", "decode_tokens_per_s",
                "peak_rss_bytes", "load_seconds")
METRICS = (  # key, label, scale, format
    ("load_seconds", "load (s)", 1.0, "{:.3f}"),
    ("prefill_tokens_per_s", "prefill (tokens/s)", 1.0, "{:.1f}"),
    ("decode_tokens_per_s", "decode (tokens/s)", 1.0, "{:.1f}"),
    ("peak_rss_bytes", "peak RSS, self-reported (MiB)", 1.0 / 2**20, "{:.1f}"),
    ("os_peak_rss_bytes", "peak RSS, OS wait4 (MiB)", 1.0 / 2**20, "{:.1f}"),
)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- llama.cpp worker

def llama_worker(args):
    """Runs in its own process; prints one JSON object on stdout."""
    import ctypes
    import random
    import resource

    import llama_cpp as L

    def maxrss_bytes():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    @L.llama_log_callback
    def quiet(level, text, user_data):
        if level == 4:  # GGML_LOG_LEVEL_ERROR
            sys.stderr.write(text.decode("utf-8", "replace"))

    L.llama_log_set(quiet, ctypes.c_void_p(0))
    baseline_rss = maxrss_bytes()
    n_ctx = round_up(args.prompt_tokens + args.gen_tokens + 1, 256)

    t0 = time.perf_counter()
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    mp.use_extra_bufts = args.llama_extra_bufts
    model = L.llama_model_load_from_file(args.model.encode(), mp)
    if not model:
        raise BenchError(f"llama.cpp could not load {args.model}")
    cp = L.llama_context_default_params()
    cp.n_ctx = n_ctx
    cp.n_batch = 512
    cp.n_ubatch = 512
    cp.n_threads = args.threads
    cp.n_threads_batch = args.threads
    cp.type_k = L.GGML_TYPE_F16
    cp.type_v = L.GGML_TYPE_F16
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        raise BenchError("llama.cpp could not create a context")
    load_s = time.perf_counter() - t0

    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    rng = random.Random(args.seed)
    prompt = [rng.randrange(n_vocab) for _ in range(args.prompt_tokens)]

    batch = L.llama_batch_init(512, 0, 1)
    sampler = L.llama_sampler_init_greedy()

    def decode(tokens, start_pos):
        batch.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            batch.token[i] = t
            batch.pos[i] = start_pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if i == len(tokens) - 1 else 0
        rc = L.llama_decode(ctx, batch)
        if rc != 0:
            raise BenchError(f"llama_decode returned {rc} at position {start_pos}")

    t0 = time.perf_counter()
    for start in range(0, len(prompt), 512):
        decode(prompt[start:start + 512], start)
    L.llama_synchronize(ctx)
    prefill_s = time.perf_counter() - t0

    pos = len(prompt)
    t0 = time.perf_counter()
    for _ in range(args.gen_tokens):
        tok = L.llama_sampler_sample(sampler, ctx, -1)
        decode([tok], pos)
        pos += 1
    L.llama_synchronize(ctx)
    decode_s = time.perf_counter() - t0

    L.llama_sampler_free(sampler)
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)

    result = {
        "load_seconds": load_s,
        "prefill_tokens_per_s": args.prompt_tokens / prefill_s,
        "decode_tokens_per_s": args.gen_tokens / decode_s,
        "peak_rss_bytes": maxrss_bytes(),
        "baseline_rss_bytes": baseline_rss,
        "n_ctx": n_ctx,
    }
    print(json.dumps(result))


# ---------------------------------------------------------------- running the engines

def round_up(n, multiple):
    return (n + multiple - 1) // multiple * multiple


def run_child(cmd, what):
    """Runs cmd; returns (stdout text, OS-measured peak RSS in bytes)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        except OSError as e:
            raise BenchError(f"{what}: cannot run {cmd[0]}: {e}") from e
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        raise BenchError(f"{what} {how}\ncommand: {' '.join(cmd)}\n"
                         f"stderr (tail):\n{stderr[-2000:]}")
    return stdout, usage.ru_maxrss * 1024


def parse_json_object(text, what):
    """The JSON object in text: all of it, or the first object that parses."""
    text = text.strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")
        if start < 0:
            raise BenchError(f"{what} printed no JSON object; stdout was:\n{text[:2000]}")
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError as e:
            raise BenchError(f"{what} printed invalid JSON ({e}); stdout was:\n"
                             f"{text[:2000]}") from e
    if not isinstance(value, dict):
        raise BenchError(f"{what} printed JSON that is not an object: {text[:200]}")
    return value


def run_memwise(args):
    cmd = [args.memwise, "bench", args.model,
           "--prompt-tokens", str(args.prompt_tokens),
           "--gen-tokens", str(args.gen_tokens),
           "--threads", str(args.threads), "--json"]
    stdout, os_rss = run_child(cmd, "memwise bench")
    report = parse_json_object(stdout, "memwise bench")
    missing = [k for k in MEMWISE_KEYS if k not in report]
    if missing:
        raise BenchError(f"memwise bench JSON lacks {', '.join(missing)} "
                         f"(needs {', '.join(MEMWISE_KEYS)}); it had: "
                         f"{', '.join(sorted(report)) or 'no keys'}")
    for k in MEMWISE_KEYS:
        if not isinstance(report[k], (int, float)) or isinstance(report[k], bool):
            raise BenchError(f"memwise bench JSON: {k} is {report[k]!r}, not a number")
    result = {k: float(report[k]) for k in MEMWISE_KEYS}
    result["os_peak_rss_bytes"] = float(os_rss)
    return result, report


def run_llama(args):
    cmd = [sys.executable, os.path.abspath(__file__), "--llama-worker",
           "--model", args.model,
           "--prompt-tokens", str(args.prompt_tokens),
           "--gen-tokens", str(args.gen_tokens),
           "--threads", str(args.threads), "--seed", str(args.seed)]
    if args.llama_extra_bufts:
        cmd.append("--llama-extra-bufts")
    stdout, os_rss = run_child(cmd, "llama.cpp worker")
    report = parse_json_object(stdout, "llama.cpp worker")
    report["os_peak_rss_bytes"] = float(os_rss)
    return report


# ---------------------------------------------------------------- report

def medians(runs):
    return {key: statistics.median(r[key] for r in runs) for key, *_ in METRICS}


def print_table(config, mw, ll, ratio, baseline):
    print(f"model {config['model']}: prompt {config['prompt_tokens']} tokens, "
          f"gen {config['gen_tokens']} tokens, {config['threads']} threads, "
          f"median of {config['repeat']}")
    head = ("metric", "memwise", "llama.cpp", "memwise/llama.cpp")
    rows = [head]
    for key, label, scale, fmt in METRICS:
        rows.append((label, fmt.format(mw[key] * scale), fmt.format(ll[key] * scale),
                     f"{ratio[key]:.2f}" if ratio[key] is not None else "n/a"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join([r[0].ljust(widths[0])] +
                        [r[i].rjust(widths[i]) for i in range(1, 4)]))
    print(f"(llama.cpp's RSS includes the Python interpreter, "
          f"{baseline / 2**20:.1f} MiB before the model loaded)")


def main():
    ap = argparse.ArgumentParser(
        description="Benchmark memwise against llama.cpp on the same GGUF file.")
    ap.add_argument("--model", required=True, help="GGUF file both engines load")
    ap.add_argument("--memwise", default="build/tools/cli/memwise",
                    help="path of the memwise command")
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1234,
                    help="seed of llama.cpp's random prompt token ids")
    ap.add_argument("--llama-extra-bufts", action="store_true",
                    help="let llama.cpp use its AMX / repacked weight buffers")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--llama-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    for name in ("prompt_tokens", "gen_tokens", "threads", "repeat"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if not os.path.isfile(args.model):
        ap.error(f"model file {args.model} not found")

    try:
        if args.llama_worker:
            llama_worker(args)
            return 0
        try:
            import llama_cpp  # noqa: F401  (fail here, not in every worker)
        except ImportError:
            raise BenchError("this script needs llama-cpp-python: run it with the "
                             "Python of a virtual environment that has it")
        mw_runs, ll_runs, mw_reports = [], [], []
        for r in range(args.repeat):
            order = ("memwise", "llama") if r % 2 == 0 else ("llama", "memwise")
            for engine in order:
                if engine == "memwise":
                    result, report = run_memwise(args)
                    mw_runs.append(result)
                    mw_reports.append(report)
                else:
                    ll_runs.append(run_llama(args))
                print(f"repeat {r + 1}/{args.repeat}: {engine} done", file=sys.stderr)
    except BenchError as e:
        print(f"compare_llamacpp: error: {e}", file=sys.stderr)
        return 1

    mw, ll = medians(mw_runs), medians(ll_runs)
    ratio = {k: (mw[k] / ll[k] if ll[k] else None) for k, *_ in METRICS}
    baseline = statistics.median(r["baseline_rss_bytes"] for r in ll_runs)
    config = {"model": args.model, "memwise": args.memwise,
              "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
              "threads": args.threads, "repeat": args.repeat, "seed": args.seed,
              "llama_n_ctx": ll_runs[0]["n_ctx"], "llama_n_batch": 512,
              "llama_n_ubatch": 512, "llama_extra_bufts": args.llama_extra_bufts}
    if args.json:
        print(json.dumps({
            "config": config,
            "memwise": {"median": mw, "runs": mw_runs, "reports": mw_reports},
            "llama_cpp": {"median": ll, "runs": ll_runs,
                          "baseline_rss_bytes": baseline},
            "ratio_memwise_over_llamacpp": ratio,
        }, indent=2))
    else:
        print_table(config, mw, ll, ratio, baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
