package dev.memwise;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Finds the test models and fixtures; collects streams. */
final class TestSupport {
    static final String STORIES = "stories260K.gguf";
    static final String SMOLLM = "SmolLM2-135M-Instruct.Q4_1.gguf";

    private TestSupport() {}

    /** The repository root (bindings/java/../..). */
    static Path repoRoot() {
        return Path.of(System.getProperty("memwise.repo.root", "../..")).toAbsolutePath().normalize();
    }

    /**
     * A model file from $MEMWISE_TEST_MODELS, ../shared/models next to the
     * repository, or the setup script's cache; null when absent.
     */
    static Path findModel(String file) {
        List<Path> dirs = new ArrayList<>();
        String env = System.getenv("MEMWISE_TEST_MODELS");
        if (env != null && !env.isEmpty()) {
            dirs.add(Path.of(env));
        }
        dirs.add(repoRoot().resolve("../shared/models"));
        String cache = System.getenv("MEMWISE_MODEL_CACHE");
        dirs.add(cache != null && !cache.isEmpty() ? Path.of(cache)
                : Path.of(System.getProperty("user.home"), ".cache", "memwise", "models"));
        for (Path d : dirs) {
            Path p = d.resolve(file);
            if (Files.isRegularFile(p)) {
                return p.toAbsolutePath().normalize();
            }
        }
        return null;
    }

    /** The model, or the test is skipped with a message saying why. */
    static Path requireModel(String file) {
        Path p = findModel(file);
        if (p == null) {
            System.out.println("SKIP: model " + file
                    + " not found ($MEMWISE_TEST_MODELS, ../shared/models, ~/.cache/memwise/models); run scripts/setup.sh");
        }
        assumeTrue(p != null, "model " + file + " not found");
        return p;
    }

    static Path stories() {
        return requireModel(STORIES);
    }

    /** Engine options small enough for CI: 256-token context, 2 compute threads. */
    static Engine.Options smallEngine(int maxSequences) {
        return new Engine.Options().nCtx(256).nThreads(2).maxSequences(maxSequences);
    }

    static Request greedy(String prompt, int maxTokens) {
        return Request.ofText(prompt).temperature(0).maxTokens(maxTokens);
    }

    /** Everything a stream produced. */
    static final class Result {
        final List<Integer> tokens = new ArrayList<>();
        final ByteArrayOutputStream text = new ByteArrayOutputStream();
        Event finish;

        int[] tokenArray() {
            return tokens.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    /** Reads the stream to its end (and closes it). */
    static Result collect(Stream s) {
        Result r = new Result();
        try (s) {
            for (Event e : s) {
                if (e.isToken()) {
                    r.tokens.add(e.token());
                }
                if (!(e.isFinished() && e.finishReason() == FinishReason.ERROR)) {
                    r.text.writeBytes(e.text());
                }
                if (e.isFinished()) {
                    r.finish = e;
                }
            }
        }
        return r;
    }

    /** One case of tests/data/greedy_*.txt. */
    record GreedyCase(boolean addSpecial, boolean parseSpecial, byte[] prompt, int[] promptIds, int[] generatedIds) {}

    static List<GreedyCase> readGreedyFixture(String name) throws IOException {
        List<GreedyCase> cases = new ArrayList<>();
        for (String line : Files.readAllLines(repoRoot().resolve("tests/data").resolve(name))) {
            line = line.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] f = line.split(" ");
            cases.add(new GreedyCase(f[0].equals("1"), f[1].equals("1"), hex(f[2]), ids(f[3]), ids(f[4])));
        }
        return cases;
    }

    private static byte[] hex(String s) {
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    private static int[] ids(String s) {
        if (s.equals("-") || s.isEmpty()) {
            return new int[0];
        }
        String[] p = s.split(",");
        int[] r = new int[p.length];
        for (int i = 0; i < p.length; i++) {
            r[i] = Integer.parseInt(p[i]);
        }
        return r;
    }
}
