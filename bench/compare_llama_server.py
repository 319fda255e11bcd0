#!/usr/bin/env python3
"""Serving benchmarks, memwise against llama.cpp's server (docs/BENCHMARKS.md, "Serving").

Runs the workloads of bench/serving_bench (throughput under concurrency, memory
of a shared prefix, latency under load) on memwise through that program, and the
same requests (the same token ids) on llama-server over HTTP, alternating the two
engines run by run, and prints both with their ratios.

llama-server runs on the same model file with the same threads (-t/-tb), with
--parallel equal to the number of concurrent requests and a context of
--ctx-per-slot tokens per slot. Weight repacking is off (-nr): its AMX path
crashes on this machine, and Q4_1 has no repacked layout anyway. Its host-RAM
prompt cache is off (--cache-ram 0) unless --llama-cache-ram says otherwise.

llama.cpp's KV figures: allocated = slots x the slot context it reports at
start ("n_ctx_slot") x bytes per token (F16, the model's geometry); in use =
for every slot, the tokens its cache holds after its request (the server's
"tokens_cached": prompt + generated - 1) x bytes per token. Its server shares
no cells between slots, so that is what it holds while all of them run. Its process anonymous memory
(/proc/PID/smaps_rollup) is sampled every 50 ms.

Standard library only. Skips (exit 0, with a message) when llama-server is absent.

  flock /tmp/memwise-bench.lock python3 bench/compare_llama_server.py \\
      --bench build/bench/serving_bench --llama-bin /root/.cache/memwise/peer/build/bin
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
MIB = 2 ** 20
MASK = (1 << 64) - 1


# ---- prompts: the same ids as serving_bench.c's token_at() -------------------

def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & MASK
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & MASK
    return x ^ (x >> 31)


def token_at(n_vocab, stream, i):
    lo = 256 if n_vocab > 1000 else 3
    return lo + mix((stream * 1000003 + i) & MASK) % (n_vocab - lo)


def prompt(n_vocab, stream, n):
    return [token_at(n_vocab, stream, i) for i in range(n)]


def percentile(v, p):
    """Nearest rank, as serving_bench."""
    if not v:
        return 0.0
    v = sorted(v)
    k = min(len(v), max(1, int(p / 100.0 * len(v) + 0.999999)))
    return v[k - 1]


# ---- memwise: one serving_bench process per measurement -----------------------

def run_memwise(args, workload, extra):
    cmd = [args.bench, args.model, "--json", "--workload", workload, "--threads", str(args.threads),
           "--ctx", str(args.ctx_per_slot), *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# ---- llama-server ------------------------------------------------------------

def anon_bytes(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Anonymous:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class LlamaServer:
    def __init__(self, args, n_parallel, batch=None):
        self.args = args
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        cmd = [os.path.join(args.llama_bin, "llama-server"), "-m", args.model, "-t", str(args.threads),
               "-tb", str(args.threads), "-np", str(n_parallel), "-c", str(n_parallel * args.ctx_per_slot),
               "--host", "127.0.0.1", "--port", str(self.port), "-nr",
               "--cache-ram", str(args.llama_cache_ram)]
        if batch:
            cmd += ["-b", str(batch), "-ub", str(batch)]
        self.cmd = cmd
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = args.llama_bin + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.proc.returncode}; log: {self.log.name}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"llama-server did not become healthy; log: {self.log.name}")
            time.sleep(0.2)
        with open(self.log.name) as f:
            m = re.search(r"n_slots = (\d+), n_ctx_slot = (\d+), kv_unified = '(\w+)'", f.read())
        self.n_slots, self.n_ctx_slot, self.kv_unified = (int(m[1]), int(m[2]), m[3]) if m else (n_parallel, 0, "?")
        self.anon_start = anon_bytes(self.proc.pid)
        self.anon_peak = self.anon_start
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self):
        while self._sampling:
            self.anon_peak = max(self.anon_peak, anon_bytes(self.proc.pid))
            time.sleep(0.05)

    def stop(self):
        self._sampling = False
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def complete(self, ids, n_predict, cache_prompt=False):
        """One non-streaming /completion; returns (response, seconds)."""
        body = json.dumps({"prompt": ids, "n_predict": n_predict, "ignore_eos": True, "temperature": 0,
                           "top_k": 1, "cache_prompt": cache_prompt})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        t0 = time.monotonic()
        c.request("POST", "/completion", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        t1 = time.monotonic()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"llama-server /completion: HTTP {r.status}: {data[:300]!r}")
        return json.loads(data), t1 - t0

    def stream(self, ids, n_predict, times, stop_event=None):
        """A streaming /completion; appends the arrival time of every token event
        to times. Returns when it finishes or when stop_event is set (closing the
        connection cancels the request in the server)."""
        body = json.dumps({"prompt": ids, "n_predict": n_predict, "ignore_eos": True, "temperature": 0,
                           "top_k": 1, "cache_prompt": False, "stream": True})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        c.request("POST", "/completion", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"llama-server stream: HTTP {r.status}")
        while stop_event is None or not stop_event.is_set():
            line = r.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            t = time.monotonic()
            ev = json.loads(line[6:])
            if ev.get("stop"):
                break
            times.append(t)
        c.close()


def concurrently(fns):
    results = [None] * len(fns)
    errors = []

    def run(i):
        try:
            results[i] = fns[i]()
        except Exception as e:  # reported after the join
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def warm_up(srv, n_vocab):
    srv.complete(prompt(n_vocab, 999999, 32), 8)


def llama_throughput(args, info, n):
    n_vocab = info["n_vocab"]
    srv = LlamaServer(args, n)
    try:
        warm_up(srv, n_vocab)
        prompts = [prompt(n_vocab, 1000 + i, args.prompt_tokens) for i in range(n)]
        t0 = time.monotonic()
        res = concurrently([lambda p=p: srv.complete(p, args.gen_tokens) for p in prompts])
        secs = time.monotonic() - t0
        tokens = sum(r["tokens_predicted"] for r, _ in res)
        out = {"engine": "llama.cpp", "workload": "throughput", "concurrency": n, "tokens": tokens,
               "seconds": secs, "tokens_per_s": tokens / secs, "slots": srv.n_slots, "n_ctx_slot": srv.n_ctx_slot,
               "kv_unified": srv.kv_unified}
        if args.llama_sequential:
            k = min(n, args.sequential_max)
            t0 = time.monotonic()
            tok = sum(srv.complete(p, args.gen_tokens)[0]["tokens_predicted"] for p in prompts[:k])
            out["sequential_tokens_per_s"] = tok / (time.monotonic() - t0)
        return out
    finally:
        srv.stop()


def llama_prefix(args, info):
    n_vocab, n = info["n_vocab"], args.prefix_requests
    bpt = info["kv_bytes_per_token_f16"]
    srv = LlamaServer(args, n)
    try:
        warm_up(srv, n_vocab)
        anon_before = anon_bytes(srv.proc.pid)
        shared = prompt(n_vocab, 7, args.prefix_tokens)
        prompts = [shared + prompt(n_vocab, 5000 + i, args.tail_tokens) for i in range(n)]
        t0 = time.monotonic()
        res = concurrently([lambda p=p: srv.complete(p, args.tail_tokens, cache_prompt=True) for p in prompts])
        secs = time.monotonic() - t0
        time.sleep(0.1)
        # tokens each slot's cache holds: the server's own "tokens_cached"
        # (prompt + generated - 1), or that sum where it does not report it
        held = sum(r.get("tokens_cached", r["tokens_evaluated"] + r["tokens_predicted"] - 1) for r, _ in res)
        ideal = bpt * (args.prefix_tokens + n * 2 * args.tail_tokens)
        return {"engine": "llama.cpp", "workload": "prefix", "requests": n, "seconds": secs,
                "kv_in_use_peak_bytes": held * bpt, "kv_ideal_bytes": ideal, "kv_in_use_over_ideal": held * bpt / ideal,
                "kv_allocated_bytes": srv.n_slots * srv.n_ctx_slot * bpt, "n_ctx_slot": srv.n_ctx_slot,
                "process_anon_start_bytes": srv.anon_start, "process_anon_before_bytes": anon_before,
                "process_anon_peak_bytes": srv.anon_peak, "tokens_held": held}
    finally:
        srv.stop()


def llama_latency(args, info, batch):
    n_vocab, nb = info["n_vocab"], args.background
    probe_gen = 64
    srv = LlamaServer(args, nb + 1, batch=batch)
    try:
        warm_up(srv, n_vocab)
        stop = threading.Event()
        bg_times = [[] for _ in range(nb)]
        bg_gen = args.ctx_per_slot - args.prompt_tokens - 1
        bg = [threading.Thread(target=srv.stream, args=(prompt(n_vocab, 3000 + i, args.prompt_tokens), bg_gen,
                                                       bg_times[i], stop), daemon=True) for i in range(nb)]
        for t in bg:
            t.start()
        deadline = time.monotonic() + 300
        while not all(bg_times) and time.monotonic() < deadline:
            time.sleep(0.001)
        if not all(bg_times):
            raise RuntimeError("llama-server: background streams did not start")
        time.sleep(0.2)
        probe_times = []
        t_probe = time.monotonic()
        srv.stream(prompt(n_vocab, 77, args.long_prompt), probe_gen, probe_times)
        t_end = time.monotonic()
        stop.set()
        for t in bg:
            t.join(30)
        itl = [b - a for a, b in zip(probe_times, probe_times[1:])]
        others = [b - a for tl in bg_times for a, b in zip(tl, tl[1:]) if t_probe < b <= t_end]
        return {"engine": "llama.cpp", "workload": "latency", "batch": batch, "ttft_s": probe_times[0] - t_probe,
                "itl_p50_s": percentile(itl, 50), "itl_p99_s": percentile(itl, 99),
                "background_itl_p50_s": percentile(others, 50), "background_itl_p99_s": percentile(others, 99),
                "background_itl_max_s": max(others) if others else 0.0}
    finally:
        srv.stop()


# ---- driver ------------------------------------------------------------------

def median_of(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/memwise/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--bench", default=os.path.join(SOURCE, "build", "bench", "serving_bench"),
                    help="serving_bench (cmake -DMEMWISE_BUILD_BENCH=ON, target serving_bench)")
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_CPP_BIN", "/root/.cache/memwise/peer/build/bin"),
                    help="directory with llama-server (or $LLAMA_CPP_BIN)")
    ap.add_argument("--workloads", default="throughput,prefix,latency")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx-per-slot", type=int, default=1300,
                    help="context per sequence (memwise n_ctx) and per slot (llama-server -c is this x slots)")
    ap.add_argument("--concurrency", default="1,4,16,64")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--sequential-max", type=int, default=16,
                    help="the one-after-another baseline serves at most this many of the requests")
    ap.add_argument("--llama-sequential", action="store_true", help="also time llama-server one request at a time")
    ap.add_argument("--prefix-tokens", type=int, default=1000)
    ap.add_argument("--tail-tokens", type=int, default=100)
    ap.add_argument("--prefix-requests", type=int, default=16)
    ap.add_argument("--long-prompt", type=int, default=512)
    ap.add_argument("--background", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=64, help="max_batch_tokens (memwise) and -b/-ub (llama) when chunked")
    ap.add_argument("--llama-cache-ram", type=int, default=0, help="llama-server --cache-ram MiB (0 = off)")
    ap.add_argument("--repeat", type=int, default=1, help="alternating runs of each engine; medians are printed")
    ap.add_argument("--json", help="also write every raw result to this file")
    args = ap.parse_args()

    if not os.access(os.path.join(args.llama_bin, "llama-server"), os.X_OK):
        print(f"skipped: no llama-server in {args.llama_bin} (give --llama-bin or LLAMA_CPP_BIN)")
        return 0
    if not os.access(args.bench, os.X_OK):
        sys.exit(f"no serving_bench at {args.bench}: build it with -DMEMWISE_BUILD_BENCH=ON (target serving_bench)")
    if not os.path.isfile(args.model):
        sys.exit(f"no model at {args.model}")
    workloads = args.workloads.split(",")
    conc = [int(x) for x in args.concurrency.split(",")]
    common = ["--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens)]
    info = None
    rows = []

    def mw(workload, extra):
        nonlocal info
        out = run_memwise(args, workload, common + extra)
        info = info or next(r for r in out if r["workload"] == "info")
        for r in out:
            if r["workload"] != "info":
                add(r)

    def add(row):
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress, and the raw figures

    for rep in range(args.repeat):
        if "throughput" in workloads:
            for n in conc:
                mw("throughput", ["--concurrency", str(n), "--sequential-max", str(args.sequential_max)])
                add(llama_throughput(args, info, n))
        if "prefix" in workloads:
            mw("prefix", ["--prefix-tokens", str(args.prefix_tokens), "--tail-tokens", str(args.tail_tokens),
                          "--prefix-requests", str(args.prefix_requests)])
            add(llama_prefix(args, info))
        if "latency" in workloads:
            mw("latency", ["--long-prompt", str(args.long_prompt), "--background", str(args.background),
                           "--chunk", str(args.chunk)])
            whole = args.long_prompt + args.background + 1
            for batch in (args.chunk, whole):
                add(llama_latency(args, info, batch))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "info": info, "rows": rows}, f, indent=1)

    def sel(engine, workload, **kw):
        return [r for r in rows if r["engine"] == engine and r["workload"] == workload
                and all(r.get(k) == v for k, v in kw.items())]

    print(f"model {os.path.basename(args.model)}, {args.threads} threads, context {args.ctx_per_slot} per "
          f"sequence/slot, median of {args.repeat}")
    if "throughput" in workloads:
        print(f"\nthroughput: prompt {args.prompt_tokens}, generate {args.gen_tokens}, distinct prompts "
              "(generated tokens/s, all requests)")
        print(f"{'concurrent':>10} {'memwise':>9} {'mw 1-by-1':>10} {'mw gain':>8} {'llama.cpp':>10} "
              f"{'mw/llama':>9}")
        for n in conc:
            m, l = sel("memwise", "throughput", concurrency=n), sel("llama.cpp", "throughput", concurrency=n)
            mt, ms, lt = median_of(m, "tokens_per_s"), median_of(m, "sequential_tokens_per_s"), median_of(l, "tokens_per_s")
            print(f"{n:>10} {mt:>9.1f} {ms:>10.1f} {mt / ms:>7.2f}x {lt:>10.1f} {mt / lt:>8.2f}x")
    if "prefix" in workloads:
        print(f"\nshared prefix: {args.prefix_requests} requests, prefix {args.prefix_tokens} + "
              f"{args.tail_tokens} own + {args.tail_tokens} generated (MiB)")
        print(f"{'engine':>25} {'KV in use':>10} {'ideal':>7} {'/ideal':>7} {'KV alloc':>9} {'anon peak':>10}")
        lines = []
        for pc, stagger, name in ((1, 0, "memwise, all at once"), (1, 1, "memwise, first ahead"),
                                  (0, 0, "memwise, no prefix cache")):
            r = sel("memwise", "prefix", prefix_cache=pc, stagger=stagger)
            lines.append((name, median_of(r, "kv_in_use_peak_bytes"), median_of(r, "kv_ideal_bytes"),
                          median_of(r, "kv_resident_peak_bytes"), median_of(r, "process_anon_peak_bytes")))
        r = sel("llama.cpp", "prefix")
        lines.append(("llama.cpp", median_of(r, "kv_in_use_peak_bytes"), median_of(r, "kv_ideal_bytes"),
                      median_of(r, "kv_allocated_bytes"), median_of(r, "process_anon_peak_bytes")))
        for name, used, ideal, alloc, anon in lines:
            print(f"{name:>25} {used / MIB:>10.1f} {ideal / MIB:>7.1f} {used / ideal:>6.2f}x {alloc / MIB:>9.1f} "
                  f"{anon / MIB:>10.1f}")
        for m in lines[:2]:
            print(f"llama.cpp KV in use / {m[0]}: {lines[3][1] / m[1]:.2f}x; "
                  f"llama.cpp allocated / it: {lines[3][3] / m[1]:.2f}x")
        print("(memwise 'KV alloc' is the pool's resident pages; llama.cpp's is its slot caches, allocated at start)")
    if "latency" in workloads:
        print(f"\nlatency: one request with a {args.long_prompt}-token prompt (64 generated) arriving while "
              f"{args.background} others decode (seconds)")
        print(f"{'engine':>10} {'step tokens':>11} {'ttft':>7} {'itl p50':>8} {'itl p99':>8} {'others p50':>10} "
              f"{'others p99':>10} {'others max':>10}")
        whole = args.long_prompt + args.background + 1
        for batch in (args.chunk, whole):
            for eng, key in (("memwise", "max_batch_tokens"), ("llama.cpp", "batch")):
                r = sel(eng, "latency", **{key: batch})
                print(f"{eng:>10} {batch:>11} {median_of(r, 'ttft_s'):>7.3f} {median_of(r, 'itl_p50_s'):>8.4f} "
                      f"{median_of(r, 'itl_p99_s'):>8.4f} {median_of(r, 'background_itl_p50_s'):>10.4f} "
                      f"{median_of(r, 'background_itl_p99_s'):>10.4f} {median_of(r, 'background_itl_max_s'):>10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
