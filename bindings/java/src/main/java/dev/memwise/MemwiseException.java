package dev.memwise;

import java.nio.charset.StandardCharsets;

/**
 * A failed memwise call: the C status and the library's detail message
 * ({@code mw_last_error()}), for example
 * {@code MW_ERR_FORMAT: tensor blk.3.attn_q.weight: data offset 812 beyond end of file}.
 */
public class MemwiseException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final Status status;
    private final int code;
    private final String detail;

    public MemwiseException(Status status, String detail) {
        this(status, status.code(), detail);
    }

    private MemwiseException(Status status, int code, String detail) {
        super(statusName(status, code) + (detail.isEmpty() ? "" : ": " + detail));
        this.status = status;
        this.code = code;
        this.detail = detail;
    }

    /** Called by the JNI glue; the detail arrives as UTF-8 bytes. */
    static MemwiseException fromNative(int code, byte[] detail) {
        return new MemwiseException(Status.fromCode(code), code, new String(detail, StandardCharsets.UTF_8));
    }

    /** The status, {@link Status#UNKNOWN} for a code this binding does not know. */
    public Status status() {
        return status;
    }

    /** The raw C status code. */
    public int code() {
        return code;
    }

    /** The library's detail message, without the status name ("" when none). */
    public String detail() {
        return detail;
    }

    private static String statusName(Status status, int code) {
        if (status == Status.UNKNOWN) {
            return "MW_ERR_UNKNOWN(" + code + ")";
        }
        return status == Status.OK || status == Status.TIMEOUT ? "MW_" + status.name() : "MW_ERR_" + status.name();
    }
}
