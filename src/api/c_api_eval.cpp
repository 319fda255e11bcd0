// C entry points of evaluation and distillation export: option structs in,
// result structs out, exceptions to statuses. The work is in src/tools/eval.
#include "api/c_api_internal.h"
#include "tools/eval/distill_export.h"
#include "tools/eval/distill_format.h"
#include "tools/eval/eval.h"

#include <sys/stat.h>

struct mw_distill_reader {
    std::unique_ptr<mw::eval::ExportReader> reader;
    uint64_t file_bytes = 0;
    uint32_t next = 0;        // next record of the current window
    bool have_window = false;
    bool done = false;
    std::string error;        // a format error sticks: later calls repeat it
};

using namespace mw::capi;

namespace {

// Counts of the C options are unsigned; the library's are int32_t.
int32_t to_i32(uint32_t v, const char* what) {
    if (v > (uint32_t)INT32_MAX) mw::fail(MW_ERR_INVALID_ARGUMENT, std::string(what) + " " + std::to_string(v) + " is too large");
    return (int32_t)v;
}

mw::eval::EvalOptions eval_options_from(const mw_eval_options* opts) {
    const mw_eval_options o = read_options(opts, mw_eval_options_init, "mw_eval_options");
    mw::eval::EvalOptions e;
    e.n_ctx = to_i32(o.n_ctx, "n_ctx");
    e.n_threads = to_i32(o.n_threads, "n_threads");
    e.max_windows = to_i32(o.max_windows, "max_windows");
    switch (o.ref_base) {
    case MW_EVAL_REF_EXACT: e.ref_base = mw::eval::EvalOptions::Base::exact; break;
    case MW_EVAL_REF_LLAMA16: e.ref_base = mw::eval::EvalOptions::Base::llama16; break;
    default:
        mw::fail(MW_ERR_INVALID_ARGUMENT, "ref_base " + std::to_string(o.ref_base) +
                                              " is not an mw_eval_ref_base (0 exact, 1 llama16)");
    }
    if (o.progress) {
        auto fn = o.progress;
        void* user = o.progress_user_data;
        e.progress = [fn, user](int64_t done, int64_t total) { fn(user, (uint64_t)done, (uint64_t)total); };
    }
    return e;
}

void fill_result(const mw::eval::EvalResult& r, mw_eval_result* out) {
    mw_eval_result c;
    std::memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.n_ctx = (uint32_t)r.n_ctx;
    c.n_tokens = (uint64_t)r.n_tokens;
    c.n_windows = (uint64_t)r.n_windows;
    c.n_scored = (uint64_t)r.n_scored;
    c.nll_mean = r.nll_mean;
    c.perplexity = r.perplexity;
    c.has_ref = r.has_ref ? 1 : 0;
    c.ref_is_export = r.ref_is_export ? 1 : 0;
    c.ref_perplexity = r.ref_perplexity;
    c.ln_ppl_ratio = r.ln_ppl_ratio;
    c.kl_mean = r.kl_mean;
    c.kl_p99 = r.kl_p99;
    c.kl_max = r.kl_max;
    c.top1_agreement = r.top1_agreement;
    c.delta_p_rms = r.delta_p_rms;
    c.ref_min_topk_mass = r.ref_min_topk_mass;
    c.seconds = r.seconds;
    write_result(c, out);
}

void check_result(const mw_eval_result* result) {
    if (!result) mw::fail(MW_ERR_INVALID_ARGUMENT, "result is NULL");
    if (result->struct_size < sizeof(uint32_t)) mw::fail(MW_ERR_INVALID_ARGUMENT, "result->struct_size not set");
}

void fill_info(const mw::eval::ExportHeader& h, uint64_t file_bytes, mw_distill_info* out) {
    mw_distill_info i;
    std::memset(&i, 0, sizeof i);
    i.struct_size = sizeof i;
    i.version = h.version;
    i.n_vocab = h.n_vocab;
    i.top_k = h.top_k;
    i.n_ctx = h.n_ctx;
    i.first_scored = h.version == 1 ? h.v1_first : 0;
    i.n_scored = h.version == 1 ? h.v1_n_scored : 0;
    i.stride = h.stride;
    i.bos = h.bos;
    i.n_windows = h.n_windows;
    i.n_records = h.n_records;
    i.n_text_tokens = h.n_text_tokens;
    i.vocab_hash = h.vocab_hash;
    i.file_bytes = file_bytes;
    copy_str(i.architecture, sizeof i.architecture, h.arch);
    copy_str(i.model_name, sizeof i.model_name, h.model_name);
    copy_str(i.tokenizer_model, sizeof i.tokenizer_model, h.tokenizer_model);
    copy_str(i.tokenizer_pre, sizeof i.tokenizer_pre, h.tokenizer_pre);
    write_result(i, out);
}

}  // namespace

extern "C" {

MW_API void mw_eval_options_init(mw_eval_options* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
}

MW_API mw_status mw_eval(const mw_model* model, const mw_model* ref, const char* text, size_t text_len,
                         const mw_eval_options* opts, mw_eval_result* result) {
    return guarded([&] {
        check_handle(model, "model");
        if (ref) check_handle(ref, "ref");
        check_result(result);
        if (!text) mw::fail(MW_ERR_INVALID_ARGUMENT, "text is NULL");
        const mw::eval::EvalOptions o = eval_options_from(opts);
        const mw::eval::EvalResult r =
            mw::eval::evaluate_text(model->model, ref ? ref->model : nullptr, std::string(text, text_len), o);
        fill_result(r, result);
    });
}

MW_API mw_status mw_eval_export(const mw_model* model, const char* export_path, const mw_eval_options* opts,
                                mw_eval_result* result) {
    return guarded([&] {
        check_handle(model, "model");
        check_result(result);
        if (!export_path) mw::fail(MW_ERR_INVALID_ARGUMENT, "export_path is NULL");
        const mw::eval::EvalResult r = mw::eval::evaluate_against_export(model->model, export_path, eval_options_from(opts));
        fill_result(r, result);
    });
}

MW_API void mw_distill_options_init(mw_distill_options* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    const mw::eval::ExportOptions d;
    opts->top_k = (uint32_t)d.top_k;
    opts->compression_level = d.compression_level;
}

MW_API mw_status mw_distill_export(const mw_model* teacher, const char* text, size_t text_len, const char* out_path,
                                   const mw_distill_options* opts, mw_distill_info* info) {
    return guarded([&] {
        check_handle(teacher, "teacher");
        if (!text) mw::fail(MW_ERR_INVALID_ARGUMENT, "text is NULL");
        if (!out_path) mw::fail(MW_ERR_INVALID_ARGUMENT, "out_path is NULL");
        if (info && info->struct_size < sizeof(uint32_t)) mw::fail(MW_ERR_INVALID_ARGUMENT, "info->struct_size not set");
        const mw_distill_options o = read_options(opts, mw_distill_options_init, "mw_distill_options");
        mw::eval::ExportOptions e;
        e.n_ctx = to_i32(o.n_ctx, "n_ctx");
        e.n_threads = to_i32(o.n_threads, "n_threads");
        e.max_windows = to_i32(o.max_windows, "max_windows");
        e.top_k = to_i32(o.top_k, "top_k");
        e.compression_level = o.compression_level;
        if (o.progress) {
            auto fn = o.progress;
            void* user = o.progress_user_data;
            e.progress = [fn, user](int64_t done, int64_t total) { fn(user, (uint64_t)done, (uint64_t)total); };
        }
        const mw::eval::ExportSummary s =
            mw::eval::distill_export(teacher->model, std::string(text, text_len), out_path, e);
        if (info) fill_info(s.header, s.file_bytes, info);
    });
}

MW_API mw_status mw_distill_reader_open(const char* path, mw_distill_reader** out_reader) {
    return guarded([&] {
        if (!out_reader) mw::fail(MW_ERR_INVALID_ARGUMENT, "out_reader is NULL");
        *out_reader = nullptr;
        if (!path) mw::fail(MW_ERR_INVALID_ARGUMENT, "path is NULL");
        auto h = std::make_unique<mw_distill_reader>();
        h->reader = std::make_unique<mw::eval::ExportReader>(path);
        struct stat st;
        if (::stat(path, &st) == 0) h->file_bytes = (uint64_t)st.st_size;
        register_handle(h.get());
        *out_reader = h.release();
    });
}

MW_API mw_status mw_distill_reader_info(const mw_distill_reader* reader, mw_distill_info* info) {
    return guarded([&] {
        check_handle(reader, "reader");
        if (!info || info->struct_size < sizeof(uint32_t))
            mw::fail(MW_ERR_INVALID_ARGUMENT, "info is NULL or struct_size not set");
        fill_info(reader->reader->header(), reader->file_bytes, info);
    });
}

MW_API mw_status mw_distill_reader_next(mw_distill_reader* reader, mw_distill_record* record, int32_t* has_record) {
    return guarded([&] {
        check_handle(reader, "reader");
        if (!has_record) mw::fail(MW_ERR_INVALID_ARGUMENT, "has_record is NULL");
        *has_record = 0;
        if (!record || record->struct_size < sizeof(uint32_t))
            mw::fail(MW_ERR_INVALID_ARGUMENT, "record is NULL or struct_size not set");
        mw::eval::ExportReader& r = *reader->reader;
        const mw::eval::ExportHeader& h = r.header();
        if (!reader->error.empty()) mw::fail(MW_ERR_FORMAT, reader->error);
        if (reader->done) return;
        if (!reader->have_window || reader->next == r.window().n_scored) {
            bool more = false;
            try {
                more = r.next_window();
            } catch (const mw::Error& e) {
                if (e.status() == MW_ERR_FORMAT) reader->error = e.what();
                throw;
            }
            if (!more) {
                reader->done = true;
                return;
            }
            reader->have_window = true;
            reader->next = 0;
        }
        const mw::eval::ExportRecord rec = r.record(reader->next);
        mw_distill_record c;
        std::memset(&c, 0, sizeof c);
        c.struct_size = sizeof c;
        c.top_k = h.top_k;
        c.window = r.window_index();
        c.position = r.window().first + reader->next;
        c.next_token = rec.token;
        c.next_logprob = rec.token_logprob;
        c.rest_mass = rec.rest_mass;
        c.ids = rec.ids;
        c.logprobs = rec.logprobs;
        c.context = r.window_tokens();
        c.n_context = c.position + 1;
        c.window_start = r.window().start;
        c.stream_position = c.window_start + c.position;
        write_result(c, record);
        reader->next++;
        *has_record = 1;
    });
}

MW_API void mw_distill_reader_close(mw_distill_reader* reader) {
    if (!reader || !unregister_handle(reader)) return;
    delete reader;
}

}  // extern "C"
