package dev.memwise;

/**
 * Where an engine's memory goes ({@code mw_engine_memory}), in bytes. See
 * docs/C-API.md for what each figure measures.
 */
public final class MemoryReport {
    private final long[] v;

    /** Called with the values in the JNI glue's order (memwise_jni.c, n_engine_memory). */
    MemoryReport(long[] values) {
        this.v = values;
    }

    /** MW_MEMORY_REPORT_VERSION of the library. */
    public int version() { return (int) v[0]; }
    /** Size of the model's mapping (file-backed, shared between processes). */
    public long weightsMappedBytes() { return v[1]; }
    /** Pages of the mapping in RAM. */
    public long weightsResidentBytes() { return v[2]; }
    /** Address space of the KV block pool. */
    public long kvReservedBytes() { return v[3]; }
    /** KV pool pages in RAM. */
    public long kvResidentBytes() { return v[4]; }
    /** KV blocks held by sequences. */
    public long kvUsedBytes() { return v[5]; }
    /** KV blocks holding reusable prefixes with no owner. */
    public long kvCachedBytes() { return v[6]; }
    /** KV blocks free. */
    public long kvFreeBytes() { return v[7]; }
    public long activationsReservedBytes() { return v[8]; }
    /** Most of the step arena one step has touched. */
    public long activationsHighWaterBytes() { return v[9]; }
    /** Sampling, request and scheduler state plus the tokenizer tables. */
    public long scratchBytes() { return v[10]; }
    public long heapCommittedBytes() { return v[11]; }
    public long heapOverheadBytes() { return v[12]; }
    /** The engine's own anonymous memory in RAM. */
    public long engineTotalBytes() { return v[13]; }
    /** The whole process (0 where unavailable). */
    public long processRssBytes() { return v[14]; }
    public long processPssBytes() { return v[15]; }
    public long processAnonymousBytes() { return v[16]; }
    public long processFileBytes() { return v[17]; }
    /** Allocations the engine heap has made so far. */
    public long heapAllocations() { return v[18]; }

    @Override
    public String toString() {
        return "MemoryReport[weights " + weightsResidentBytes() + "/" + weightsMappedBytes() + " resident, kv used "
                + kvUsedBytes() + " cached " + kvCachedBytes() + " free " + kvFreeBytes() + ", activations "
                + activationsHighWaterBytes() + ", scratch " + scratchBytes() + ", engine total "
                + engineTotalBytes() + ", process rss " + processRssBytes() + "]";
    }
}
