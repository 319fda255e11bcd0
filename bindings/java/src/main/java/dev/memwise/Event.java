package dev.memwise;

import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One event of a {@link Stream}: a generated token, or the finish of the
 * request (always the last event).
 *
 * <p>Text is bytes. A token's piece may be empty (the engine holds bytes back
 * while they end inside a UTF-8 character or might begin a stop string) and
 * is released by a later event, the finish event included, so concatenating
 * every event's bytes gives the whole output. Decode with the charset of your
 * choice; UTF-8 pieces from memwise always end on a character boundary.
 */
public final class Event {
    /** What an event is. */
    public enum Kind {
        TOKEN,
        FINISHED
    }

    private static final int KIND_TOKEN = 1;

    private final Kind kind;
    private final int token;
    private final byte[] text;
    private final FinishReason finishReason;
    private final Status status;
    private final int promptTokens;
    private final int generatedTokens;

    /** Called by the JNI glue with the fields of {@code mw_event}. */
    Event(int kind, int token, byte[] text, int finishReason, int status, int promptTokens, int generatedTokens) {
        this.kind = kind == KIND_TOKEN ? Kind.TOKEN : Kind.FINISHED;
        this.token = token;
        this.text = text;
        this.finishReason = FinishReason.fromCode(finishReason);
        this.status = Status.fromCode(status);
        this.promptTokens = promptTokens;
        this.generatedTokens = generatedTokens;
    }

    public Kind kind() {
        return kind;
    }

    public boolean isToken() {
        return kind == Kind.TOKEN;
    }

    public boolean isFinished() {
        return kind == Kind.FINISHED;
    }

    /** The generated token id; -1 for the finish event. */
    public int token() {
        return token;
    }

    /**
     * The bytes this event makes final (a copy). For a finish event with
     * {@link FinishReason#ERROR}, the error message instead.
     */
    public byte[] text() {
        return text.clone();
    }

    /** {@link #text()} decoded with {@code charset}. */
    public String text(Charset charset) {
        return new String(text, charset);
    }

    /** Number of bytes in {@link #text()}. */
    public int textLength() {
        return text.length;
    }

    /** Why the request ended; {@link FinishReason#NONE} on token events. */
    public FinishReason finishReason() {
        return finishReason;
    }

    /** The request's status on the finish event: {@link Status#OK} unless it failed. */
    public Status status() {
        return status;
    }

    /** Tokens in the prompt. */
    public int promptTokens() {
        return promptTokens;
    }

    /** Tokens generated so far (final on the finish event). */
    public int generatedTokens() {
        return generatedTokens;
    }

    @Override
    public String toString() {
        String t = new String(text, StandardCharsets.UTF_8);
        if (kind == Kind.TOKEN) {
            return "Event[token " + token + ", " + text.length + " bytes \"" + t + "\"]";
        }
        return "Event[finished " + finishReason + ", status " + status + ", " + promptTokens + " prompt + "
                + generatedTokens + " generated tokens" + (text.length > 0 ? ", text \"" + t + "\"" : "") + "]";
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Event)) {
            return false;
        }
        Event e = (Event) o;
        return kind == e.kind && token == e.token && Arrays.equals(text, e.text) && finishReason == e.finishReason
                && status == e.status && promptTokens == e.promptTokens && generatedTokens == e.generatedTokens;
    }

    @Override
    public int hashCode() {
        return (kind.hashCode() * 31 + token) * 31 + Arrays.hashCode(text);
    }
}
