package dev.memwise;

import java.lang.ref.Cleaner;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A native handle owned by one Java object, freed exactly once: by an explicit
 * close() or, as a safety net, by a {@link Cleaner} once the owner is
 * unreachable.
 *
 * <p>Every use of the handle holds the read lock ({@link #acquire()} ...
 * {@link #release()}), and close() takes the write lock, so a handle is never
 * freed while a call on another thread still uses it. close() is idempotent.
 * Callers also keep their owner reachable until the native call returns
 * ({@code Reference.reachabilityFence}), so the Cleaner cannot run mid-call.
 */
final class Resource {
    /** Frees a native handle. */
    interface Free {
        void free(long handle);
    }

    private static final Cleaner CLEANER = Cleaner.create();

    /** What the Cleaner runs; it must not refer to the owner. */
    private static final class State implements Runnable {
        private volatile long handle;
        private final Free free;

        State(long handle, Free free) {
            this.handle = handle;
            this.free = free;
        }

        @Override
        public void run() {
            long h = handle;
            handle = 0;
            if (h != 0) {
                free.free(h);
            }
        }
    }

    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final State state;
    private final Cleaner.Cleanable cleanable;
    private final String what;

    Resource(Object owner, long handle, Free free, String what) {
        this.state = new State(handle, free);
        this.cleanable = CLEANER.register(owner, state);
        this.what = what;
    }

    /**
     * Read-locks and returns the live handle. Throws MemwiseException(STATE)
     * when closed (and then holds no lock). Pair with {@link #release()}.
     */
    long acquire() {
        lock.readLock().lock();
        long h = state.handle;
        if (h == 0) {
            lock.readLock().unlock();
            throw new MemwiseException(Status.STATE, what + " is closed");
        }
        return h;
    }

    /** Like acquire(), but returns 0 (holding no lock) when closed. */
    long acquireIfOpen() {
        lock.readLock().lock();
        long h = state.handle;
        if (h == 0) {
            lock.readLock().unlock();
        }
        return h;
    }

    void release() {
        lock.readLock().unlock();
    }

    boolean isClosed() {
        return state.handle == 0;
    }

    /** Frees the handle once no call is using it. Idempotent. */
    void close() {
        lock.writeLock().lock();
        try {
            cleanable.clean();
        } finally {
            lock.writeLock().unlock();
        }
    }
}
