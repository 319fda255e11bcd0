#!/usr/bin/env python3
"""llama.cpp counterpart of mw_memprobe, for the memory benchmarks.

Run with a Python that has llama-cpp-python (e.g. the oracle venv):

    python bench/llama_memprobe.py MODEL [--ctx N] [--prompt-tokens N]
        [--gen-tokens N] [--threads N] [--no-mmap] [--repack] [--hold]

Loads MODEL through llama.cpp's C API (llama-cpp-python's bindings), creates a
context of --ctx tokens (F16 KV cache, llama.cpp's default batch sizes),
decodes --prompt-tokens pseudo-random token ids and --gen-tokens greedy
tokens, and prints one JSON object with the same keys as mw_memprobe:
times, memory before the load (the Python interpreter and the llama.cpp
library: subtract it to compare engines), after the model load, and at the
end (/proc/self/smaps_rollup, VmHWM). --no-mmap is llama.cpp's copy-everything
mode (weights read into anonymous memory). --hold keeps everything alive
until stdin reaches end of file, like mw_memprobe --hold.

llama.cpp's extra CPU buffer types (AMX and weight repacking) are off unless
--extra-bufts: the AMX path crashes on this machine (see compare_llamacpp.py).
On an x86 CPU without AMX, llama.cpp's default is to repack Q4_0 (and Q4_K,
IQ4_NL) matrix weights into an interleaved layout, a private copy in anonymous
memory. --repack reproduces that default here without AMX: the Q4_0 matrix
weights (blk.*.attn_q/k/v/output, ffn_gate/up/down, output) are put in the
CPU_REPACK buffer type through llama.cpp's tensor buffer-type overrides. A
file without Q4_0 matrices (SmolLM2 Q4_1) is unchanged by it, as with
llama.cpp's default.
"""

import argparse
import ctypes
import json
import os
import random
import sys
import time

FIELDS = {"Rss": "rss", "Pss": "pss", "Pss_Anon": "pss_anon", "Pss_File": "pss_file",
          "Shared_Clean": "shared_clean", "Shared_Dirty": "shared_dirty",
          "Private_Clean": "private_clean", "Private_Dirty": "private_dirty",
          "Anonymous": "anonymous", "Locked": "locked"}


def read_mem():
    """This process's smaps_rollup figures and VmHWM, in bytes."""
    m = {v: 0 for v in FIELDS.values()}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in FIELDS:
                m[FIELDS[name]] = int(rest.split()[0]) * 1024
    m["peak_rss"] = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                m["peak_rss"] = int(line.split()[1]) * 1024
    return m


def repack_overrides(L, model_path):
    """A NULL-terminated llama_model_tensor_buft_override array that puts the
    file's Q4_0 matrix weights in the CPU_REPACK buffer type (None if none)."""
    import re
    import subprocess

    # The tensor list comes from the gguf package in a child process, so that
    # neither numpy nor the reader's page faults count in this one's memory.
    lister = ("import gguf, json, sys\n"
              "r = gguf.GGUFReader(sys.argv[1])\n"
              "print(json.dumps([t.name for t in r.tensors\n"
              "                  if t.tensor_type == gguf.GGMLQuantizationType.Q4_0]))\n")
    q4_0 = json.loads(subprocess.run([sys.executable, "-c", lister, model_path], check=True,
                                     capture_output=True, text=True).stdout)
    matrix = re.compile(r"^(blk\.[0-9]+\.(attn_(q|k|v|output)|ffn_(gate|up|down))|output)\.weight$")
    names = [n for n in q4_0 if matrix.match(n)]
    if not names:
        return None, 0
    libdir = os.path.join(os.path.dirname(L.__file__), "lib")
    base = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
    ggml = ctypes.CDLL(os.path.join(libdir, "libggml.so"))
    ggml.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    ggml.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
    base.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
    base.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    base.ggml_backend_buft_name.restype = ctypes.c_char_p
    base.ggml_backend_buft_name.argtypes = [ctypes.c_void_p]
    dev = ggml.ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    reg = ggml.ggml_backend_dev_backend_reg(dev)
    fp = base.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_dev_get_extra_bufts")
    if not fp:
        sys.exit("llama_memprobe: the CPU backend has no extra buffer types")
    bufts = ctypes.CFUNCTYPE(ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)(fp)(dev)
    repack = None
    i = 0
    while bufts[i]:
        if base.ggml_backend_buft_name(bufts[i]) == b"CPU_REPACK":
            repack = bufts[i]
        i += 1
    if not repack:
        sys.exit("llama_memprobe: no CPU_REPACK buffer type in this llama.cpp build")

    class Override(ctypes.Structure):  # struct llama_model_tensor_buft_override
        _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]

    arr = (Override * 2)()
    arr[0].pattern = ("^(" + "|".join(re.escape(n) for n in names) + ")$").encode()
    arr[0].buft = repack
    arr[1].pattern = None
    arr[1].buft = None
    return arr, len(names)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-mmap", action="store_true")
    ap.add_argument("--hold", action="store_true")
    ap.add_argument("--extra-bufts", action="store_true")
    ap.add_argument("--repack", action="store_true")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    if args.prompt_tokens < 1 or args.gen_tokens < 1 or args.prompt_tokens + args.gen_tokens > args.ctx:
        ap.error("need 1 <= prompt + gen <= ctx")

    import llama_cpp as L

    @L.llama_log_callback
    def quiet(level, text, user_data):
        if level == 4:  # GGML_LOG_LEVEL_ERROR
            sys.stderr.write(text.decode("utf-8", "replace"))

    L.llama_log_set(quiet, ctypes.c_void_p(0))
    L.llama_backend_init()
    n_repacked, overrides = 0, None
    if args.repack:  # before the baseline: it imports gguf and numpy
        overrides, n_repacked = repack_overrides(L, args.model)
    before = read_mem()

    t0 = time.perf_counter()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    # ctypes would silently accept a field the struct does not have: check.
    fields = {f[0] for f in L.llama_model_params._fields_}
    if "load_mode" in fields:  # newer llama.cpp: an enum instead of use_mmap
        mp.load_mode = L.LLAMA_LOAD_MODE_NONE if args.no_mmap else L.LLAMA_LOAD_MODE_MMAP
    elif "use_mmap" in fields:
        mp.use_mmap = not args.no_mmap
    else:
        sys.exit("llama_memprobe: llama_model_params has neither load_mode nor use_mmap")
    if "use_extra_bufts" not in fields:
        sys.exit("llama_memprobe: llama_model_params has no use_extra_bufts")
    mp.use_extra_bufts = args.extra_bufts
    if overrides is not None:
        mp.tensor_buft_overrides = ctypes.cast(overrides, ctypes.c_void_p)
    model = L.llama_model_load_from_file(args.model.encode(), mp)
    if not model:
        sys.exit(f"llama_memprobe: llama.cpp could not load {args.model}")
    t_open = time.perf_counter()
    after_open = read_mem()

    cp = L.llama_context_default_params()
    cp.n_ctx = args.ctx
    cp.n_threads = args.threads
    cp.n_threads_batch = args.threads
    cp.type_k = L.GGML_TYPE_F16
    cp.type_v = L.GGML_TYPE_F16
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        sys.exit("llama_memprobe: llama.cpp could not create a context")
    t_engine = time.perf_counter()

    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    skip = {L.llama_vocab_bos(vocab), L.llama_vocab_eos(vocab), L.llama_vocab_eot(vocab)}
    rng = random.Random(args.seed)
    prompt = []
    while len(prompt) < args.prompt_tokens:
        t = rng.randrange(n_vocab)
        if t not in skip:
            prompt.append(t)

    n_batch = cp.n_batch
    batch = L.llama_batch_init(max(n_batch, 1), 0, 1)
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
            sys.exit(f"llama_memprobe: llama_decode returned {rc} at position {start_pos}")

    for start in range(0, len(prompt), n_batch):
        decode(prompt[start:start + n_batch], start)
    pos = len(prompt)
    t_first = t_last = 0.0
    for i in range(args.gen_tokens):
        tok = L.llama_sampler_sample(sampler, ctx, -1)
        t_last = time.perf_counter()
        if i == 0:
            t_first = t_last
        if i + 1 < args.gen_tokens:
            decode([tok], pos)
            pos += 1
    end = read_mem()

    file_bytes = os.path.getsize(args.model)
    print(json.dumps({
        "engine": "llama.cpp", "model": args.model, "pid": os.getpid(), "ctx": args.ctx,
        "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens, "threads": args.threads,
        "use_mmap": not args.no_mmap, "extra_bufts": args.extra_bufts, "repacked_tensors": n_repacked,
        "n_batch": cp.n_batch, "n_ubatch": cp.n_ubatch, "file_bytes": file_bytes,
        "llama_cpp_python": L.__version__,
        "open_seconds": t_open - t0, "engine_seconds": t_engine - t_open,
        "first_token_seconds": t_first - t0,
        "decode_tokens_per_s": (args.gen_tokens - 1) / (t_last - t_first) if t_last > t_first else 0.0,
        "before_open": before, "after_open": after_open, "end": end,
    }), flush=True)

    if args.hold:
        sys.stdin.readline()
    L.llama_sampler_free(sampler)
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
