package dev.memwise;

import java.lang.ref.Reference;
import java.util.Objects;

/**
 * Runs requests on one model: KV cache, compute threads and a scheduler that
 * batches every running request. Safe to use from any number of threads.
 *
 * <p>{@link #close()} cancels the requests still running (their streams end
 * with {@link FinishReason#CANCELLED}), waits for calls in flight, joins the
 * engine's threads and frees it. It is idempotent, and open streams stay
 * usable. An engine that is never closed is freed by a
 * {@link java.lang.ref.Cleaner} once neither it nor any of its streams is
 * reachable.
 */
public final class Engine implements AutoCloseable {
    /** Element type of the KV cache. */
    public enum KvType {
        F16(0),
        F32(1);

        final int code;

        KvType(int code) {
            this.code = code;
        }
    }

    /**
     * Options for {@link Model#newEngine}; a new instance holds the C library's
     * defaults ({@code mw_engine_options_init}). Values are checked by the library.
     */
    public static final class Options {
        // Read and written by the JNI glue by name.
        int nThreads;
        int nCtx;
        int maxSequences;
        int kvBlockTokens;
        int kvType;
        int maxBatchTokens;
        long memoryBudgetBytes;

        public Options() {
            Native.engineDefaults(this);
        }

        /** Compute threads; 0 = the number of physical cores. */
        public Options nThreads(int n) { nThreads = n; return this; }
        /** Longest sequence (prompt + generated); 0 = min(training context, 4096). */
        public Options nCtx(int n) { nCtx = n; return this; }
        /** Requests that run at once; more wait in the queue. */
        public Options maxSequences(int n) { maxSequences = n; return this; }
        /** Tokens per KV block. */
        public Options kvBlockTokens(int n) { kvBlockTokens = n; return this; }
        public Options kvType(KvType type) { kvType = Objects.requireNonNull(type).code; return this; }
        /** Tokens one forward step processes (the prefill chunk). */
        public Options maxBatchTokens(int n) { maxBatchTokens = n; return this; }
        /** Memory for KV blocks and activations; 0 = enough for maxSequences full-context sequences. */
        public Options memoryBudgetBytes(long bytes) { memoryBudgetBytes = bytes; return this; }

        public int nThreads() { return nThreads; }
        public int nCtx() { return nCtx; }
        public int maxSequences() { return maxSequences; }
        public int kvBlockTokens() { return kvBlockTokens; }
        public KvType kvType() { return kvType == KvType.F32.code ? KvType.F32 : KvType.F16; }
        public int maxBatchTokens() { return maxBatchTokens; }
        public long memoryBudgetBytes() { return memoryBudgetBytes; }
    }

    private final Resource res;

    Engine(long handle) {
        this.res = new Resource(this, handle, Native::engineDestroy, "engine");
    }

    /**
     * Submits a request and returns the stream of its events. Close the stream
     * (try-with-resources) or read it to the end.
     *
     * @throws MemwiseException INVALID_ARGUMENT (bad values, empty prompt, token
     *     id out of range), CONTEXT_OVERFLOW (prompt plus maxTokens longer than
     *     the context), BUDGET (can never fit), STATE (engine closed)
     */
    public Stream generate(Request request) {
        Objects.requireNonNull(request, "request");
        long h = res.acquire();
        try {
            long r = Native.submit(h, request);
            try {
                return new Stream(this, r);
            } catch (RuntimeException | Error e) {
                Native.requestRelease(r);
                throw e;
            }
        } finally {
            res.release();
            Reference.reachabilityFence(this);
        }
    }

    /** Where the engine's memory goes right now (weights, KV cache, activations, heap, process). */
    public MemoryReport memory() {
        long h = res.acquire();
        try {
            return new MemoryReport(Native.engineMemory(h));
        } finally {
            res.release();
            Reference.reachabilityFence(this);
        }
    }

    public boolean isClosed() {
        return res.isClosed();
    }

    /** Cancels running requests, joins the engine's threads and frees it. Idempotent. */
    @Override
    public void close() {
        res.close();
    }
}
