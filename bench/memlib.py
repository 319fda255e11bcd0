"""Shared pieces of the memory benchmarks (multiprocess_pss.py, load_options.py,
context_memory.py): finding models and probes, running a probe process, reading
another process's /proc figures, and printing tables. Standard library only."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
MIB = 2 ** 20
SMOLLM = "SmolLM2-135M-Instruct.Q4_1.gguf"
ORACLE_PYTHON = os.path.expanduser("~/.cache/memwise/oracle-venv/bin/python")
SYNTHETIC_1B = os.path.expanduser("~/.cache/memwise/bench/synthetic-1.1b-q4_0.gguf")


class BenchError(Exception):
    pass


def find_model(name):
    """As the tests look: $MEMWISE_TEST_MODELS, ../shared/models, the setup cache."""
    dirs = [os.environ.get("MEMWISE_TEST_MODELS"), os.path.join(SOURCE, "..", "shared", "models"),
            os.environ.get("MEMWISE_MODEL_CACHE"), os.path.expanduser("~/.cache/memwise/models")]
    for d in dirs:
        if d and os.path.isfile(os.path.join(d, name)):
            return os.path.abspath(os.path.join(d, name))
    raise BenchError(f"model {name} not found ($MEMWISE_TEST_MODELS, ../shared/models, "
                     "~/.cache/memwise/models); run scripts/setup.sh")


def default_probe():
    for build in ("build", "build-bench"):
        p = os.path.join(SOURCE, build, "bench", "mw_memprobe")
        if os.path.isfile(p):
            return p
    return os.path.join(SOURCE, "build", "bench", "mw_memprobe")


def default_llama_python():
    return ORACLE_PYTHON if os.path.isfile(ORACLE_PYTHON) else sys.executable


def add_common_args(ap, threads=1):
    ap.add_argument("--probe", default=default_probe(),
                    help="mw_memprobe binary (cmake -DMEMWISE_BUILD_BENCH=ON, target mw_memprobe)")
    ap.add_argument("--llama-python", default=default_llama_python(),
                    help="a Python with llama-cpp-python (default: the oracle venv)")
    ap.add_argument("--threads", type=int, default=threads, help="compute threads per process")


def memwise_cmd(args, model, ctx, prompt, gen, extra=(), hold=False):
    cmd = [args.probe, model, "--ctx", str(ctx), "--prompt-tokens", str(prompt),
           "--gen-tokens", str(gen), "--threads", str(args.threads), *extra]
    return cmd + (["--hold"] if hold else [])


def llama_cmd(args, model, ctx, prompt, gen, extra=(), hold=False):
    cmd = [args.llama_python, os.path.join(HERE, "llama_memprobe.py"), model, "--ctx", str(ctx),
           "--prompt-tokens", str(prompt), "--gen-tokens", str(gen), "--threads", str(args.threads), *extra]
    return cmd + (["--hold"] if hold else [])


def run_probe(cmd):
    """Runs a probe to completion; returns its JSON object."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-2000:]}")
    return parse_json_line(p.stdout, cmd)


def parse_json_line(text, cmd):
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"{' '.join(cmd)} printed no JSON object: {text[:500]}")


def smaps_rollup(pid):
    """Bytes per field of /proc/PID/smaps_rollup."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                out[name.strip()] = int(parts[0]) * 1024
    return out


def file_pss(pid, path):
    """Pss and Rss (bytes) of process pid's mappings of the file at path."""
    real = os.path.realpath(path)
    pss = rss = 0
    inside = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if not head.endswith(":"):  # a mapping header line
                fields = line.split(None, 5)
                inside = len(fields) == 6 and fields[5].strip() == real
            elif inside and head == "Pss:":
                pss += int(line.split()[1]) * 1024
            elif inside and head == "Rss:":
                rss += int(line.split()[1]) * 1024
    return pss, rss


def evict_from_page_cache(path):
    """posix_fadvise(DONTNEED) on the whole file: drops its clean cached pages
    that no process maps. Returns nothing; callers measure what stayed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def default_synth_tool(probe):
    """make_synthetic_model next to the probe (same build directory)."""
    return os.path.join(os.path.dirname(os.path.abspath(probe)), "make_synthetic_model")


def ensure_synthetic_1b(path, tool):
    """Writes the TinyLlama-1.1B-geometry Q4_0 model with random weights at
    path (make_synthetic_model's defaults) unless it is already there."""
    if os.path.isfile(path):
        return path
    if not os.path.isfile(tool):
        raise BenchError(f"{path} is absent and {tool} is not built (target make_synthetic_model)")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(f"writing {path} with {tool}...", file=sys.stderr, flush=True)
    p = subprocess.run([tool, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise BenchError(f"{tool} failed: {p.stderr[-2000:]}")
    return path


def mib(v):
    return f"{v / MIB:.1f}"


def print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"
