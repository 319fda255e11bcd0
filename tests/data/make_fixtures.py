#!/usr/bin/env python3
"""Writes the llama.cpp oracle fixtures in tests/data.

memwise's tokenizer, chat-template, forward-pass and greedy-decoding tests
compare against these files. They are made by llama.cpp (through the PyPI
package llama-cpp-python, which builds it) and committed as data; this script
is how to remake them. It is deterministic: run it twice and the files are the
same byte for byte (ORACLE_VERSION aside, which records the date).

Usage (from the repository root, with a Python that has llama-cpp-python,
numpy and jinja2 installed):

    python tests/data/make_fixtures.py \
        [--smollm2 ~/.cache/memwise/models/SmolLM2-135M-Instruct.Q4_1.gguf] \
        [--stories /work/shared/models/stories260K.gguf] \
        [--out tests/data] [--threads 2]

Files written (all text files may start with comment lines beginning '#'):

  tokenizer_<model>.txt   one case per line:
      <add_special 0|1> <parse_special 0|1> <hex of UTF-8 text> <ids>
      ids are comma-separated; an empty text is written as '-' and so is an
      empty id list.
  greedy_<model>.txt      one prompt per line:
      <add_special> <parse_special> <hex prompt text> <prompt ids> <generated ids>
      greedy (argmax) continuation of up to 32 tokens; stops after the first
      end-of-generation token, which is included.
  chat_smollm2.txt        <hex of JSON messages> <hex of rendered text>
      the model's own tokenizer.chat_template rendered with jinja2 and
      add_generation_prompt=True.
  teacher_<model>.bin     teacher-forced top-k next-token log-probabilities,
      little-endian: char magic[4] = "MWTF", u32 version = 1, u32 n_tokens,
      u32 k, u32 n_vocab, i32 tokens[n_tokens], then for each position p
      (the distribution of the token after tokens[0..p]): i32 ids[k],
      f32 logprobs[k]; ids sorted by log-probability descending (ties by id),
      log-softmax over the full vocabulary computed in float64.
      smollm2 runs over english.txt, stories260K over the first 400 tokens
      of story.txt; both tokenized with add_special=1, parse_special=0.
  ORACLE_VERSION          versions, build info, date and the command.

llama.cpp settings: CPU only, n_ctx 2048, F16 KV cache (the default), flash
attention disabled (plain softmax attention, the reference memwise compares
its own reference forward pass to), all logits in F32.
"""

import argparse
import ctypes
import datetime
import json
import os
import struct
import sys

import jinja2
import jinja2.sandbox
import numpy as np

import llama_cpp as L

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SMOLLM2 = os.path.expanduser(
    "~/.cache/memwise/models/SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_STORIES = "/work/shared/models/stories260K.gguf"

N_CTX = 2048
GREEDY_TOKENS = 32
TEACHER_K = 64
STORY_TEACHER_TOKENS = 400


# ---------------------------------------------------------------- llama.cpp

GGML_LOG_LEVEL_ERROR = 4  # enum ggml_log_level in ggml.h


@L.llama_log_callback
def _quiet_log(level, text, user_data):
    # Only errors reach stderr; llama.cpp's info chatter would bury the summary.
    if level == GGML_LOG_LEVEL_ERROR:
        sys.stderr.write(text.decode("utf-8", "replace"))


class Model:
    """A llama.cpp model (and, unless vocab_only, one context) via the C API."""

    def __init__(self, path, vocab_only=False, threads=2):
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        mp.vocab_only = vocab_only
        mp.use_extra_bufts = False
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise SystemExit(f"llama.cpp could not load {path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.ctx = None
        if not vocab_only:
            cp = L.llama_context_default_params()
            cp.n_ctx = N_CTX
            cp.n_batch = N_CTX
            cp.n_ubatch = 512
            cp.n_threads = threads
            cp.n_threads_batch = threads
            cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
            cp.type_k = L.GGML_TYPE_F16
            cp.type_v = L.GGML_TYPE_F16
            cp.offload_kqv = False
            self.ctx = L.llama_init_from_model(self.model, cp)
            if not self.ctx:
                raise SystemExit(f"llama.cpp could not create a context for {path}")

    def close(self):
        if self.ctx:
            L.llama_free(self.ctx)
        L.llama_model_free(self.model)

    def meta(self, key):
        buf = ctypes.create_string_buffer(1 << 16)
        n = L.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return None if n < 0 else buf.value.decode("utf-8")

    def tokenize(self, text, add_special, parse_special):
        data = text.encode("utf-8")
        cap = len(data) + 16
        while True:
            out = (L.llama_token * cap)()
            n = L.llama_tokenize(self.vocab, data, len(data), out, cap,
                                 bool(add_special), bool(parse_special))
            if n >= 0:
                return list(out[:n])
            cap = -n

    def piece(self, token):
        buf = ctypes.create_string_buffer(256)
        n = L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        if n < 0:
            raise RuntimeError(f"piece of token {token} longer than 256 bytes")
        return buf.raw[:n]

    def is_eog(self, token):
        return bool(L.llama_vocab_is_eog(self.vocab, token))

    def reset(self):
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)

    def decode(self, tokens, start_pos, all_logits):
        """Runs tokens at positions start_pos.. ; returns logits as a
        (rows, n_vocab) float32 array: every position, or only the last."""
        n = len(tokens)
        batch = L.llama_batch_init(n, 0, 1)
        try:
            batch.n_tokens = n
            for i, t in enumerate(tokens):
                batch.token[i] = t
                batch.pos[i] = start_pos + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1 if (all_logits or i == n - 1) else 0
            rc = L.llama_decode(self.ctx, batch)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc}")
            rows = range(n) if all_logits else [n - 1]
            out = np.empty((len(rows), self.n_vocab), dtype=np.float32)
            for r, i in enumerate(rows):
                ptr = L.llama_get_logits_ith(self.ctx, i)
                out[r] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
            return out
        finally:
            L.llama_batch_free(batch)


# ---------------------------------------------------------------- helpers

def ids_field(ids):
    return ",".join(str(i) for i in ids) if ids else "-"


def hex_field(text):
    return text.encode("utf-8").hex() if text else "-"


def write_text(path, header, lines):
    with open(path, "w", encoding="ascii", newline="\n") as f:
        for h in header:
            f.write("# " + h + "\n")
        for line in lines:
            f.write(line + "\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def read_text(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------- a. tokenizer

def tokenizer_texts(long_text):
    """(text, add_special, parse_special) cases shared by both models."""
    mixed = ("The quick brown fox jumps over the lazy dog. Numbers: 1234567, "
             "3.14159 and 1,000. Café naïve Ångström 日本語 👋🏽 done.")
    python_code = ("def add(a, b):\n    \"\"\"Return the sum.\"\"\"\n"
                   "    if a is None:\n        return b\n    return a + b\n")
    c_code = ("int main(void) {\n\tint x = 42;\n\tfor (int i = 0; i < 10; ++i)"
              " {\n\t\tx += i;\n\t}\n\treturn x; // done\n}\n")
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466"
    chat = "<|im_start|>user\nhi<|im_end|>"
    sp_special = "<s>Hello</s> world"
    cases = []

    def add(text, specials=((0, 0),)):
        for a, p in specials:
            cases.append((text, a, p))

    both = ((0, 0), (1, 0))
    add("Hello world", both)
    add(mixed, both)
    add(python_code)
    add(c_code)
    add("1234567")
    add("3.14159")
    add("1,000 and 12,345,678.90")
    add("Numbers 0 00 007 2024 99999999999")
    add("café naïve Ångström façade", both)
    add("日本語のテキスト")
    add("中文")
    add("한국어 Русский العربية हिन्दी")
    add("👋🏽 🚀")
    add(family)
    add("a   b")
    add("\n\n\n")
    add("\t\t")
    add("trailing spaces   ")
    add("line one\r\nline two\n")
    add("don't I'LL we're they've she'd it's")
    add("HELLO World hELLo")
    add(chat, ((0, 0), (0, 1), (1, 1)))
    add(sp_special, ((0, 0), (0, 1), (1, 1)))
    add("", both)
    add(" ", both)
    add(" leading space")
    add("  two leading spaces")
    add("!!! ??? ... --- ***")
    add("https://example.com/path?q=1&r=2#frag")
    add(long_text, both)
    return cases


def make_tokenizer(model_path, tag, long_text, out_dir):
    m = Model(model_path, vocab_only=True)
    try:
        lines = []
        for text, a, p in tokenizer_texts(long_text):
            ids = m.tokenize(text, a, p)
            lines.append(f"{a} {p} {hex_field(text)} {ids_field(ids)}")
    finally:
        m.close()
    header = [f"llama.cpp tokenizer oracle for {os.path.basename(model_path)}",
              "<add_special> <parse_special> <hex UTF-8 text or - if empty> "
              "<comma-separated ids or - if none>"]
    write_text(os.path.join(out_dir, f"tokenizer_{tag}.txt"), header, lines)


# ---------------------------------------------------------------- c. chat

def chat_template_env():
    # The settings transformers uses for chat templates.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True,
        extensions=["jinja2.ext.loopcontrols"])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    return env


def render_chat(m, messages):
    source = m.meta("tokenizer.chat_template")
    if not source:
        raise SystemExit("model has no tokenizer.chat_template")
    bos = m.piece(L.llama_vocab_bos(m.vocab)).decode("utf-8")
    eos = m.piece(L.llama_vocab_eos(m.vocab)).decode("utf-8")
    tmpl = chat_template_env().from_string(source)
    return tmpl.render(messages=messages, add_generation_prompt=True,
                       bos_token=bos, eos_token=eos)


CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a concise assistant. Answer in one sentence."},
     {"role": "user", "content": "Why is the sky blue?"}],
    [{"role": "user", "content": "Name a fruit that is yellow."},
     {"role": "assistant", "content": "A banana is yellow."},
     {"role": "user", "content": "And one that is red?"}],
]


def messages_json(messages):
    return json.dumps(messages, ensure_ascii=False, separators=(",", ":"))


def make_chat(model_path, out_dir):
    m = Model(model_path, vocab_only=True)
    try:
        lines = []
        for conv in CONVERSATIONS:
            rendered = render_chat(m, conv)
            lines.append(f"{hex_field(messages_json(conv))} {hex_field(rendered)}")
    finally:
        m.close()
    header = [f"chat template oracle for {os.path.basename(model_path)}: "
              "tokenizer.chat_template rendered by jinja2 (trim_blocks, "
              "lstrip_blocks), add_generation_prompt=True",
              "<hex of JSON messages> <hex of rendered text>"]
    write_text(os.path.join(out_dir, "chat_smollm2.txt"), header, lines)


# ---------------------------------------------------------------- b. greedy

def greedy(m, prompt_ids):
    m.reset()
    logits = m.decode(prompt_ids, 0, all_logits=False)[-1]
    out = []
    pos = len(prompt_ids)
    while len(out) < GREEDY_TOKENS:
        tok = int(np.argmax(logits))  # first maximum on ties
        out.append(tok)
        if m.is_eog(tok):
            break
        logits = m.decode([tok], pos, all_logits=False)[-1]
        pos += 1
    return out


def make_greedy(model_path, tag, prompts, out_dir, threads):
    """prompts: list of (text, add_special, parse_special)."""
    m = Model(model_path, threads=threads)
    try:
        lines = []
        print(f"--- greedy continuations, {tag}")
        for text, a, p in prompts:
            ids = m.tokenize(text, a, p)
            gen = greedy(m, ids)
            lines.append(f"{a} {p} {hex_field(text)} {ids_field(ids)} {ids_field(gen)}")
            shown = b"".join(m.piece(t) for t in gen).decode("utf-8", "replace")
            print(f"[{text[-40:]!r}] -> {shown!r}")
    finally:
        m.close()
    header = [f"llama.cpp greedy oracle for {os.path.basename(model_path)}: "
              f"argmax decoding, n_ctx {N_CTX}, F16 KV cache, flash attention off, "
              "no penalties",
              f"{GREEDY_TOKENS} tokens, or fewer: generation stops after the "
              "first end-of-generation token, which is included",
              "<add_special> <parse_special> <hex prompt text> <prompt ids> "
              "<generated ids>"]
    write_text(os.path.join(out_dir, f"greedy_{tag}.txt"), header, lines)


# ---------------------------------------------------------------- d. teacher

def top_k_logprobs(logits, k):
    x = logits.astype(np.float64)
    mx = x.max()
    lp = x - (mx + np.log(np.exp(x - mx).sum()))
    ids = np.arange(lp.size)
    order = np.lexsort((ids, -lp))[:k]  # by log-prob descending, then id
    return order.astype("<i4"), lp[order].astype("<f4")


def make_teacher(model_path, tag, text, max_tokens, out_dir, threads):
    m = Model(model_path, threads=threads)
    try:
        tokens = m.tokenize(text, 1, 0)
        if max_tokens:
            tokens = tokens[:max_tokens]
        m.reset()
        logits = m.decode(tokens, 0, all_logits=True)
        n_vocab = m.n_vocab
    finally:
        m.close()
    path = os.path.join(out_dir, f"teacher_{tag}.bin")
    with open(path, "wb") as f:
        f.write(b"MWTF")
        f.write(struct.pack("<IIII", 1, len(tokens), TEACHER_K, n_vocab))
        f.write(np.asarray(tokens, dtype="<i4").tobytes())
        for row in logits:
            ids, lps = top_k_logprobs(row, TEACHER_K)
            f.write(ids.tobytes())
            f.write(lps.tobytes())
    # Mean negative log-likelihood of the actual next tokens, as a sanity figure.
    nll = []
    for p in range(len(tokens) - 1):
        x = logits[p].astype(np.float64)
        mx = x.max()
        nll.append(mx + np.log(np.exp(x - mx).sum()) - x[tokens[p + 1]])
    print(f"wrote {path} ({os.path.getsize(path)} bytes): {len(tokens)} tokens, "
          f"perplexity {float(np.exp(np.mean(nll))):.3f}")


# ---------------------------------------------------------------- e. version

def library_versions():
    lib = L.llama_cpp._lib
    info = {"llama-cpp-python": L.__version__}
    try:
        base = ctypes.CDLL(os.path.join(os.path.dirname(lib._name), "libggml-base.so"))
        base.ggml_version.restype = ctypes.c_char_p
        base.ggml_commit.restype = ctypes.c_char_p
        info["ggml version"] = base.ggml_version().decode()
        info["llama.cpp commit (ggml_commit)"] = base.ggml_commit().decode()
    except (OSError, AttributeError):
        pass
    try:
        lib.llama_version.restype = ctypes.c_char_p
        info["llama.cpp library version"] = lib.llama_version().decode()
    except AttributeError:
        pass
    info["system info"] = L.llama_print_system_info().decode().strip()
    return info


def make_version(out_dir, argv):
    lines = [f"{k}: {v}" for k, v in library_versions().items()]
    lines.append(f"llama.cpp settings: CPU only, use_extra_bufts=false (no AMX/repack "
                 f"buffers), n_ctx {N_CTX}, n_ubatch 512, F16 KV, flash attention off")
    lines.append("numpy: " + np.__version__)
    lines.append("jinja2: " + jinja2.__version__)
    lines.append("date: " + datetime.date.today().isoformat())
    lines.append("command: python " + " ".join(argv))
    path = os.path.join(out_dir, "ORACLE_VERSION")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smollm2", default=DEFAULT_SMOLLM2)
    ap.add_argument("--stories", default=DEFAULT_STORIES)
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    L.llama_log_set(_quiet_log, ctypes.c_void_p(0))
    L.llama_backend_init()

    english = read_text("english.txt")
    story = read_text("story.txt")
    long_text = (english + "\n" + story)[:3000]

    make_tokenizer(args.smollm2, "smollm2", long_text, args.out)
    make_tokenizer(args.stories, "stories260K", long_text, args.out)
    make_chat(args.smollm2, args.out)

    vocab_model = Model(args.smollm2, vocab_only=True)
    chat_prompts = [render_chat(vocab_model, c) for c in CONVERSATIONS]
    vocab_model.close()
    smol_prompts = [
        ("The capital of France is", 1, 0),
        ("Here is a short poem about the sea:\n", 1, 0),
        ("def fibonacci(n):\n", 1, 0),
    ] + [(text, 1, 1) for text in chat_prompts]
    make_greedy(args.smollm2, "smollm2", smol_prompts, args.out, args.threads)

    story_prompts = [
        ("Once upon a time", 1, 0),
        ("One day, a little boy named Tom", 1, 0),
        ("The cat sat on the mat. It was", 1, 0),
        ("Lily and her mom went to the park", 1, 0),
    ]
    make_greedy(args.stories, "stories260K", story_prompts, args.out, args.threads)

    make_teacher(args.smollm2, "smollm2", english, 0, args.out, args.threads)
    make_teacher(args.stories, "stories260K", story, STORY_TEACHER_TOKENS,
                 args.out, args.threads)

    make_version(args.out, [os.path.relpath(sys.argv[0])] + sys.argv[1:])


if __name__ == "__main__":
    main()
