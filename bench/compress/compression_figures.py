#!/usr/bin/env python3
"""Figures for docs/COMPRESSION.md (quantization and pruning sections).

For one model (the F32 or dequantized reference) this makes, with `memwise
quantize` / `memwise prune` and, when LLAMA_CPP_BIN (or --llama-bin) names a
llama.cpp build directory, with llama-quantize / llama-imatrix:
  - every quantization type, round-to-nearest and importance-weighted
    (calibration text), next to llama-quantize without and with an imatrix
    from the same calibration text;
  - mixed precision at the sizes of the single-type files (and --mixed-extra
    budgets), each next to the best single-type file at or below its size;
  - 25 % of the FFN channels (and of the KV groups) pruned by importance, by
    measured per-layer allocation, and at random;
and measures each file against the reference on held-out text with
`memwise eval --ref` (KL, top-1, perplexity) and, when llama.cpp is there,
with `llama-perplexity --kl-divergence`. Prints Markdown.

Usage: compression_figures.py --memwise build/tools/cli/memwise --model M.gguf
       --calib CALIB.txt --heldout HELD.txt --out DIR [--ctx 256] [--skip-prune]
"""
import argparse
import json
import os
import re
import subprocess
import sys

TYPES = ["F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0"]
LLAMA_NAME = {"Q4_K": "Q4_K_S", "Q5_K": "Q5_K_S"}  # all-Q4_K / all-Q5_K presets


def run(cmd, env=None, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if check and p.returncode != 0:
        sys.stderr.write(" ".join(cmd) + "\n" + p.stderr[-3000:])
        raise SystemExit(1)
    return p


class Ctx:
    def __init__(self, a):
        self.a = a
        self.llama = a.llama_bin or os.environ.get("LLAMA_CPP_BIN", "")
        if self.llama and not os.path.exists(os.path.join(self.llama, "llama-perplexity")):
            sys.stderr.write(f"no llama.cpp binaries in {self.llama}: skipping the llama.cpp columns\n")
            self.llama = ""
        self.env = dict(os.environ)
        if self.llama:
            self.env["LD_LIBRARY_PATH"] = self.llama + ":" + self.env.get("LD_LIBRARY_PATH", "")
        self.base = os.path.join(a.out, "base.kld")

    def mw(self, *args):
        return run([self.a.memwise, *args])

    def ll(self, tool, *args, check=True):
        return run([os.path.join(self.llama, tool), *args], env=self.env, check=check)

    def eval_mw(self, path):
        p = run([self.a.memwise, "eval", path, "--text", self.a.heldout, "--ref", self.a.model, "--ctx",
                 str(self.a.ctx), "--threads", str(self.a.threads), "--json"], check=False)
        if p.returncode != 0:
            return None
        d = json.loads(p.stdout)
        return {"ppl": d["perplexity"], "kl": d["ref"]["kl_mean"], "top1": d["ref"]["top1_agreement"]}

    def eval_ll(self, path):
        if not self.llama:
            return None
        if not os.path.exists(self.base):
            self.ll("llama-perplexity", "-m", self.a.model, "-f", self.a.heldout, "-c", str(self.a.ctx), "-t",
                    str(self.a.threads), "-nr", "--kl-divergence-base", self.base)
        for _ in range(2):  # one retry: a crash of the peer is not a figure
            p = self.ll("llama-perplexity", "-m", path, "-f", self.a.heldout, "-c", str(self.a.ctx), "-t",
                        str(self.a.threads), "-nr", "--kl-divergence-base", self.base, "--kl-divergence", check=False)
            out = p.stdout + p.stderr
            if re.search(r"Mean\s+KLD:", out):
                break
        kl = re.search(r"Mean\s+KLD:\s+([0-9.]+)", out)
        top = re.search(r"Same top p:\s+([0-9.]+)", out)
        ppl = re.search(r"Mean PPL\(Q\)\s+:\s+([0-9.]+)", out)
        if not kl:
            return None
        return {"kl": float(kl.group(1)), "top1": float(top.group(1)) / 100, "ppl": float(ppl.group(1))}


def fmt(r, key, f):
    return f.format(r[key]) if r else "n/a"


def row(name, path, ctx, note="", peer=False):
    """peer: also llama-perplexity (always for llama-quantize files; for memwise
    files only with --peer-eval-all, since the two agree within 1 %)."""
    size = os.path.getsize(path)
    m = ctx.eval_mw(path)
    l = ctx.eval_ll(path) if (peer or ctx.a.peer_eval_all) else None
    cells = [name, str(size), fmt(m, "kl", "{:.5f}"), fmt(m, "top1", "{:.1%}"), fmt(m, "ppl", "{:.2f}"),
             fmt(l, "kl", "{:.5f}"), fmt(l, "top1", "{:.1%}"), note]
    print("| " + " | ".join(cells) + " |", flush=True)
    return size, m


def types_used(log):
    used = sorted(set(re.findall(r"-> (\w+) ", log)))
    return ",".join(t for t in used if t != "F32")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memwise", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--calib", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--llama-bin", default="")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types", default="Q4_0,Q4_K,Q8_0")
    ap.add_argument("--types-late", default="Q4_1,Q5_K,Q6_K,F16,BF16")
    ap.add_argument("--skip-prune", action="store_true")
    ap.add_argument("--peer-eval-all", action="store_true", help="llama-perplexity for memwise's files too")
    ap.add_argument("--skip-mixed", action="store_true")
    ap.add_argument("--mixed-extra", default="320000", help="more mixed-precision budgets (bytes, comma-separated)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    c = Ctx(a)
    types = a.types.split(",")
    head = ("| file | bytes | memwise eval KL | top-1 | PPL | llama-perplexity KL | top-1 | types / note |\n"
            "|---|---|---|---|---|---|---|---|")

    print(f"## Quantization of {os.path.basename(a.model)} (reference: the input), held-out "
          f"{os.path.basename(a.heldout)}, ctx {a.ctx}, calibration {os.path.basename(a.calib)}\n")
    print(head)
    row("reference", a.model, c, peer=True)
    imatrix = None
    if c.llama:
        imatrix = os.path.join(a.out, "imatrix.gguf")
        c.ll("llama-imatrix", "-m", a.model, "-f", a.calib, "-c", str(a.ctx), "-t", str(a.threads), "-nr", "-o", imatrix)
    sizes = {}
    def do_types(types):
      for t in types:
          for mode in (["rtn", "calib"] if t not in ("F16", "BF16") else ["rtn"]):
              out = os.path.join(a.out, f"mw-{t}-{mode}.gguf")
              args = ["quantize", a.model, out, "--type", t, "--threads", str(a.threads)]
              if mode == "calib":
                  args += ["--calib", a.calib]
              p = c.mw(*args)
              size, m = row(f"memwise {t} {'importance' if mode == 'calib' else 'RTN'}", out, c, types_used(p.stderr))
              sizes[(t, mode)] = (size, m)
          if c.llama:
              for im in ([None, imatrix] if t not in ("F16", "BF16") else [None]):
                  out = os.path.join(a.out, f"ll-{t}-{'imatrix' if im else 'plain'}.gguf")
                  # --allow-requantize: the reference may itself be quantized (SmolLM2 Q4_1).
                  args = (["--allow-requantize"] + (["--imatrix", im] if im else []) +
                          [a.model, out, LLAMA_NAME.get(t, t), str(a.threads)])
                  p = c.ll("llama-quantize", *args, check=False)
                  if p.returncode != 0:
                      print(f"| llama-quantize {t} | refused | | | | | | {p.stderr.strip().splitlines()[-1][:80]} |")
                      continue
                  used = sorted(set(re.findall(r"converting to (\w+)", p.stdout + p.stderr)))
                  row(f"llama-quantize {LLAMA_NAME.get(t, t)}{' imatrix' if im else ''}", out, c, ",".join(used), peer=True)


    do_types(types)
    if not a.skip_mixed:
        print("\n## Mixed precision at the size of single-type files (importance-weighted encoders)\n")
        print("| budget | file bytes | memwise eval KL | top-1 | PPL | best memwise single-type file <= budget | its KL | "
              "types / note |\n|---|---|---|---|---|---|---|---|")
        # At the Q4_0 size there is no choice (every tensor at its smallest
        # type is that file), so: 3 % above it, at the Q4_K (here Q4_1), Q5_0,
        # Q5_1 and Q8_0 sizes (those made), and at the --mixed-extra sizes.
        targets = []
        if ("Q4_0", "calib") in sizes:
            targets.append((int(sizes[("Q4_0", "calib")][0] * 1.03), "Q4_0 + 3 %"))
        for t in ["Q4_K", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]:
            if (t, "calib") in sizes and sizes[(t, "calib")][0] not in [b for b, _ in targets]:
                targets.append((sizes[(t, "calib")][0], t))
        for extra in filter(None, a.mixed_extra.split(",")):
            targets.append((int(extra), "between"))
        for size, what in sorted(targets):
            out = os.path.join(a.out, f"mw-mixed-{size}.gguf")
            p = c.mw("quantize", a.model, out, "--calib", a.calib, "--target-size", str(size), "--threads", str(a.threads))
            sys.stderr.write("".join(l + "\n" for l in p.stderr.splitlines() if "measured" in l or "chosen" in l))
            m = c.eval_mw(out)
            # The single-type file to beat: the lowest KL at or below the budget.
            best = None
            for (t, mode), (sz, sm) in sizes.items():
                if sz <= size and sm and (best is None or sm["kl"] < best[2]["kl"]):
                    best = (f"{t} {'importance' if mode == 'calib' else 'RTN'} ({sz} B)", sz, sm)
            cells = [f"<= {size} ({what})", str(os.path.getsize(out)), fmt(m, "kl", "{:.5f}"), fmt(m, "top1", "{:.1%}"),
                     fmt(m, "ppl", "{:.2f}"), best[0] if best else "none", fmt(best[2] if best else None, "kl", "{:.5f}"),
                     types_used(p.stderr) + f"; {p.stderr.count('(round-to-nearest)')} tensors round-to-nearest"]
            print("| " + " | ".join(cells) + " |", flush=True)

    if not a.skip_prune:
        print("\n## Pruning (F32 results, no quantization)\n")
        print(head)
        jobs = [("FFN 25 % importance", ["--ffn-keep", "0.75", "--calib", a.calib]),
                ("FFN 25 % measured per layer", ["--ffn-keep", "0.75", "--calib", a.calib, "--per-layer"]),
                ("FFN 25 % random seed 1", ["--ffn-keep", "0.75", "--random", "1"]),
                ("FFN 25 % random seed 2", ["--ffn-keep", "0.75", "--random", "2"]),
                ("FFN 25 % random seed 3", ["--ffn-keep", "0.75", "--random", "3"]),
                ("heads 25 % importance", ["--heads-keep", "0.75", "--calib", a.calib]),
                ("heads 25 % measured per layer", ["--heads-keep", "0.75", "--calib", a.calib, "--per-layer"]),
                ("heads 25 % random seed 1", ["--heads-keep", "0.75", "--random", "1"])]
        mem = []
        for i, (name, args) in enumerate(jobs):
            out = os.path.join(a.out, f"pruned-{i}.gguf")
            c.mw("prune", a.model, out, *args, "--threads", str(a.threads))
            row(name, out, c)
            mem.append((name, out))
        print("\n| file | weights resident | KV reserved (ctx 512+128) | activations reserved | peak RSS |\n|---|---|---|---|---|")
        for name, path in [("reference", a.model)] + mem[:1] + mem[5:6]:
            d = json.loads(c.mw("bench", path, "--prompt-tokens", "64", "--gen-tokens", "16", "--threads",
                                str(a.threads), "--json").stdout)
            m = d["memory"]
            print(f"| {name} | {m['weights_resident_bytes']} | {m['kv_reserved_bytes']} | "
                  f"{m['activations_reserved_bytes']} | {d['peak_rss_bytes']} |")

    if a.types_late:
        print("\n## More quantization types\n")
        print(head)
        do_types(a.types_late.split(","))


if __name__ == "__main__":
    main()
