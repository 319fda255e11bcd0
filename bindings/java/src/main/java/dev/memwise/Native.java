package dev.memwise;

/**
 * The native methods, registered by libmemwise_jni's JNI_OnLoad. Handles are
 * the C pointers as longs; the callers (Model, Engine, Stream) guarantee a
 * handle is live for the duration of each call. Failures throw
 * {@link MemwiseException}.
 */
final class Native {
    static {
        NativeLoader.load();
    }

    private Native() {}

    static native int version();

    static native String versionString();

    static native String statusString(int status);

    static native long modelOpen(byte[] path, boolean prefault);

    static native void modelClose(long model);

    static native ModelInfo modelInfo(long model);

    static native int[] tokenize(long model, byte[] text, boolean addSpecial, boolean parseSpecial);

    static native byte[] detokenize(long model, int[] tokens, boolean renderSpecial);

    static native byte[] chatFormat(long model, byte[][] roles, byte[][] contents, boolean addGenerationPrompt);

    /** Fills the options' fields with mw_engine_options_init's defaults. */
    static native void engineDefaults(Engine.Options options);

    static native long engineCreate(long model, Engine.Options options);

    static native void engineDestroy(long engine);

    /** The mw_memory_report fields in MemoryReport's order. */
    static native long[] engineMemory(long engine);

    /** Fills the request's fields with mw_request_options_init's defaults. */
    static native void requestDefaults(Request request);

    static native long submit(long engine, Request request);

    /** The next event, or null when none arrived within timeoutMs (negative: wait forever). */
    static native Event requestNext(long request, int timeoutMs);

    static native void requestCancel(long request);

    static native void requestRelease(long request);
}
