// Fuzz target: the distillation-export reader. The input is written to a file
// and read with mw_distill_reader_open / _next to its end or first error:
// truncated, corrupt or hostile headers and frames must give a status
// (MW_ERR_FORMAT or MW_ERR_IO), never a crash, a hang or an over-read. Every
// record handed out must be self-consistent (ids and log-probabilities inside
// the vocabulary and the header's K, context length = position + 1, and in
// format 2 stream positions 0, 1, 2, ... each once).
#include "fuzz_util.h"

#include <memwise/memwise.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace {
const fs::path& work_dir() { return mw::fuzz::scratch_dir("/tmp/mw_fuzz_distill_XXXXXX"); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const fs::path path = work_dir() / "export.mwd";
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);

    mw_distill_reader* r = nullptr;
    if (mw_distill_reader_open(path.c_str(), &r) != MW_OK) {
        if (r) std::abort();  // a failed open hands out nothing
        return 0;
    }
    mw_distill_info info;
    info.struct_size = sizeof info;
    if (mw_distill_reader_info(r, &info) != MW_OK) std::abort();
    // Records are bounded by the header; a reader that yields more is wrong.
    for (uint64_t n = 0;; n++) {
        mw_distill_record rec;
        rec.struct_size = sizeof rec;
        int32_t has = 0;
        const mw_status st = mw_distill_reader_next(r, &rec, &has);
        if (st != MW_OK) {
            if (st != MW_ERR_FORMAT && st != MW_ERR_IO) std::abort();
            break;
        }
        if (!has) break;
        if (n >= info.n_records) std::abort();
        if (rec.top_k != info.top_k || rec.n_context != rec.position + 1) std::abort();
        if (rec.n_context > info.n_ctx || rec.stream_position != rec.window_start + rec.position) std::abort();
        if (info.version == 2 && rec.stream_position != n) std::abort();
        if (rec.stream_position + 1 >= info.n_text_tokens) std::abort();
        for (uint32_t i = 0; i < rec.top_k; i++)
            if (rec.ids[i] < 0 || (uint32_t)rec.ids[i] >= info.n_vocab) std::abort();
        for (uint32_t i = 0; i < rec.n_context; i++)
            if (rec.context[i] < 0 || (uint32_t)rec.context[i] >= info.n_vocab) std::abort();
    }
    mw_distill_reader_close(r);
    return 0;
}
