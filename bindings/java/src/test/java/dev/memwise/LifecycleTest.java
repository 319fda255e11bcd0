package dev.memwise;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.ref.WeakReference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.NoSuchElementException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** close() in any order, any number of times, on any thread; the Cleaner as safety net. */
class LifecycleTest {
    private static Request endless() {
        return Request.ofText("Once upon a time").temperature(0).maxTokens(0).ignoreEos(true);
    }

    @Test
    void closeTwiceIsHarmless() {
        Path model = TestSupport.stories();
        Model m = Model.open(model);
        Engine e = m.newEngine(TestSupport.smallEngine(1));
        Stream s = e.generate(TestSupport.greedy("Hi", 4));
        s.close();
        s.close();
        assertTrue(s.isClosed());
        assertFalse(s.hasNext());
        assertThrows(NoSuchElementException.class, s::next);
        s.cancel(); // harmless on a closed stream
        e.close();
        e.close();
        m.close();
        m.close();
        assertTrue(m.isClosed() && e.isClosed());
    }

    @Test
    void streamEndsAfterTheFinishEvent() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model); Engine e = m.newEngine(TestSupport.smallEngine(1));
                Stream s = e.generate(TestSupport.greedy("Once upon a time", 10))) {
            int tokens = 0;
            Event last = null;
            while (s.hasNext()) {
                assertTrue(s.hasNext(), "hasNext is idempotent");
                last = s.next();
                if (last.isToken()) {
                    tokens++;
                    assertEquals(FinishReason.NONE, last.finishReason());
                }
            }
            assertEquals(10, tokens);
            assertTrue(last.isFinished());
            assertEquals(-1, last.token());
            assertEquals(FinishReason.LENGTH, last.finishReason());
            assertEquals(10, last.generatedTokens());
            assertTrue(s.isClosed(), "the native request is released after the finish event");
            assertThrows(NoSuchElementException.class, s::next);
        }
    }

    /** Closing the engine while a stream is open: no crash, the stream ends as cancelled. */
    @Test
    void closeEngineWhileStreamIsOpen() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model)) {
            Engine e = m.newEngine(new Engine.Options().nCtx(2048).nThreads(2).maxSequences(2));
            Stream running = e.generate(endless());
            Stream unread = e.generate(endless());
            assertTrue(running.next().isToken());
            e.close();
            Event last = null;
            while (running.hasNext()) {
                last = running.next();
            }
            assertEquals(FinishReason.CANCELLED, last.finishReason());
            TestSupport.Result r = TestSupport.collect(unread);
            assertEquals(FinishReason.CANCELLED, r.finish.finishReason());
            ErrorsTest.expect(Status.STATE, () -> e.generate(TestSupport.greedy("Hi", 4)));
            running.close();
            e.close();
        }
    }

    /** Closing the engine from another thread while a consumer waits for events. */
    @Test
    void closeEngineFromAnotherThreadWhileConsuming() throws Exception {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model)) {
            Engine e = m.newEngine(new Engine.Options().nCtx(2048).nThreads(2).maxSequences(4));
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                CountDownLatch started = new CountDownLatch(4);
                ConcurrentLinkedQueue<Future<Event>> futures = new ConcurrentLinkedQueue<>();
                for (int i = 0; i < 4; i++) {
                    futures.add(pool.submit(() -> {
                        try (Stream s = e.generate(endless())) {
                            Event last = s.next();
                            started.countDown();
                            while (s.hasNext()) {
                                last = s.next();
                            }
                            return last;
                        }
                    }));
                }
                assertTrue(started.await(30, TimeUnit.SECONDS));
                e.close();
                for (Future<Event> f : futures) {
                    assertEquals(FinishReason.CANCELLED, f.get(30, TimeUnit.SECONDS).finishReason());
                }
            } finally {
                pool.shutdownNow();
                assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
            }
        }
    }

    /** Closing the model first: engines and streams keep working (the engine holds the model). */
    @Test
    void closeModelWhileStreamIsOpen() {
        Path model = TestSupport.stories();
        Model m = Model.open(model);
        TestSupport.Result ref;
        try (Engine ref0 = m.newEngine(TestSupport.smallEngine(1))) {
            ref = TestSupport.collect(ref0.generate(TestSupport.greedy("Once upon a time", 16)));
        }
        try (Engine e = m.newEngine(TestSupport.smallEngine(1));
                Stream s = e.generate(TestSupport.greedy("Once upon a time", 16))) {
            assertTrue(s.hasNext());
            m.close();
            TestSupport.Result r = TestSupport.collect(s);
            assertEquals(ref.tokens, r.tokens);
            assertEquals(FinishReason.LENGTH, r.finish.finishReason());
            assertEquals(ref.tokens, TestSupport.collect(e.generate(TestSupport.greedy("Once upon a time", 16))).tokens);
            ErrorsTest.expect(Status.STATE, m::info);
        }
    }

    /** Engine closed while the stream is read, then model closed, then stream closed: any order is fine. */
    @Test
    void anyCloseOrder() {
        Path model = TestSupport.stories();
        for (int order = 0; order < 6; order++) {
            Model m = Model.open(model);
            Engine e = m.newEngine(TestSupport.smallEngine(1));
            Stream s = e.generate(endless());
            assertTrue(s.next().isToken());
            AutoCloseable[] all = {m, e, s};
            int[][] perms = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
            for (int i : perms[order]) {
                try {
                    all[i].close();
                } catch (Exception ex) {
                    fail(ex);
                }
                if (all[i] == e && !s.isClosed()) {
                    Event last = null;
                    while (s.hasNext()) {
                        last = s.next();
                    }
                    assertEquals(FinishReason.CANCELLED, last.finishReason());
                }
            }
            assertFalse(s.hasNext());
        }
    }

    /** Objects dropped without close() are freed by the Cleaner. */
    @Test
    void cleanerFreesWhatWasNotClosed() throws Exception {
        ConcurrentLinkedQueue<Long> freed = new ConcurrentLinkedQueue<>();
        Object owner = new Object();
        new Resource(owner, 42, freed::add, "test");
        WeakReference<Object> weak = new WeakReference<>(owner);
        owner = null;
        for (int i = 0; i < 100 && freed.isEmpty(); i++) {
            System.gc();
            Thread.sleep(20);
        }
        assertNull(weak.get());
        assertEquals(42L, freed.peek());

        // Real handles dropped in every state; the process keeps running and the model still works.
        Path model = TestSupport.stories();
        for (int i = 0; i < 8; i++) {
            Model m = Model.open(model);
            Engine e = m.newEngine(TestSupport.smallEngine(1));
            Stream s = e.generate(endless());
            if (i % 2 == 0) {
                s.next();
            }
        }
        for (int i = 0; i < 10; i++) {
            System.gc();
            Thread.sleep(20);
        }
        try (Model m = Model.open(model); Engine e = m.newEngine(TestSupport.smallEngine(1))) {
            TestSupport.Result r = TestSupport.collect(e.generate(TestSupport.greedy("Once upon a time", 8)));
            assertEquals(8, r.tokens.size());
        }
    }

    /** Explicit close of a resource: the free function runs once, then the handle is gone. */
    @Test
    void resourceClosesOnce() {
        ConcurrentLinkedQueue<Long> freed = new ConcurrentLinkedQueue<>();
        Object owner = new Object();
        Resource r = new Resource(owner, 7, freed::add, "thing");
        assertEquals(7, r.acquire());
        r.release();
        r.close();
        r.close();
        assertEquals(1, freed.size());
        assertTrue(r.isClosed());
        assertEquals(0, r.acquireIfOpen());
        MemwiseException e = assertThrows(MemwiseException.class, r::acquire);
        assertEquals(Status.STATE, e.status());
        assertEquals("MW_ERR_STATE: thing is closed", e.getMessage());
        assertNotNull(owner);
    }

    @Test
    void stopStringsAndSeeds() {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model); Engine e = m.newEngine(TestSupport.smallEngine(1))) {
            TestSupport.Result plain = TestSupport.collect(e.generate(TestSupport.greedy("Once upon a time", 24)));
            String text = plain.text.toString(StandardCharsets.UTF_8);
            assertTrue(text.contains("Lily"), text);
            TestSupport.Result stopped = TestSupport.collect(
                    e.generate(TestSupport.greedy("Once upon a time", 24).stop("Lily")));
            assertEquals(FinishReason.STOP_STRING, stopped.finish.finishReason());
            assertEquals(text.substring(0, text.indexOf("Lily")), stopped.text.toString(StandardCharsets.UTF_8));

            Request sampled = Request.ofText("Once upon a time").temperature(1.0f).seed(1234).maxTokens(24);
            TestSupport.Result a = TestSupport.collect(e.generate(sampled));
            TestSupport.Result b = TestSupport.collect(e.generate(sampled));
            assertEquals(a.tokens, b.tokens);
        }
    }
}
