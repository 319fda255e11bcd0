// Fuzz target: the .gguf.zst path. The input is written as model.gguf.zst and
// opened with mw_model_open into a private cache directory: corrupt,
// truncated or oversized frames and malformed GGUF inside valid frames must
// give a status. Whatever happens, no partial cache entry may be left (only
// complete entries, with their trailer, may stay; each run's are removed).
#include "fuzz_util.h"

#include <memwise/memwise.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace {
const fs::path& work_dir() { return mw::fuzz::scratch_dir("/tmp/mw_fuzz_zst_XXXXXX"); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const fs::path src = work_dir() / "model.gguf.zst", cache = work_dir() / "cache";
    FILE* f = std::fopen(src.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
    mw_model_options mo;
    mw_model_options_init(&mo);
    const std::string cache_s = cache.string();
    mo.cache_dir = cache_s.c_str();
    mw_model* m = nullptr;
    const mw_status st = mw_model_open(src.c_str(), &mo, &m);
    if (st == MW_OK) mw_model_close(m);
    else if (m) std::abort();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cache, ec)) {
        // A temporary left behind would be a partial file.
        if (e.path().filename().string().find("zst-") != 0 || e.path().extension() != ".gguf") {
            std::fprintf(stderr, "cache holds a stray file %s\n", e.path().c_str());
            std::abort();
        }
    }
    fs::remove_all(cache, ec);
    return 0;
}
