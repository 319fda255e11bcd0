/*
 * Main.java - stream a completion with the memwise Java binding.
 *
 *   java -cp memwise-0.1.0.jar:. Main MODEL.gguf ["Once upon a time"] [MAX_TOKENS]
 *
 * Opens the model, creates an engine, submits one greedy request and writes
 * each piece of text to stdout as the engine produces it (as raw bytes: a
 * piece is UTF-8 that ends on a character boundary).
 */
import dev.memwise.Engine;
import dev.memwise.Event;
import dev.memwise.FinishReason;
import dev.memwise.MemwiseException;
import dev.memwise.Model;
import dev.memwise.Request;
import dev.memwise.Stream;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

public final class Main {
    public static void main(String[] args) {
        if (args.length < 1) {
            System.err.println("usage: java Main MODEL.gguf [PROMPT] [MAX_TOKENS]");
            System.exit(2);
        }
        String prompt = args.length > 1 ? args[1] : "Once upon a time";
        int maxTokens = args.length > 2 ? Integer.parseInt(args[2]) : 64;

        // Every handle is AutoCloseable; closing in any order is safe.
        try (Model model = Model.open(Path.of(args[0]));
                Engine engine = model.newEngine(new Engine.Options());
                Stream stream = engine.generate(Request.ofText(prompt).temperature(0).maxTokens(maxTokens))) {
            for (Event event : stream) {
                System.out.write(event.text(), 0, event.textLength()); // bytes, exactly as generated
                System.out.flush();
                if (event.isFinished()) {
                    if (event.finishReason() == FinishReason.ERROR) {
                        System.err.println("\ngeneration failed: " + event.status() + ": "
                                + event.text(StandardCharsets.UTF_8));
                        System.exit(1);
                    }
                    System.out.println();
                    System.err.printf("[%d prompt tokens, %d generated, %s]%n", event.promptTokens(),
                            event.generatedTokens(), event.finishReason());
                }
            }
        } catch (MemwiseException e) {
            System.err.println(args[0] + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
