package dev.memwise;

/** Why a request ended ({@code mw_finish_reason}). */
public enum FinishReason {
    /** Not finished: token events carry this. */
    NONE(0),
    /** End-of-sequence or end-of-turn token. */
    EOS(1),
    /** {@code maxTokens} reached. */
    LENGTH(2),
    /** A stop string was generated (it is not emitted). */
    STOP_STRING(3),
    /** The sequence filled the engine's context. */
    CONTEXT(4),
    /** The request was cancelled, or its engine closed. */
    CANCELLED(5),
    /** The request failed; the event's status and text say why. */
    ERROR(6),
    /** A reason this version of the binding does not know. */
    UNKNOWN(-1);

    private final int code;

    FinishReason(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public static FinishReason fromCode(int code) {
        for (FinishReason r : values()) {
            if (r.code == code && r != UNKNOWN) {
                return r;
            }
        }
        return UNKNOWN;
    }
}
