package dev.memwise;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Loads the JNI library, libmemwise_jni.so, trying in order:
 * <ol>
 *   <li>the system property {@code memwise.library.path}: the library file, or
 *       a directory that holds it (when set, nothing else is tried);</li>
 *   <li>{@code System.loadLibrary("memwise_jni")} (java.library.path);</li>
 *   <li>the copy inside the jar, {@code /native/<os>-<arch>/libmemwise_jni.so},
 *       extracted to a uniquely named temporary file (so any number of JVMs can
 *       do it at once) that is deleted once loaded, or at exit.</li>
 * </ol>
 * The JNI library itself needs libmemwise.so.0, found through its RUNPATH,
 * LD_LIBRARY_PATH or the system library paths.
 */
final class NativeLoader {
    static final String LIBRARY = "memwise_jni";
    static final String PATH_PROPERTY = "memwise.library.path";

    private static String loadedFrom;

    private NativeLoader() {}

    /** Loads the library once per class loader; later calls return at once. */
    static synchronized void load() {
        if (loadedFrom != null) {
            return;
        }
        String override = System.getProperty(PATH_PROPERTY);
        if (override != null && !override.isEmpty()) {
            Path file = libraryFile(Path.of(override));
            System.load(file.toAbsolutePath().toString());
            loadedFrom = file.toAbsolutePath().toString();
            return;
        }
        UnsatisfiedLinkError fromSystem;
        try {
            System.loadLibrary(LIBRARY);
            loadedFrom = "java.library.path";
            return;
        } catch (UnsatisfiedLinkError e) {
            fromSystem = e;
        }
        String resource = resourcePath();
        Path tmp;
        try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
            if (in == null) {
                UnsatisfiedLinkError e = new UnsatisfiedLinkError("memwise: JNI library not found: set -D"
                        + PATH_PROPERTY + "=DIR_OR_FILE, put " + System.mapLibraryName(LIBRARY)
                        + " on java.library.path, or use a jar that contains " + resource);
                e.addSuppressed(fromSystem);
                throw e;
            }
            tmp = extract(in);
        } catch (IOException e) {
            UnsatisfiedLinkError ule = new UnsatisfiedLinkError("memwise: cannot extract " + resource + ": " + e);
            ule.addSuppressed(fromSystem);
            throw ule;
        }
        try {
            System.load(tmp.toString());
        } catch (UnsatisfiedLinkError e) {
            e.addSuppressed(fromSystem);
            throw e;
        } finally {
            // Once loaded, the mapping outlives the file; deleteOnExit covers a failed delete.
            tmp.toFile().delete();
        }
        loadedFrom = "resource:" + resource;
    }

    /** Where the library came from: a path, "java.library.path" or "resource:...". Null before load(). */
    static synchronized String loadedFrom() {
        return loadedFrom;
    }

    /** The library file for a memwise.library.path value (a file, or a directory holding it). */
    static Path libraryFile(Path override) {
        return Files.isDirectory(override) ? override.resolve(System.mapLibraryName(LIBRARY)) : override;
    }

    /** Copies the library to a new, uniquely named temporary file marked deleteOnExit. */
    static Path extract(InputStream in) throws IOException {
        String name = System.mapLibraryName(LIBRARY);
        int dot = name.lastIndexOf('.');
        Path tmp = Files.createTempFile(name.substring(0, dot) + "-", name.substring(dot));
        tmp.toFile().deleteOnExit();
        try {
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        return tmp;
    }

    /** The library's path inside the jar, e.g. /native/linux-x86_64/libmemwise_jni.so. */
    static String resourcePath() {
        return "/native/" + platform() + "/" + System.mapLibraryName(LIBRARY);
    }

    /** "linux-x86_64", "linux-aarch64", ... (the names `uname -s`/`uname -m` use). */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (os.startsWith("linux")) {
            os = "linux";
        } else if (os.startsWith("mac") || os.startsWith("darwin")) {
            os = "macos";
        } else if (os.startsWith("windows")) {
            os = "windows";
        }
        switch (arch) {
            case "amd64":
            case "x86_64":
                arch = "x86_64";
                break;
            case "arm64":
            case "aarch64":
                arch = "aarch64";
                break;
            default:
                break;
        }
        return os + "-" + arch;
    }
}
