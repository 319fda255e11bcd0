// C entry points of quantization and pruning: option structs in, result
// structs out, exceptions to statuses. The work is in src/tools/quantize and
// src/tools/prune.
#include "api/c_api_internal.h"
#include "tools/prune/prune.h"
#include "tools/quantize/quantize.h"

using namespace mw::capi;

namespace {

std::function<void(const std::string&)> log_fn(void (*fn)(void*, const char*), void* user) {
    if (!fn) return {};
    return [fn, user](const std::string& line) { fn(user, line.c_str()); };
}

std::function<void(int64_t, int64_t)> progress_fn(void (*fn)(void*, uint64_t, uint64_t), void* user) {
    if (!fn) return {};
    return [fn, user](int64_t done, int64_t total) { fn(user, (uint64_t)done, (uint64_t)total); };
}

void check_paths(const char* in_path, const char* out_path) {
    if (!in_path) mw::fail(MW_ERR_INVALID_ARGUMENT, "in_path is NULL");
    if (!out_path) mw::fail(MW_ERR_INVALID_ARGUMENT, "out_path is NULL");
}

template <class R>
void check_result(const R* result) {
    if (result && result->struct_size < sizeof(uint32_t)) mw::fail(MW_ERR_INVALID_ARGUMENT, "result->struct_size not set");
}

}  // namespace

extern "C" {

MW_API void mw_quantize_options_init(mw_quantize_options* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    const mw::compress::QuantizeOptions d;
    opts->calib_tokens = (uint32_t)d.calib_tokens;
    opts->sens_tokens = (uint32_t)d.sens_tokens;
    opts->plan_candidates = (uint32_t)d.plan_candidates;
}

MW_API mw_status mw_quantize(const char* in_path, const char* out_path, const mw_quantize_options* opts,
                             mw_quantize_result* result) {
    return guarded([&] {
        check_paths(in_path, out_path);
        check_result(result);
        const mw_quantize_options o = read_options(opts, mw_quantize_options_init, "mw_quantize_options");
        mw::compress::QuantizeOptions q;
        q.has_type = o.type != nullptr;
        if (o.type) q.type = mw::compress::parse_quant_type(o.type);
        if (o.calib_path) q.calib_path = o.calib_path;
        q.n_ctx = (int32_t)std::min<uint32_t>(o.n_ctx, 1u << 20);
        q.calib_tokens = o.calib_tokens;
        q.target_size = o.target_size;
        q.target_bpw = o.target_bpw;
        if (o.sens_tokens) q.sens_tokens = o.sens_tokens;
        if (o.plan_candidates) q.plan_candidates = (int32_t)std::min<uint32_t>(o.plan_candidates, 1u << 16);
        q.rtn_variants = o.rtn_variants != 0;
        q.n_threads = (int32_t)std::min<uint32_t>(o.n_threads, 4096);
        q.log = log_fn(o.log, o.user_data);
        q.progress = progress_fn(o.progress, o.user_data);
        const mw::compress::QuantizeReport r = mw::compress::quantize_model(in_path, out_path, q);
        if (!result) return;
        mw_quantize_result c;
        std::memset(&c, 0, sizeof c);
        c.struct_size = sizeof c;
        c.n_tensors = (uint32_t)r.tensors.size();
        for (const auto& t : r.tensors) c.n_quantized += t.converted ? 1 : 0;
        c.n_fallback = (uint32_t)r.n_fallback;
        c.requantized = r.requantized ? 1 : 0;
        c.mixed = r.mixed ? 1 : 0;
        c.in_bytes = r.in_bytes;
        c.out_bytes = r.out_bytes;
        c.calib_tokens = (uint64_t)r.calib_tokens;
        c.predicted_kl = r.predicted_kl;
        c.measured_kl = r.measured_kl;
        write_result(c, result);
    });
}

MW_API void mw_prune_options_init(mw_prune_options* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    const mw::compress::PruneOptions d;
    opts->ffn_keep = 1.0f;
    opts->heads_keep = 1.0f;
    opts->round = (uint32_t)d.round;
    opts->calib_tokens = (uint32_t)d.calib_tokens;
    opts->sens_tokens = (uint32_t)d.sens_tokens;
}

MW_API mw_status mw_prune(const char* in_path, const char* out_path, const mw_prune_options* opts,
                          mw_prune_result* result) {
    return guarded([&] {
        check_paths(in_path, out_path);
        check_result(result);
        const mw_prune_options o = read_options(opts, mw_prune_options_init, "mw_prune_options");
        mw::compress::PruneOptions p;
        p.ffn_keep = o.ffn_keep;
        p.heads_keep = o.heads_keep;
        if (o.calib_path) p.calib_path = o.calib_path;
        p.per_layer = o.per_layer != 0;
        p.round = (int32_t)std::min<uint32_t>(o.round, 1u << 20);
        p.random = o.random != 0;
        p.seed = o.seed;
        p.n_ctx = (int32_t)std::min<uint32_t>(o.n_ctx, 1u << 20);
        p.calib_tokens = o.calib_tokens;
        if (o.sens_tokens) p.sens_tokens = o.sens_tokens;
        p.n_threads = (int32_t)std::min<uint32_t>(o.n_threads, 4096);
        p.log = log_fn(o.log, o.user_data);
        p.progress = progress_fn(o.progress, o.user_data);
        const mw::compress::PruneReport r = mw::compress::prune_model(in_path, out_path, p);
        if (!result) return;
        mw_prune_result c;
        std::memset(&c, 0, sizeof c);
        c.struct_size = sizeof c;
        c.n_layer = (uint32_t)r.n_ff_before.size();
        c.in_bytes = r.in_bytes;
        c.out_bytes = r.out_bytes;
        c.params_in = r.params_in;
        c.params_out = r.params_out;
        for (int32_t v : r.n_ff_before) c.ffn_channels_in += (uint64_t)v;
        for (int32_t v : r.n_ff_after) c.ffn_channels_out += (uint64_t)v;
        for (int32_t v : r.n_head_before) c.heads_in += (uint64_t)v;
        for (int32_t v : r.n_head_after) c.heads_out += (uint64_t)v;
        c.calib_tokens = (uint64_t)r.calib_tokens;
        write_result(c, result);
    });
}

}  // extern "C"
