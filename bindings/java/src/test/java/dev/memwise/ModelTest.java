package dev.memwise;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Model information, tokenizer, chat template, defaults. */
class ModelTest {
    @Test
    void versionOfTheLoadedLibrary() {
        assertEquals(100, Memwise.version());
        assertEquals("0.1.0", Memwise.versionString());
        assertNotNull(Memwise.nativeLibrary());
    }

    @Test
    void infoOfStories260K() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model, new Model.Options().prefault(true))) {
            ModelInfo info = m.info();
            assertEquals("llama", info.architecture());
            assertEquals(512, info.nVocab());
            assertEquals(5, info.nLayer());
            assertEquals(64, info.nEmbd());
            assertEquals(8, info.nHead());
            assertEquals(4, info.nHeadKv());
            assertEquals(1, info.bosToken());
            assertEquals(2, info.eosToken());
            assertEquals("llama", info.tokenizerModel());
            assertEquals("F32", info.fileType());
            assertEquals("", info.chatTemplate());
            assertEquals(5 * 2 * 32 * 2, info.kvBytesPerToken());
            assertTrue(info.addBos());
            assertEquals(model.toFile().length(), info.fileBytes());
            assertTrue(info.nParams() > 200_000 && info.weightBytes() == info.nParams() * 4, info.toString());
        }
    }

    @Test
    void tokenizeRoundTrip() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model)) {
            String text = "Once upon a time, there was a little girl.";
            int[] ids = m.tokenize(text, true, false);
            assertTrue(ids.length > 5);
            assertEquals(1, ids[0]); // BOS
            assertEquals(text, new String(m.detokenize(ids, false), StandardCharsets.UTF_8));
            int[] noBos = m.tokenize(text.getBytes(StandardCharsets.UTF_8), false, false);
            assertEquals(ids.length - 1, noBos.length);
            assertEquals(0, m.tokenize("", false, false).length);
            assertEquals(0, m.detokenize(new int[0], false).length);
            // non-ASCII text survives the trip as bytes (byte fallback)
            String unicode = "naïve café 😀";
            assertEquals(unicode, new String(m.detokenize(m.tokenize(unicode, false, false), false), StandardCharsets.UTF_8));
            // a long text needs more tokens than a first guess might allow
            String longText = "a b c d e f g h i j ".repeat(200);
            int[] many = m.tokenize(longText, true, false);
            assertEquals(longText, new String(m.detokenize(many, false), StandardCharsets.UTF_8));
        }
    }

    /** SmolLM2 (the real model, when the setup script fetched it): ChatML formatting. */
    @Test
    void chatFormatOnSmolLM2() {
        Path model = TestSupport.requireModel(TestSupport.SMOLLM);
        try (Model m = Model.open(model)) {
            assertEquals("chatml", m.info().chatTemplate());
            byte[] text = m.chatFormat(List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi")), true);
            String s = new String(text, StandardCharsets.UTF_8);
            assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", s);
            try (Engine e = m.newEngine(TestSupport.smallEngine(1));
                    Stream st = e.generate(Request.ofBytes(text).temperature(0).maxTokens(8))) {
                TestSupport.Result r = TestSupport.collect(st);
                assertTrue(r.tokens.size() >= 1 && r.tokens.size() <= 8);
                assertEquals(Status.OK, r.finish.status());
            }
        }
    }

    /** The memory report adds up: KV blocks used + cached + free fill the pool; weights are the file. */
    @Test
    void memoryReport() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model); Engine e = m.newEngine(TestSupport.smallEngine(2))) {
            TestSupport.collect(e.generate(TestSupport.greedy("Once upon a time", 16)));
            MemoryReport r = e.memory();
            assertTrue(r.version() >= 1, r.toString());
            assertTrue(r.weightsMappedBytes() >= m.info().weightBytes(), r.toString());
            assertTrue(r.kvReservedBytes() > 0, r.toString());
            assertEquals(r.kvReservedBytes(), r.kvUsedBytes() + r.kvCachedBytes() + r.kvFreeBytes(), r.toString());
            assertTrue(r.activationsHighWaterBytes() > 0 && r.engineTotalBytes() > 0, r.toString());
            assertTrue(r.processRssBytes() > r.engineTotalBytes(), r.toString());
            e.close();
            ErrorsTest.expect(Status.STATE, e::memory);
        }
    }

    @Test
    void defaultsComeFromTheLibrary() {
        Request r = Request.ofText("x");
        assertEquals(256, r.maxTokens());
        assertEquals(0.8f, r.temperature());
        assertEquals(40, r.topK());
        assertEquals(0.95f, r.topP());
        assertEquals(0.05f, r.minP());
        assertEquals(1.0f, r.repeatPenalty());
        assertEquals(64, r.repeatLastN());
        assertEquals(Request.SEED_RANDOM, r.seed());
        assertTrue(r.addSpecial() && r.parseSpecial());
        assertFalse(r.ignoreEos());
        Engine.Options o = new Engine.Options();
        assertEquals(1, o.maxSequences());
        assertEquals(16, o.kvBlockTokens());
        assertEquals(512, o.maxBatchTokens());
        assertEquals(Engine.KvType.F16, o.kvType());
        assertEquals(0, o.memoryBudgetBytes());
    }

    /** Requests copy what they are given, and are copied at submit. */
    @Test
    void requestsCopyTheirInput() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model); Engine e = m.newEngine(TestSupport.smallEngine(1))) {
            byte[] prompt = "Once upon a time".getBytes(StandardCharsets.UTF_8);
            Request r = Request.ofBytes(prompt).temperature(0).maxTokens(12);
            prompt[0] = 'X';
            TestSupport.Result a = TestSupport.collect(e.generate(r));
            TestSupport.Result b = TestSupport.collect(e.generate(TestSupport.greedy("Once upon a time", 12)));
            assertEquals(b.tokens, a.tokens);
            Stream s = e.generate(r);
            r.maxTokens(100).temperature(1);
            assertEquals(b.tokens, TestSupport.collect(s).tokens);
        }
    }
}
