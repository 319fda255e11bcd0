package dev.memwise;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;

/**
 * What to generate: a prompt (text bytes or token ids) and sampling settings.
 * A new request holds the C library's defaults ({@code mw_request_options_init}:
 * 256 tokens, temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, random seed).
 * Everything is copied at {@link Engine#generate}, so a request may be reused
 * and changed afterwards. Values are checked by the library at submit.
 */
public final class Request {
    /** The seed value that asks for a random seed at submit. */
    public static final long SEED_RANDOM = -1L; // UINT64_MAX in C

    // Read and written by the JNI glue by name.
    byte[] prompt;
    int[] promptTokens;
    boolean addSpecial;
    boolean parseSpecial;
    int maxTokens;
    float temperature;
    int topK;
    float topP;
    float minP;
    float repeatPenalty;
    int repeatLastN;
    long seed;
    byte[][] stop;
    boolean ignoreEos;
    int priority;

    private Request() {
        Native.requestDefaults(this);
    }

    /** A text prompt, encoded as UTF-8. */
    public static Request ofText(String prompt) {
        return ofBytes(prompt.getBytes(StandardCharsets.UTF_8));
    }

    /** A text prompt given as bytes (copied). */
    public static Request ofBytes(byte[] prompt) {
        Request r = new Request();
        r.prompt = prompt.clone();
        return r;
    }

    /** A prompt of token ids, used as they are (no BOS added). */
    public static Request ofTokens(int... tokens) {
        Request r = new Request();
        r.promptTokens = tokens.clone();
        return r;
    }

    /** Text prompts: add BOS etc. as the model's metadata says. Default true. */
    public Request addSpecial(boolean v) { addSpecial = v; return this; }
    /** Text prompts: parse special tokens written as text ("&lt;|im_start|&gt;"). Default true. */
    public Request parseSpecial(boolean v) { parseSpecial = v; return this; }
    /** Tokens to generate; 0 = until the context is full. */
    public Request maxTokens(int n) { maxTokens = n; return this; }
    /** 0 = greedy; must be &gt;= 0. */
    public Request temperature(float t) { temperature = t; return this; }
    /** 0 = off. */
    public Request topK(int k) { topK = k; return this; }
    /** In (0, 1]; 1 = off. */
    public Request topP(float p) { topP = p; return this; }
    /** In [0, 1]; 0 = off. */
    public Request minP(float p) { minP = p; return this; }
    /** &gt; 0; 1 = off. */
    public Request repeatPenalty(float p) { repeatPenalty = p; return this; }
    public Request repeatLastN(int n) { repeatLastN = n; return this; }
    /** A fixed seed (any 64-bit value but {@link #SEED_RANDOM}) makes sampling repeatable. */
    public Request seed(long s) { seed = s; return this; }
    /** Do not stop at EOS/EOT. */
    public Request ignoreEos(boolean v) { ignoreEos = v; return this; }
    /** Higher is served first. */
    public Request priority(int p) { priority = p; return this; }

    /** Stop strings (UTF-8); generation ends before one would be emitted. Replaces earlier ones. */
    public Request stop(String... strings) {
        byte[][] s = new byte[strings.length][];
        for (int i = 0; i < s.length; i++) {
            s[i] = Objects.requireNonNull(strings[i], "stop string").getBytes(StandardCharsets.UTF_8);
        }
        stop = s;
        return this;
    }

    /** Stop strings as bytes (copied). Replaces earlier ones. */
    public Request stopBytes(byte[]... strings) {
        byte[][] s = new byte[strings.length][];
        for (int i = 0; i < s.length; i++) {
            s[i] = Objects.requireNonNull(strings[i], "stop string").clone();
        }
        stop = s;
        return this;
    }

    public boolean addSpecial() { return addSpecial; }
    public boolean parseSpecial() { return parseSpecial; }
    public int maxTokens() { return maxTokens; }
    public float temperature() { return temperature; }
    public int topK() { return topK; }
    public float topP() { return topP; }
    public float minP() { return minP; }
    public float repeatPenalty() { return repeatPenalty; }
    public int repeatLastN() { return repeatLastN; }
    public long seed() { return seed; }
    public boolean ignoreEos() { return ignoreEos; }
    public int priority() { return priority; }

    @Override
    public String toString() {
        String p = prompt != null ? prompt.length + " prompt bytes" : Arrays.toString(promptTokens);
        return "Request[" + p + ", maxTokens " + Integer.toUnsignedString(maxTokens) + ", temperature " + temperature
                + ", seed " + Long.toUnsignedString(seed) + "]";
    }
}
