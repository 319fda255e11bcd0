package dev.memwise;

/** The C API's {@code mw_status} codes, with their stable numeric values. */
public enum Status {
    OK(0),
    /** {@code mw_request_next}: no event within the timeout (not an error). */
    TIMEOUT(1),
    INVALID_ARGUMENT(-1),
    /** Malformed model file; the message names the field and byte offset. */
    FORMAT(-2),
    UNSUPPORTED(-3),
    IO(-4),
    OUT_OF_MEMORY(-5),
    /** Does not fit the memory budget; the message says what would fit. */
    BUDGET(-6),
    CONTEXT_OVERFLOW(-7),
    BUFFER_TOO_SMALL(-8),
    CANCELLED(-9),
    /** The call is not valid in the object's current state (for example, it is closed). */
    STATE(-10),
    INTERNAL(-11),
    /** A code this version of the binding does not know (a newer library). */
    UNKNOWN(Integer.MIN_VALUE);

    private final int code;

    Status(int code) {
        this.code = code;
    }

    /** The C value ({@code MW_ERR_FORMAT} is -2). */
    public int code() {
        return code;
    }

    /** The status with this C value, or {@link #UNKNOWN}. */
    public static Status fromCode(int code) {
        for (Status s : values()) {
            if (s.code == code && s != UNKNOWN) {
                return s;
            }
        }
        return UNKNOWN;
    }
}
