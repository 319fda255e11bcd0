#!/usr/bin/env python3
"""Greedy continuations with LoRA adapters: memwise vs llama.cpp (llama-cpp-python).

For each case, writes a random adapter for MODEL with the make_lora helper
(tests/model/make_lora.cpp: every attention and FFN matrix, the output head
when untied; alpha = 2 * rank), then generates greedily with
`memwise run --lora FILE:SCALE` and with llama_cpp.Llama(lora_path=FILE,
lora_scale=SCALE), and compares the text. Not a CI test: it needs the oracle
venv's llama_cpp (skips with a message and exit 0 when absent).

  python3 bench/lora_vs_llama_cpp.py BUILD_DIR MODEL [N_TOKENS]
"""
import os
import subprocess
import sys
import tempfile

# (rank, seed, magnitude, storage type, user scale)
CASES = [(4, 1, 0.05, "f32", 1.0), (8, 5, 0.1, "f16", 0.8), (16, 9, 0.05, "f32", 2.0), (2, 3, 0.2, "f16", -0.5)]
PROMPT = "Once upon a time"


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    build, model = sys.argv[1], os.path.abspath(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    try:
        import llama_cpp.llama_cpp as lc
        from llama_cpp import Llama
    except ImportError:
        print("SKIP: llama_cpp is not importable (use the oracle venv)")
        return 0
    # llama.cpp's extra CPU buffer types (AMX, repacking) crash here; Llama()
    # has no option for them, so its default model parameters are patched.
    default_params = lc.llama_model_default_params

    def params_without_extra_bufts():
        p = default_params()
        p.use_extra_bufts = False
        return p

    lc.llama_model_default_params = params_without_extra_bufts
    memwise = os.path.join(build, "tools/cli/memwise")
    make_lora = os.path.join(build, "tests/model/make_lora")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for rank, seed, mag, typ, scale in CASES:
            ad = os.path.join(tmp, f"lora_r{rank}_s{seed}.gguf")
            subprocess.run([make_lora, model, ad, str(rank), str(seed), str(mag), typ], check=True)
            mw = subprocess.run([memwise, "run", model, "-p", PROMPT, "-n", str(n), "--temp", "0", "--threads", "1",
                                 "--lora", f"{ad}:{scale}"], check=True, capture_output=True).stdout
            mw = mw[:-1] if mw.endswith(b"\n") else mw
            llm = Llama(model, lora_path=ad, lora_scale=scale, verbose=False, n_ctx=256, n_threads=1,
                        use_extra_bufts=False)
            ids = []
            for tok in llm.generate(llm.tokenize(PROMPT.encode()), top_k=1, temp=0):
                if len(ids) == n or tok == llm.token_eos():
                    break
                ids.append(tok)
            ref = llm.detokenize(ids)
            del llm
            same = mw == ref
            failures += 0 if same else 1
            first = next((i for i in range(min(len(mw), len(ref))) if mw[i] != ref[i]), min(len(mw), len(ref)))
            verdict = "same" if same else f"DIFFERENT from byte {first} of {len(ref)}"
            print(f"rank {rank:2d} {typ} magnitude {mag} scale {scale:5.2f}: {verdict}")
            print(f"  memwise:   {mw!r}\n  llama.cpp: {ref!r}")
    print(f"{len(CASES) - failures}/{len(CASES)} cases give the same greedy text")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
