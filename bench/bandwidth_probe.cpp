// bandwidth_probe: read bandwidth of this machine, the bound on decode speed.
// Read-only streaming over a buffer much larger than the last-level cache, with
// the engine's thread count and 1, 2, 4 and 8 independent streams per thread;
// a STREAM-style triad for reference (it is not the bound: a decode step only
// reads weights).
//
//   bandwidth_probe [--mib N] [--threads N] [--passes N]
#include "../tools/cli/bandwidth.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    size_t mib = 2048;
    int threads = 2, passes = 5;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "usage: bandwidth_probe [--mib N] [--threads N] [--passes N]\n");
            return 2;
        }
        const long v = std::strtol(argv[++i], nullptr, 10);
        if (v <= 0) {
            std::fprintf(stderr, "bandwidth_probe: %s needs a positive number\n", a.c_str());
            return 2;
        }
        if (a == "--mib") mib = (size_t)v;
        else if (a == "--threads") threads = (int)v;
        else if (a == "--passes") passes = (int)v;
        else {
            std::fprintf(stderr, "bandwidth_probe: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    double per[4];
    const cli::BandwidthResult r = cli::probe_bandwidth(mib << 20, threads, passes, true, per);
    if (r.read_gbps == 0) {
        std::fprintf(stderr, "bandwidth_probe: cannot map %zu MiB\n", mib);
        return 1;
    }
    std::printf("{\"buffer_mib\": %zu, \"threads\": %d, \"passes\": %d, \"read_gbps_1_stream\": %.2f, "
                "\"read_gbps_2_streams\": %.2f, \"read_gbps_4_streams\": %.2f, \"read_gbps_8_streams\": %.2f, "
                "\"read_gbps\": %.2f, \"best_streams\": %d, \"triad_gbps\": %.2f}\n",
                mib, threads, passes, per[0], per[1], per[2], per[3], r.read_gbps, r.best_streams, r.triad_gbps);
    return 0;
}
