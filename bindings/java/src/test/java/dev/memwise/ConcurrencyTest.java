package dev.memwise;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Many Java threads on one engine and one model at once. */
class ConcurrencyTest {
    private static final String[] PROMPTS = {
        "Once upon a time", "Tom and Lily went to the park", "The cat sat on the mat.", "One day, a little bird"
    };
    private static final int THREADS = 32;
    private static final int TOKENS = 24;

    /**
     * 32 threads generate at once on an engine that runs 4 sequences at a
     * time; batched with the others, each still gets exactly its greedy output
     * when alone.
     */
    @Test
    void thirtyTwoThreadsGenerateAtOnce() throws Exception {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model); Engine e = m.newEngine(TestSupport.smallEngine(4))) {
            List<TestSupport.Result> alone = new ArrayList<>();
            for (String p : PROMPTS) {
                alone.add(TestSupport.collect(e.generate(TestSupport.greedy(p, TOKENS))));
            }
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            CountDownLatch start = new CountDownLatch(1);
            try {
                List<Future<TestSupport.Result>> futures = new ArrayList<>();
                for (int i = 0; i < THREADS; i++) {
                    String prompt = PROMPTS[i % PROMPTS.length];
                    futures.add(pool.submit(() -> {
                        start.await();
                        return TestSupport.collect(e.generate(TestSupport.greedy(prompt, TOKENS)));
                    }));
                }
                start.countDown();
                for (int i = 0; i < THREADS; i++) {
                    TestSupport.Result got = futures.get(i).get(120, TimeUnit.SECONDS);
                    TestSupport.Result ref = alone.get(i % PROMPTS.length);
                    assertEquals(ref.tokens, got.tokens, "thread " + i);
                    assertArrayEquals(ref.text.toByteArray(), got.text.toByteArray(), "thread " + i);
                    assertEquals(ref.finish.finishReason(), got.finish.finishReason());
                }
            } finally {
                pool.shutdownNow();
                assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS));
            }
        }
    }

    /** The model's tokenizer and info are used from many threads at once while engines are made and closed. */
    @Test
    void modelIsSharedAcrossThreads() throws Exception {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model)) {
            int[] expect = m.tokenize("Once upon a time, there was a little girl.", true, false);
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                List<Future<?>> futures = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    final int id = i;
                    futures.add(pool.submit(() -> {
                        for (int k = 0; k < 200; k++) {
                            assertArrayEquals(expect, m.tokenize("Once upon a time, there was a little girl.", true, false));
                            assertEquals(512, m.info().nVocab());
                        }
                        if (id % 4 == 0) {
                            try (Engine e = m.newEngine(TestSupport.smallEngine(1))) {
                                assertEquals(8, TestSupport.collect(e.generate(TestSupport.greedy("Hi", 8))).tokens.size());
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : futures) {
                    f.get(120, TimeUnit.SECONDS);
                }
            } finally {
                pool.shutdownNow();
                assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS));
            }
        }
    }
}
