package dev.memwise;

/** Library-wide information. */
public final class Memwise {
    private Memwise() {}

    /** The loaded libmemwise's version number (MAJOR*10000 + MINOR*100 + PATCH). */
    public static int version() {
        return Native.version();
    }

    /** The loaded libmemwise's version, e.g. "0.1.0". */
    public static String versionString() {
        return Native.versionString();
    }

    /** The C name of a status, e.g. "MW_ERR_FORMAT". */
    public static String statusName(Status status) {
        return Native.statusString(status.code());
    }

    /** Where the JNI library was loaded from (a path, "java.library.path" or "resource:..."). */
    public static String nativeLibrary() {
        Native.version(); // makes sure it is loaded
        return NativeLoader.loadedFrom();
    }
}
