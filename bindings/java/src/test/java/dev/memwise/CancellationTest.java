package dev.memwise;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Cancelling from another thread is prompt and ends the stream as CANCELLED. */
class CancellationTest {
    /** A request that would run until its context is full. */
    private static Request endless() {
        return Request.ofText("Once upon a time").temperature(0).maxTokens(0).ignoreEos(true);
    }

    @Test
    void cancelFromAnotherThreadIsPrompt() throws Exception {
        Path model = TestSupport.stories();
        // A long context so the request would run for a long time uncancelled.
        try (Model m = Model.open(model);
                Engine e = m.newEngine(new Engine.Options().nCtx(2048).nThreads(2).maxSequences(2));
                Stream s = e.generate(endless())) {
            ExecutorService other = Executors.newSingleThreadExecutor();
            try {
                assertTrue(s.hasNext());
                Event first = s.next();
                assertTrue(first.isToken(), first.toString());
                long t0 = System.nanoTime();
                other.submit(s::cancel).get(10, TimeUnit.SECONDS);
                Event last = null;
                while (s.hasNext()) {
                    last = s.next();
                }
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                assertNotNull(last);
                assertTrue(last.isFinished());
                assertEquals(FinishReason.CANCELLED, last.finishReason());
                assertTrue(ms < 5000, "cancel took " + ms + " ms");
                assertFalse(s.hasNext());
                assertTrue(s.isClosed(), "released once finished");
            } finally {
                other.shutdownNow();
            }
        }
    }

    /** A consumer blocked in hasNext() on a queued request is released by cancel from another thread. */
    @Test
    void cancelWakesAWaitingConsumer() throws Exception {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model);
                Engine e = m.newEngine(new Engine.Options().nCtx(2048).nThreads(2).maxSequences(1))) {
            // The single sequence slot is taken, so the second request waits in the queue.
            try (Stream busy = e.generate(endless()); Stream queued = e.generate(endless())) {
                assertTrue(busy.hasNext());
                ExecutorService consumer = Executors.newSingleThreadExecutor();
                try {
                    CountDownLatch waiting = new CountDownLatch(1);
                    Future<Event> f = consumer.submit(() -> {
                        waiting.countDown();
                        Event ev = null;
                        while (queued.hasNext()) {
                            ev = queued.next();
                        }
                        return ev;
                    });
                    waiting.await();
                    Thread.sleep(200);
                    queued.cancel();
                    Event ev = f.get(10, TimeUnit.SECONDS);
                    assertNotNull(ev);
                    assertEquals(FinishReason.CANCELLED, ev.finishReason());
                } finally {
                    consumer.shutdownNow();
                }
            }
        }
    }

    /** close() from another thread while the consumer waits in hasNext(): the consumer sees the end. */
    @Test
    void closeFromAnotherThreadWhileWaiting() throws Exception {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model); Engine e = m.newEngine(TestSupport.smallEngine(1))) {
            Stream s = e.generate(endless());
            ExecutorService consumer = Executors.newSingleThreadExecutor();
            try {
                CountDownLatch started = new CountDownLatch(1);
                Future<Integer> f = consumer.submit(() -> {
                    int n = 0;
                    while (s.hasNext()) {
                        s.next();
                        if (++n == 1) {
                            started.countDown();
                        }
                    }
                    return n;
                });
                assertTrue(started.await(30, TimeUnit.SECONDS));
                s.close();
                assertTrue(s.isClosed());
                int n = f.get(10, TimeUnit.SECONDS);
                assertTrue(n >= 1);
                assertFalse(s.hasNext());
                s.close(); // again: harmless
            } finally {
                consumer.shutdownNow();
            }
            // the engine is still fine
            assertEquals(8, TestSupport.collect(e.generate(TestSupport.greedy("Hi", 8))).tokens.size());
        }
    }

    /** Interrupting a thread that waits for events cancels its request. */
    @Test
    void interruptCancels() throws Exception {
        Path model = TestSupport.stories();
        try (Model m = Model.open(model);
                Engine e = m.newEngine(new Engine.Options().nCtx(2048).nThreads(2));
                Stream s = e.generate(endless())) {
            Thread.currentThread().interrupt();
            Event last = null;
            while (s.hasNext()) {
                last = s.next();
            }
            assertTrue(Thread.interrupted(), "interrupt status kept (and cleared here)");
            assertNotNull(last);
            assertEquals(FinishReason.CANCELLED, last.finishReason());
        }
    }
}
