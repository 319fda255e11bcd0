package dev.memwise;

import java.lang.ref.Reference;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * An open GGUF model: memory-mapped, immutable, usable from any number of
 * threads. Create engines on it with {@link #newEngine}.
 *
 * <p>{@link #close()} is idempotent and may be called at any time: it waits for
 * calls in flight on other threads, and engines created on the model keep the
 * native model alive until they are closed too. A model that is never closed
 * is released by a {@link java.lang.ref.Cleaner} once unreachable.
 */
public final class Model implements AutoCloseable {
    /** Options for {@link Model#open}. */
    public static final class Options {
        private boolean prefault;

        /** Touch every weight page at open (MAP_POPULATE). Default false. */
        public Options prefault(boolean prefault) {
            this.prefault = prefault;
            return this;
        }

        public boolean prefault() {
            return prefault;
        }
    }

    private final Resource res;

    private Model(long handle) {
        this.res = new Resource(this, handle, Native::modelClose, "model");
    }

    /** Opens a model with default options. */
    public static Model open(Path path) {
        return open(path, new Options());
    }

    /**
     * Opens the GGUF file at {@code path}.
     *
     * @throws MemwiseException IO (missing, unreadable, a directory), FORMAT
     *     (malformed; the message names the field and byte offset), UNSUPPORTED
     */
    public static Model open(Path path, Options options) {
        Objects.requireNonNull(path, "path");
        Options o = options != null ? options : new Options();
        byte[] bytes = pathBytes(path);
        return new Model(Native.modelOpen(bytes, o.prefault));
    }

    /** Creates an engine over this model with default options. */
    public Engine newEngine() {
        return newEngine(new Engine.Options());
    }

    /**
     * Creates an engine (its threads, KV cache and scheduler) over this model.
     *
     * @throws MemwiseException INVALID_ARGUMENT (bad option values), BUDGET
     *     (the budget cannot hold one full-length sequence), STATE (closed)
     */
    public Engine newEngine(Engine.Options options) {
        Engine.Options o = options != null ? options : new Engine.Options();
        long h = res.acquire();
        try {
            return new Engine(Native.engineCreate(h, o));
        } finally {
            res.release();
            Reference.reachabilityFence(this);
        }
    }

    /** Describes the model. */
    public ModelInfo info() {
        long h = res.acquire();
        try {
            return Native.modelInfo(h);
        } finally {
            res.release();
            Reference.reachabilityFence(this);
        }
    }

    /**
     * Tokenizes bytes. {@code addSpecial}: add BOS/EOS as the model's metadata
     * says; {@code parseSpecial}: recognise special tokens written as text (use
     * false for untrusted text).
     */
    public int[] tokenize(byte[] text, boolean addSpecial, boolean parseSpecial) {
        Objects.requireNonNull(text, "text");
        long h = res.acquire();
        try {
            return Native.tokenize(h, text, addSpecial, parseSpecial);
        } finally {
            res.release();
            Reference.reachabilityFence(this);
        }
    }

    /** Tokenizes a string (as UTF-8). */
    public int[] tokenize(String text, boolean addSpecial, boolean parseSpecial) {
        return tokenize(text.getBytes(StandardCharsets.UTF_8), addSpecial, parseSpecial);
    }

    /**
     * Token ids back to bytes (usually UTF-8; a partial sequence may end inside
     * a character). {@code renderSpecial}: write special tokens as their text.
     *
     * @throws MemwiseException INVALID_ARGUMENT for an id outside the vocabulary
     */
    public byte[] detokenize(int[] tokens, boolean renderSpecial) {
        Objects.requireNonNull(tokens, "tokens");
        long h = res.acquire();
        try {
            return Native.detokenize(h, tokens, renderSpecial);
        } finally {
            res.release();
            Reference.reachabilityFence(this);
        }
    }

    /**
     * Formats a conversation with the model's chat template. Submit the result
     * with {@code parseSpecial(true)}.
     *
     * @throws MemwiseException UNSUPPORTED when the model has no template memwise recognises
     */
    public byte[] chatFormat(List<ChatMessage> messages, boolean addGenerationPrompt) {
        Objects.requireNonNull(messages, "messages");
        byte[][] roles = new byte[messages.size()][];
        byte[][] contents = new byte[messages.size()][];
        for (int i = 0; i < roles.length; i++) {
            ChatMessage m = Objects.requireNonNull(messages.get(i), "message");
            roles[i] = m.role().getBytes(StandardCharsets.UTF_8);
            contents[i] = m.content().getBytes(StandardCharsets.UTF_8);
        }
        long h = res.acquire();
        try {
            return Native.chatFormat(h, roles, contents, addGenerationPrompt);
        } finally {
            res.release();
            Reference.reachabilityFence(this);
        }
    }

    public boolean isClosed() {
        return res.isClosed();
    }

    /** Releases this reference to the model (engines keep their own). Idempotent. */
    @Override
    public void close() {
        res.close();
    }

    /** The path as the bytes the OS sees (Java's file-name encoding). */
    private static byte[] pathBytes(Path path) {
        String s = path.toString();
        if (s.indexOf('\0') >= 0) {
            throw new MemwiseException(Status.INVALID_ARGUMENT, "path contains a NUL character");
        }
        Charset cs = StandardCharsets.UTF_8;
        String jnu = System.getProperty("sun.jnu.encoding");
        if (jnu != null && Charset.isSupported(jnu)) {
            cs = Charset.forName(jnu);
        }
        return s.getBytes(cs);
    }
}
