package dev.memwise;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The three ways to find libmemwise_jni, and extraction from resources with several JVMs at once. */
class NativeLoaderTest {
    @TempDir
    Path tmp;

    @Test
    void platformAndResourceNames() {
        String p = NativeLoader.platform();
        if (System.getProperty("os.name").toLowerCase().startsWith("linux")) {
            assertTrue(p.startsWith("linux-"), p);
        }
        String arch = System.getProperty("os.arch");
        if (arch.equals("amd64") || arch.equals("x86_64")) {
            assertTrue(p.endsWith("-x86_64"), p);
        }
        assertEquals("/native/" + p + "/" + System.mapLibraryName("memwise_jni"), NativeLoader.resourcePath());
        assertEquals(tmp.resolve(System.mapLibraryName("memwise_jni")), NativeLoader.libraryFile(tmp));
        Path file = tmp.resolve("custom.so");
        assertEquals(file, NativeLoader.libraryFile(file));
    }

    @Test
    void extractionMakesUniqueFiles() throws IOException {
        byte[] content = "not really a library".getBytes(StandardCharsets.US_ASCII);
        Path a = NativeLoader.extract(new ByteArrayInputStream(content));
        Path b = NativeLoader.extract(new ByteArrayInputStream(content));
        try {
            assertNotEquals(a, b);
            assertArrayEquals(content, Files.readAllBytes(a));
            assertArrayEquals(content, Files.readAllBytes(b));
            assertTrue(a.getFileName().toString().startsWith("libmemwise_jni-"), a.toString());
            assertTrue(a.getFileName().toString().endsWith(".so"), a.toString());
        } finally {
            Files.deleteIfExists(a);
            Files.deleteIfExists(b);
        }
    }

    /** The JNI library's bytes: from memwise.library.path, else from the resources. */
    private static byte[] libraryBytes() throws IOException {
        String prop = System.getProperty(NativeLoader.PATH_PROPERTY, "");
        if (!prop.isEmpty()) {
            return Files.readAllBytes(NativeLoader.libraryFile(Path.of(prop)));
        }
        try (InputStream in = NativeLoader.class.getResourceAsStream(NativeLoader.resourcePath())) {
            return in == null ? null : in.readAllBytes();
        }
    }

    private static String location(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    /**
     * Three JVMs at once load the library from a classpath resource (no
     * memwise.library.path, nothing on java.library.path): each extracts its
     * own temporary copy, generates, and leaves no file behind.
     */
    @Test
    void loadsFromResourcesInSeveralJvmsAtOnce() throws Exception {
        byte[] lib = libraryBytes();
        if (lib == null) {
            System.out.println("SKIP: no JNI library to put in a resource (set -Dmemwise.library.path)");
        }
        assumeTrue(lib != null, "no JNI library");
        Path resources = Files.createDirectories(tmp.resolve("resources"));
        Path inJar = resources.resolve(NativeLoader.resourcePath().substring(1));
        Files.createDirectories(inJar.getParent());
        Files.write(inJar, lib);
        Path emptyLibPath = Files.createDirectories(tmp.resolve("empty"));
        Path childTmp = Files.createDirectories(tmp.resolve("childtmp"));
        Path model = TestSupport.findModel(TestSupport.STORIES);

        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = String.join(File.pathSeparator, location(Model.class), location(ExtractionMain.class),
                resources.toString());
        List<Process> children = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            List<String> cmd = new ArrayList<>(List.of(java, "-Xcheck:jni", "-Djava.library.path=" + emptyLibPath,
                    "-Djava.io.tmpdir=" + childTmp, "-cp", cp, ExtractionMain.class.getName()));
            if (model != null) {
                cmd.add(model.toString());
            }
            children.add(new ProcessBuilder(cmd).redirectErrorStream(true).start());
        }
        List<String> outputs = new ArrayList<>();
        for (Process p : children) {
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), out);
            assertTrue(out.contains("loaded resource:" + NativeLoader.resourcePath()), out);
            assertFalse(out.contains("WARNING"), "-Xcheck:jni: " + out);
            outputs.add(out);
        }
        if (model != null) {
            String expect;
            try (Model m = Model.open(model); Engine e = m.newEngine(new Engine.Options().nCtx(256).nThreads(1))) {
                expect = TestSupport.collect(e.generate(TestSupport.greedy("Once upon a time", 16))).tokens.stream()
                        .map(String::valueOf).collect(Collectors.joining(","));
            }
            for (String out : outputs) {
                assertTrue(out.contains("tokens " + expect + "\n"), out);
            }
        }
        try (var left = Files.list(childTmp)) {
            assertEquals(List.of(), left.collect(Collectors.toList()), "extracted copies are deleted");
        }
    }

    /** With memwise.library.path pointing nowhere, loading fails with a clear error instead of guessing. */
    @Test
    void badOverrideFailsClearly() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = String.join(File.pathSeparator, location(Model.class), location(ExtractionMain.class));
        Process p = new ProcessBuilder(java, "-Dmemwise.library.path=" + tmp.resolve("nowhere"), "-cp", cp,
                ExtractionMain.class.getName()).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertNotEquals(0, p.exitValue());
        assertTrue(out.contains("UnsatisfiedLinkError") && out.contains("nowhere"), out);
    }
}
