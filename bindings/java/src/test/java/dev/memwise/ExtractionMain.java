package dev.memwise;

/**
 * Run in a separate JVM by NativeLoaderTest: loads the library the way a user
 * of the jar would (no memwise.library.path), prints where it came from and,
 * given a model, the ids of a short greedy completion.
 */
public final class ExtractionMain {
    private ExtractionMain() {}

    public static void main(String[] args) {
        System.out.println("loaded " + Memwise.nativeLibrary());
        if (args.length > 0) {
            try (Model m = Model.open(java.nio.file.Path.of(args[0]));
                    Engine e = m.newEngine(new Engine.Options().nCtx(256).nThreads(1));
                    Stream s = e.generate(Request.ofText("Once upon a time").temperature(0).maxTokens(16))) {
                StringBuilder ids = new StringBuilder();
                for (Event ev : s) {
                    if (ev.isToken()) {
                        ids.append(ids.length() > 0 ? "," : "").append(ev.token());
                    }
                }
                System.out.println("tokens " + ids);
            }
        }
    }
}
