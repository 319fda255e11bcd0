#include "bandwidth.h"

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cli {

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sums 64-byte lines of S streams, each `len` bytes from its start, 4 lines per
// stream per step. XOR keeps the loads live at one cheap op per load.
#if defined(__x86_64__)
template <int S>
__attribute__((target("avx2"))) uint64_t read_streams_avx2(const uint8_t* const* starts, size_t len) {
    __m256i acc[S];
    for (int s = 0; s < S; s++) acc[s] = _mm256_setzero_si256();
    for (size_t o = 0; o < len; o += 256)
        for (int s = 0; s < S; s++) {
            const __m256i* p = (const __m256i*)(starts[s] + o);
            const __m256i a = _mm256_xor_si256(_mm256_load_si256(p), _mm256_load_si256(p + 1));
            const __m256i b = _mm256_xor_si256(_mm256_load_si256(p + 2), _mm256_load_si256(p + 3));
            const __m256i c = _mm256_xor_si256(_mm256_load_si256(p + 4), _mm256_load_si256(p + 5));
            const __m256i d = _mm256_xor_si256(_mm256_load_si256(p + 6), _mm256_load_si256(p + 7));
            acc[s] = _mm256_xor_si256(acc[s], _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d)));
        }
    uint64_t r = 0;
    for (int s = 0; s < S; s++) {
        alignas(32) uint64_t v[4];
        _mm256_store_si256((__m256i*)v, acc[s]);
        r ^= v[0] ^ v[1] ^ v[2] ^ v[3];
    }
    return r;
}
#endif

template <int S>
uint64_t read_streams_scalar(const uint8_t* const* starts, size_t len) {
    uint64_t acc[S] = {};
    for (size_t o = 0; o < len; o += 64)
        for (int s = 0; s < S; s++) {
            const uint64_t* p = (const uint64_t*)(starts[s] + o);
            acc[s] ^= p[0] ^ p[1] ^ p[2] ^ p[3] ^ p[4] ^ p[5] ^ p[6] ^ p[7];
        }
    uint64_t r = 0;
    for (int s = 0; s < S; s++) r ^= acc[s];
    return r;
}

template <int S>
uint64_t read_streams(const uint8_t* share, size_t share_bytes) {
    const size_t len = share_bytes / S / 256 * 256;
    const uint8_t* starts[S];
    for (int s = 0; s < S; s++) starts[s] = share + (size_t)s * len;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) return read_streams_avx2<S>(starts, len);
#endif
    return read_streams_scalar<S>(starts, len);
}

uint64_t read_share(int streams, const uint8_t* share, size_t bytes) {
    switch (streams) {
    case 1: return read_streams<1>(share, bytes);
    case 2: return read_streams<2>(share, bytes);
    case 4: return read_streams<4>(share, bytes);
    default: return read_streams<8>(share, bytes);
    }
}

// Runs fn(thread) on n threads at once, `passes` times; returns the best time of one pass.
template <class F>
double best_pass(int n_threads, int passes, F fn) {
    double best = 1e30;
    for (int p = 0; p < passes; p++) {
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> ts;
        std::vector<double> t_end(n_threads);
        double t0 = 0;
        for (int i = 0; i < n_threads; i++)
            ts.emplace_back([&, i] {
                ready.fetch_add(1);
                while (!go.load(std::memory_order_acquire)) {
                }
                fn(i);
                t_end[i] = now();
            });
        while (ready.load() < n_threads) {
        }
        t0 = now();
        go.store(true, std::memory_order_release);
        for (auto& t : ts) t.join();
        double t1 = 0;
        for (double t : t_end) t1 = t > t1 ? t : t1;
        if (t1 - t0 < best) best = t1 - t0;
    }
    return best;
}

}  // namespace

BandwidthResult probe_bandwidth(size_t buffer_bytes, int n_threads, int passes, bool triad, double per_streams[4]) {
    BandwidthResult res{0, 0, 0};
    if (n_threads < 1) n_threads = 1;
    if (passes < 1) passes = 1;
    const size_t share = buffer_bytes / (size_t)n_threads / 4096 * 4096;
    const size_t total = share * (size_t)n_threads;
    void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return res;
    uint8_t* buf = (uint8_t*)m;
    // Each thread touches its own share first (pages land where it runs).
    best_pass(n_threads, 1, [&](int i) { std::memset(buf + (size_t)i * share, i + 1, share); });
    static std::atomic<uint64_t> sink{0};
    const int counts[4] = {1, 2, 4, 8};
    for (int k = 0; k < 4; k++) {
        const int s = counts[k];
        const double t = best_pass(n_threads, passes, [&](int i) { sink ^= read_share(s, buf + (size_t)i * share, share); });
        const double gbps = (double)(share / s / 256 * 256 * s) * n_threads / t / 1e9;
        if (per_streams) per_streams[k] = gbps;
        if (gbps > res.read_gbps) {
            res.read_gbps = gbps;
            res.best_streams = s;
        }
    }
    if (triad) {
        // a = b + 3 * c over three thirds of the buffer, as doubles; 3 arrays of traffic
        // (write-allocate not counted, as STREAM does).
        const size_t n = total / 3 / sizeof(double) / 8 * 8;
        double* a = (double*)buf;
        double* b = a + n;
        double* c = b + n;
        const double t = best_pass(n_threads, passes, [&](int i) {
            const size_t lo = n * i / n_threads, hi = n * (i + 1) / n_threads;
            for (size_t j = lo; j < hi; j++) a[j] = b[j] + 3.0 * c[j];
        });
        res.triad_gbps = 3.0 * (double)n * sizeof(double) / t / 1e9;
    }
    munmap(m, total);
    return res;
}

}  // namespace cli
