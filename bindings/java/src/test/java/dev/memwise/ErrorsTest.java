package dev.memwise;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/** Bad input is a MemwiseException with the C status and a message; nothing crashes. */
class ErrorsTest {
    @TempDir
    Path tmp;

    static MemwiseException expect(Status status, Executable call) {
        MemwiseException e = assertThrows(MemwiseException.class, call);
        assertEquals(status, e.status(), e.getMessage());
        assertEquals(status.code(), e.code());
        assertTrue(e.getMessage().startsWith("MW_ERR_" + status.name()), e.getMessage());
        return e;
    }

    @Test
    void missingFile() {
        MemwiseException e = expect(Status.IO, () -> Model.open(tmp.resolve("no-such-model.gguf")));
        assertTrue(e.detail().contains("no-such-model.gguf"), e.detail());
    }

    @Test
    void directoryIsNotAModel() {
        expect(Status.IO, () -> Model.open(tmp));
    }

    @Test
    void malformedFiles() throws IOException {
        Path garbage = tmp.resolve("garbage.gguf");
        Files.write(garbage, "this is not a gguf file at all, just text".getBytes());
        MemwiseException e = expect(Status.FORMAT, () -> Model.open(garbage));
        assertFalse(e.detail().isEmpty());

        // A valid header that claims more tensors than the file could hold.
        ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        b.put("GGUF".getBytes()).putInt(3).putLong(1L << 40).putLong(0);
        Path lying = tmp.resolve("lying.gguf");
        Files.write(lying, b.array());
        expect(Status.FORMAT, () -> Model.open(lying));

        Path stories = TestSupport.findModel(TestSupport.STORIES);
        if (stories != null) {
            byte[] all = Files.readAllBytes(stories);
            Path truncated = tmp.resolve("truncated.gguf");
            Files.write(truncated, Arrays.copyOf(all, all.length / 2));
            expect(Status.FORMAT, () -> Model.open(truncated));
        }
    }

    @Test
    void badRequests() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model); Engine e = m.newEngine(new Engine.Options().nCtx(64).nThreads(1))) {
            expect(Status.INVALID_ARGUMENT, () -> e.generate(Request.ofText("Hello").temperature(-0.5f)));
            expect(Status.INVALID_ARGUMENT, () -> e.generate(Request.ofText("")));
            expect(Status.INVALID_ARGUMENT, () -> e.generate(Request.ofTokens(1, 99999)));
            expect(Status.INVALID_ARGUMENT, () -> e.generate(Request.ofText("Hello").stop("")));
            expect(Status.INVALID_ARGUMENT, () -> e.generate(Request.ofText("Hello").topP(0)));

            // prompt too long for the 64-token context
            int[] longPrompt = new int[100];
            Arrays.fill(longPrompt, 300);
            expect(Status.CONTEXT_OVERFLOW, () -> e.generate(Request.ofTokens(longPrompt).maxTokens(1)));
            // or too long together with what it asks to generate
            expect(Status.CONTEXT_OVERFLOW, () -> e.generate(Request.ofText("Hello").maxTokens(500)));

            // the engine still works after all that
            assertEquals(4, TestSupport.collect(e.generate(TestSupport.greedy("Hello", 4))).tokens.size());
        }
    }

    @Test
    void badEngineOptions() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model)) {
            MemwiseException e = expect(Status.BUDGET,
                    () -> m.newEngine(new Engine.Options().nCtx(256).memoryBudgetBytes(1024)));
            assertFalse(e.detail().isEmpty());
            expect(Status.INVALID_ARGUMENT, () -> m.newEngine(new Engine.Options().nThreads(-1)));
            expect(Status.INVALID_ARGUMENT, () -> m.newEngine(new Engine.Options().maxSequences(100000)));
        }
    }

    @Test
    void badTokenizerInput() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model)) {
            expect(Status.INVALID_ARGUMENT, () -> m.detokenize(new int[] {1, -5}, false));
            expect(Status.INVALID_ARGUMENT, () -> m.detokenize(new int[] {512}, false));
            // stories260K has no chat template
            expect(Status.UNSUPPORTED, () -> m.chatFormat(List.of(ChatMessage.user("Hi")), true));
        }
    }

    @Test
    void useAfterClose() {
        Path model = TestSupport.stories();
        Model m = Model.open(model);
        Engine e = m.newEngine(TestSupport.smallEngine(1));
        e.close();
        m.close();
        expect(Status.STATE, () -> m.tokenize("Hi", true, false));
        expect(Status.STATE, m::info);
        expect(Status.STATE, () -> m.newEngine(TestSupport.smallEngine(1)));
        expect(Status.STATE, () -> e.generate(TestSupport.greedy("Hi", 4)));
    }

    @Test
    void statusCodesMatchTheLibrary() {
        for (Status s : Status.values()) {
            if (s == Status.UNKNOWN) {
                assertEquals("MW_ERR_UNKNOWN", Memwise.statusName(s));
                continue;
            }
            assertEquals(s, Status.fromCode(s.code()));
            String cName = Memwise.statusName(s);
            assertTrue(cName.endsWith(s.name()), cName + " vs " + s);
        }
        assertEquals(Status.UNKNOWN, Status.fromCode(-1000));
        MemwiseException e = MemwiseException.fromNative(-1000, "odd".getBytes());
        assertEquals(Status.UNKNOWN, e.status());
        assertEquals(-1000, e.code());
    }
}
