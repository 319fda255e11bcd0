// Memory read bandwidth probe: the bound on decode speed (tokens/s <= GB/s
// read / bytes of weights per token). Used by `memwise bench --probe-bandwidth`
// and by bench/bandwidth_probe. Plain threads and vector loads, no engine code.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace cli {

struct BandwidthResult {
    double read_gbps;    // best multi-stream read over the stream counts tried
    int best_streams;    // independent read streams per thread that gave it
    double triad_gbps;   // STREAM-style a = b + s * c (counts 3 arrays of traffic), for reference; 0 if not run
};

// Reads a buffer of buffer_bytes (make it several times the last-level cache)
// with n_threads threads, each over its own contiguous share, with 1, 2, 4 and
// 8 independent streams per thread (streams start at equal distances within
// the share, so the hardware prefetchers see several sequential streams).
// passes: full passes timed per configuration (the best pass counts).
// per_streams, when not null, receives the GB/s of 1, 2, 4, 8 streams.
BandwidthResult probe_bandwidth(size_t buffer_bytes, int n_threads, int passes, bool triad, double per_streams[4]);

}  // namespace cli
