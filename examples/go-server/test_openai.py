"""Tests the Go server with the official `openai` Python client.

Usage: test_openai.py completions|chat BASE_URL [EXPECTED_TEXT_FILE]

BASE_URL is the server's http://127.0.0.1:PORT. EXPECTED_TEXT_FILE, when
given, holds the greedy text the C library's own program (memwise run) prints
for the same prompt and token count: the server must return exactly it.
Exits non-zero on the first failed check.
"""

import re
import sys
import threading
import time
import urllib.request

import openai

COMPLETION_PROMPT = "Once upon a time"
COMPLETION_TOKENS = 16
CHAT_QUESTION = "What is the capital of France?"
CHAT_TOKENS = 24


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def client(base):
    return openai.OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0, timeout=120)


def complete(c, stream, **kw):
    """Returns (text, finish_reason, usage) of a completion, streamed or not."""
    args = dict(model="memwise", prompt=COMPLETION_PROMPT, max_tokens=COMPLETION_TOKENS, temperature=0)
    args.update(kw)
    if not stream:
        r = c.completions.create(**args)
        return r.choices[0].text, r.choices[0].finish_reason, r.usage
    text, finish, usage = "", None, None
    for chunk in c.completions.create(stream=True, stream_options={"include_usage": True}, **args):
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            text += ch.text
            finish = ch.finish_reason or finish
    return text, finish, usage


def chat(c, stream, **kw):
    """Returns (text, finish_reason, usage) of a chat completion."""
    args = dict(model="memwise", messages=[{"role": "user", "content": CHAT_QUESTION}],
                max_tokens=CHAT_TOKENS, temperature=0)
    args.update(kw)
    if not stream:
        r = c.chat.completions.create(**args)
        check(r.choices[0].message.role == "assistant", "chat reply has the assistant role")
        return r.choices[0].message.content, r.choices[0].finish_reason, r.usage
    text, finish, usage, roles = "", None, None, []
    for chunk in c.chat.completions.create(stream=True, stream_options={"include_usage": True}, **args):
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.role:
                roles.append(ch.delta.role)
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    check(roles[:1] == ["assistant"], "first streamed chat chunk carries the assistant role")
    return text, finish, usage


def metrics(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        return r.read().decode()


def concurrently(n, fn):
    """Runs fn(i) in n threads, each with its own client; returns the results in order."""
    results, errors = [None] * n, []

    def run(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # reported below, in the main thread
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    check(not errors, f"{n} concurrent clients without errors {errors}")
    return results


def test_completions(base, expected):
    c = client(base)
    text, finish, usage = complete(c, stream=False)
    if expected is not None:
        check(text == expected, f"greedy completion equals memwise run's output: {text!r} vs {expected!r}")
    check(len(text) > 0, f"non-streamed completion: {text!r}")
    check(finish == "length", f"finish_reason length (got {finish})")
    check(usage.completion_tokens == COMPLETION_TOKENS, f"usage: {usage.completion_tokens} completion tokens")
    check(usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens,
          f"usage totals {usage}")

    s_text, s_finish, s_usage = complete(c, stream=True)
    check(s_text == text, f"streamed text equals the non-streamed one: {s_text!r}")
    check(s_finish == "length", "streamed finish_reason length")
    check(s_usage is not None and s_usage.completion_tokens == COMPLETION_TOKENS, "streamed usage chunk")

    stop_at = text.find("little")
    if stop_at > 0:
        st_text, st_finish, _ = complete(c, stream=True, stop=["little"])
        check(st_text == text[:stop_at] and st_finish == "stop", f"stop string ends the text: {st_text!r}")

    a = complete(c, stream=False, temperature=0.9, seed=42)[0]
    b = complete(c, stream=True, temperature=0.9, seed=42)[0]
    check(a == b, "sampling with a fixed seed repeats")

    results = concurrently(8, lambda i: complete(client(base), stream=i % 2 == 0)[0])
    check(all(r == text for r in results), "8 concurrent clients (streaming and not) get the greedy text"
          + ("" if all(r == text for r in results) else f": {results}"))

    for name, kw in [("negative temperature", dict(temperature=-1)), ("prompt beyond the context", dict(max_tokens=1000000))]:
        try:
            complete(c, stream=False, **kw)
            check(False, f"{name} is refused")
        except openai.BadRequestError as e:
            check("MW_ERR" in str(e), f"{name} is refused with 400: {e.message[:80]}")

    # A client that leaves mid-stream cancels its request (through the HTTP
    # request's context): the server counts it as cancelled long before the
    # 1000 tokens (over a second of decoding) could be done.
    long = c.completions.create(model="memwise", prompt=COMPLETION_PROMPT, max_tokens=1000, temperature=0, stream=True)
    for i, _ in enumerate(long):
        if i == 2:
            break
    long.close()
    deadline, cancelled = time.monotonic() + 10, 0
    while time.monotonic() < deadline and not cancelled:
        m = re.search(r'memwise_requests_total\{endpoint="completions",outcome="cancelled"\} (\d+)', metrics(base))
        cancelled = int(m.group(1)) if m else 0
        time.sleep(0.05)
    check(cancelled == 1, "a client that disconnects mid-stream cancels its request")

    models = [m.id for m in c.models.list()]
    check(len(models) == 1, f"models list {models}")
    with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
        check(r.status == 200, "healthz 200")
    body = metrics(base)
    generated = [line for line in body.splitlines() if line.startswith("memwise_generated_tokens_total ")]
    check(generated and int(generated[0].split()[1]) >= 10 * COMPLETION_TOKENS, f"metrics count tokens: {generated}")
    check('outcome="ok"' in body and "memwise_model_info{" in body, "metrics list requests and the model")
    engine = [line for line in body.splitlines() if line.startswith("memwise_memory_engine_bytes ")]
    kv = [line for line in body.splitlines() if line.startswith("memwise_memory_kv_resident_bytes ")]
    check(engine and int(engine[0].split()[1]) > 0 and kv and int(kv[0].split()[1]) > 0,
          f"metrics carry the memory report: {engine} {kv}")


def test_chat(base, expected):
    c = client(base)
    text, finish, usage = chat(c, stream=False)
    if expected is not None:
        check(text == expected, f"greedy chat reply equals memwise run --chat: {text!r} vs {expected!r}")
    check(len(text) > 0, f"chat reply: {text!r}")
    check(finish in ("stop", "length"), f"chat finish_reason {finish}")
    check(usage.completion_tokens > 0 and usage.prompt_tokens > 10, f"chat usage {usage}")

    s_text, s_finish, s_usage = chat(c, stream=True)
    check(s_text == text and s_finish == finish, f"streamed chat equals the non-streamed one: {s_text!r}")
    check(s_usage is not None and s_usage.completion_tokens == usage.completion_tokens, "streamed chat usage chunk")

    # Only non-empty: with Q4_1 weights a batch of several sequences may round
    # differently from a batch of one, so greedy replies can diverge after a
    # few tokens (the F32 completions above are compared exactly).
    results = concurrently(4, lambda i: chat(client(base), stream=i % 2 == 1))
    check(all(r[0] and r[1] in ("stop", "length") for r in results), f"4 concurrent chat clients get replies ({len(set(r[0] for r in results))} distinct)")

    r = c.chat.completions.create(model="memwise", max_tokens=8, temperature=0, messages=[
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Say hi."}]}])
    check(len(r.choices[0].message.content) > 0, "system message and content parts")


def main():
    mode, base = sys.argv[1], sys.argv[2]
    expected = None
    if len(sys.argv) > 3:
        with open(sys.argv[3], encoding="utf-8") as f:
            expected = f.read()
    print(f"openai {openai.__version__} against {base} ({mode})", flush=True)
    {"completions": test_completions, "chat": test_chat}[mode](base, expected)
    print(f"PASS: {mode}", flush=True)


if __name__ == "__main__":
    main()
