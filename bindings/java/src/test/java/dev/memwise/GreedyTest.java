package dev.memwise;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Greedy output through Java equals the C API's. */
class GreedyTest {
    /**
     * The fixture tests/data/greedy_stories260K.txt holds the C API's (and
     * llama.cpp's) token ids: the prompt tokenizes to the same ids and the
     * greedy continuation is the same, token for token.
     */
    @Test
    void stories260KMatchesTheFixture() throws IOException {
        Path model = TestSupport.stories();
        List<TestSupport.GreedyCase> cases = TestSupport.readGreedyFixture("greedy_stories260K.txt");
        assertFalse(cases.isEmpty());
        try (Model m = Model.open(model);
                Engine e = m.newEngine(new Engine.Options().nCtx(2048).nThreads(2))) {
            ModelInfo info = m.info();
            for (TestSupport.GreedyCase c : cases) {
                int[] prompt = m.tokenize(c.prompt(), c.addSpecial(), c.parseSpecial());
                assertArrayEquals(c.promptIds(), prompt, "prompt ids of " + new String(c.prompt(), StandardCharsets.UTF_8));

                int[] expect = c.generatedIds();
                int last = expect[expect.length - 1];
                boolean endsWithEog = last == info.eosToken() || last == info.eotToken();
                int n = endsWithEog ? expect.length - 1 : expect.length; // EOG finishes instead of being emitted
                TestSupport.Result r = TestSupport.collect(
                        e.generate(Request.ofTokens(prompt).temperature(0).maxTokens(n + 1)));
                int[] got = r.tokenArray();
                if (endsWithEog) {
                    assertArrayEquals(Arrays.copyOf(expect, n), got);
                    assertEquals(FinishReason.EOS, r.finish.finishReason());
                } else {
                    assertArrayEquals(expect, Arrays.copyOf(got, n));
                }
                assertEquals(prompt.length, r.finish.promptTokens());
                assertEquals(got.length, r.finish.generatedTokens());
                assertEquals(Status.OK, r.finish.status());
            }
        }
    }

    /** The same prompt through the installed `memwise run` prints the same bytes. */
    @Test
    void textMatchesTheCommandLine() throws Exception {
        Path model = TestSupport.stories();
        String cli = System.getProperty("memwise.cli", "");
        if (cli.isEmpty() || !Files.isExecutable(Path.of(cli))) {
            System.out.println("SKIP: -Dmemwise.cli=PREFIX/bin/memwise not given; not comparing with the CLI");
        }
        assumeTrue(!cli.isEmpty() && Files.isExecutable(Path.of(cli)), "memwise.cli not set");
        String prompt = "Lily and Tom went to the park";
        int n = 40;
        Process p = new ProcessBuilder(cli, "run", model.toString(), "-p", prompt, "-n", String.valueOf(n), "--temp", "0",
                "--threads", "1").redirectError(ProcessBuilder.Redirect.DISCARD).start();
        p.getOutputStream().close();
        byte[] expected;
        try (InputStream in = p.getInputStream()) {
            expected = in.readAllBytes();
        }
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue());

        try (Model m = Model.open(model);
                Engine e = m.newEngine(TestSupport.smallEngine(1));
                Stream s = e.generate(TestSupport.greedy(prompt, n))) {
            TestSupport.Result r = TestSupport.collect(s);
            r.text.write('\n'); // the CLI ends its output with a newline
            assertEquals(new String(expected, StandardCharsets.UTF_8), r.text.toString(StandardCharsets.UTF_8));
            assertArrayEquals(expected, r.text.toByteArray());
        }
    }

    /** A text prompt and its token ids give the same continuation; the text is the tokens' text. */
    @Test
    void textAndTokenPromptsAgree() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model); Engine e = m.newEngine(TestSupport.smallEngine(1))) {
            String prompt = "Once upon a time";
            TestSupport.Result a = TestSupport.collect(e.generate(TestSupport.greedy(prompt, 24)));
            int[] ids = m.tokenize(prompt, true, true);
            TestSupport.Result b = TestSupport.collect(e.generate(Request.ofTokens(ids).temperature(0).maxTokens(24)));
            assertEquals(24, a.tokens.size());
            assertEquals(a.tokens, b.tokens);
            assertArrayEquals(a.text.toByteArray(), b.text.toByteArray());
            assertEquals(FinishReason.LENGTH, a.finish.finishReason());
            assertEquals(ids.length, a.finish.promptTokens());
            // the streamed pieces add up to the detokenized continuation
            int[] all = new int[ids.length + a.tokens.size()];
            System.arraycopy(ids, 0, all, 0, ids.length);
            System.arraycopy(a.tokenArray(), 0, all, ids.length, a.tokens.size());
            String whole = new String(m.detokenize(all, false), StandardCharsets.UTF_8);
            assertEquals(whole, prompt + a.text.toString(StandardCharsets.UTF_8));
        }
    }
}
