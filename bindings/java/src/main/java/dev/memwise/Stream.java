package dev.memwise;

import java.lang.ref.Reference;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The events of one request: zero or more token events, then exactly one
 * finish event ({@link Event#isFinished()}), after which {@link #hasNext()} is
 * false. {@code hasNext()} and {@code next()} block until the engine produces
 * the next event. Use it once, from one thread at a time:
 *
 * <pre>{@code
 * try (Stream s = engine.generate(Request.ofText("Once upon a time").temperature(0))) {
 *     for (Event e : s) System.out.print(e.text(StandardCharsets.UTF_8));
 * }
 * }</pre>
 *
 * <p>{@link #cancel()} may be called from any thread: the stream then ends
 * promptly with {@link FinishReason#CANCELLED}. So does closing the engine.
 * {@link #close()} is idempotent and may be called from any thread, also
 * while another thread waits in {@code hasNext()} (which then returns false).
 * The native request is released when the finish event is read or on close;
 * a stream that is dropped unread is released by a
 * {@link java.lang.ref.Cleaner}. Interrupting a thread that waits for an event
 * cancels the request (the interrupt status is kept).
 */
public final class Stream implements AutoCloseable, Iterator<Event>, Iterable<Event> {
    /** How long one native wait lasts, so close() and interrupts are seen between waits. */
    private static final int SLICE_MS = 100;

    @SuppressWarnings("unused") // keeps the engine reachable (not cleaned) while the stream is
    private final Engine engine;
    private final Resource res;
    private final ReentrantLock consumer = new ReentrantLock();
    private Event pending; // guarded by consumer: read from the engine, not yet returned
    private boolean done; // guarded by consumer: the finish event was returned, or the stream closed

    Stream(Engine engine, long handle) {
        this.engine = engine;
        this.res = new Resource(this, handle, Native::requestRelease, "stream");
    }

    /** Blocks until the next event is there; false after the finish event or close(). */
    @Override
    public boolean hasNext() {
        consumer.lock();
        try {
            if (pending == null && !done) {
                pending = fetch();
            }
            return pending != null;
        } finally {
            consumer.unlock();
        }
    }

    /** The next event, waiting for it. */
    @Override
    public Event next() {
        consumer.lock();
        try {
            if (!hasNext()) {
                throw new NoSuchElementException("the stream has ended");
            }
            Event e = pending;
            pending = null;
            if (e.isFinished()) {
                done = true;
                close(); // nothing more to read: release the native request now
            }
            return e;
        } finally {
            consumer.unlock();
        }
    }

    /** This stream itself, for for-each loops (it can be iterated once). */
    @Override
    public Iterator<Event> iterator() {
        return this;
    }

    /** Asks the engine to stop; the stream ends with a CANCELLED finish event. Any thread; harmless when done. */
    public void cancel() {
        long h = res.acquireIfOpen();
        if (h == 0) {
            return;
        }
        try {
            Native.requestCancel(h);
        } finally {
            res.release();
            Reference.reachabilityFence(this);
        }
    }

    public boolean isClosed() {
        return res.isClosed();
    }

    /** Cancels the request if it still runs and releases it. Idempotent; any thread. */
    @Override
    public void close() {
        cancel(); // wakes a consumer waiting in hasNext() at once
        res.close(); // waits for that consumer's native call to return
    }

    /** Waits for the next event; null when the stream was closed. Called with the consumer lock held. */
    private Event fetch() {
        boolean interrupted = false;
        try {
            while (true) {
                if (Thread.interrupted()) {
                    interrupted = true;
                    cancel();
                }
                long h = res.acquireIfOpen();
                if (h == 0) {
                    done = true;
                    return null;
                }
                Event e;
                try {
                    e = Native.requestNext(h, SLICE_MS);
                } finally {
                    res.release();
                    Reference.reachabilityFence(this);
                }
                if (e != null) {
                    return e;
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
