// The C ABI: translates handles, option structs and status codes to the C++
// engine and back. No engine logic lives here. Every entry point catches
// everything and maps it to a status; details go to the thread-local
// mw_last_error().
#include <memwise/memwise.h>

#include "base/error.h"
#include "model/chat_template.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/request.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <unordered_set>

#include "api/c_api_internal.h"

struct mw_engine {
    std::unique_ptr<mw::Engine> engine;
};

struct mw_adapter {
    std::shared_ptr<const mw::LoraAdapter> adapter;
};

struct mw_request {
    std::shared_ptr<mw::Request> request;
    mw::RequestEvent current;  // the event last returned; its text stays valid until the next call
};

namespace mw::capi {

thread_local std::string t_last_error;

mw_status set_error(mw_status status, const std::string& message) {
    t_last_error = message;
    return status;
}

// Live handles, so that a released or foreign pointer is an error, not a crash
// (as long as the memory was not reused for a new handle of the same kind).
static std::mutex g_handles_mutex;
static std::unordered_set<const void*> g_handles;

void register_handle(const void* h) {
    std::lock_guard<std::mutex> lock(g_handles_mutex);
    g_handles.insert(h);
}
bool unregister_handle(const void* h) {
    std::lock_guard<std::mutex> lock(g_handles_mutex);
    return g_handles.erase(h) > 0;
}
bool is_live(const void* h) {
    if (!h) return false;
    std::lock_guard<std::mutex> lock(g_handles_mutex);
    return g_handles.count(h) > 0;
}

void check_handle(const void* h, const char* what) {
    if (!h) mw::fail(MW_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
    if (!is_live(h)) mw::fail(MW_ERR_INVALID_ARGUMENT, std::string(what) + " is not a live handle (released or closed?)");
}

void copy_str(char* dst, size_t cap, const std::string& s) {
    const size_t n = std::min(cap - 1, s.size());
    std::memcpy(dst, s.data(), n);
    dst[n] = 0;
}

}  // namespace mw::capi

using namespace mw::capi;

namespace {

// Writes bytes into a caller's buffer with the "always report the full length" convention.
mw_status copy_out(const std::string& s, char* buf, size_t capacity, size_t* out_len) {
    if (out_len) *out_len = s.size();
    if (!buf && capacity) mw::fail(MW_ERR_INVALID_ARGUMENT, "buffer is NULL with non-zero capacity");
    if (capacity < s.size()) {
        if (buf && capacity) std::memcpy(buf, s.data(), capacity);
        return set_error(MW_ERR_BUFFER_TOO_SMALL, "output needs " + std::to_string(s.size()) + " bytes, capacity is " +
                                                      std::to_string(capacity));
    }
    if (!s.empty()) std::memcpy(buf, s.data(), s.size());
    return MW_OK;
}

void fill_event(const mw::RequestEvent& ev, mw_event* out) {
    const mw_event e = mw::to_mw_event(ev);
    const size_t n = std::min<size_t>(out->struct_size, sizeof(mw_event));
    std::memcpy(out, &e, n);
    out->struct_size = (uint32_t)n;
}

}  // namespace

extern "C" {

MW_API unsigned mw_version(void) { return MW_VERSION_NUMBER; }
MW_API const char* mw_version_string(void) { return MW_VERSION_STRING; }

MW_API const char* mw_status_string(mw_status status) {
    switch (status) {
        case MW_OK: return "MW_OK";
        case MW_TIMEOUT: return "MW_TIMEOUT";
        case MW_ERR_INVALID_ARGUMENT: return "MW_ERR_INVALID_ARGUMENT";
        case MW_ERR_FORMAT: return "MW_ERR_FORMAT";
        case MW_ERR_UNSUPPORTED: return "MW_ERR_UNSUPPORTED";
        case MW_ERR_IO: return "MW_ERR_IO";
        case MW_ERR_OUT_OF_MEMORY: return "MW_ERR_OUT_OF_MEMORY";
        case MW_ERR_BUDGET: return "MW_ERR_BUDGET";
        case MW_ERR_CONTEXT_OVERFLOW: return "MW_ERR_CONTEXT_OVERFLOW";
        case MW_ERR_BUFFER_TOO_SMALL: return "MW_ERR_BUFFER_TOO_SMALL";
        case MW_ERR_CANCELLED: return "MW_ERR_CANCELLED";
        case MW_ERR_STATE: return "MW_ERR_STATE";
        case MW_ERR_INTERNAL: return "MW_ERR_INTERNAL";
    }
    return "MW_ERR_UNKNOWN";
}

MW_API const char* mw_last_error(void) { return t_last_error.c_str(); }

/* ---- model ---- */

MW_API void mw_model_options_init(mw_model_options* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
}

MW_API mw_status mw_model_open(const char* path, const mw_model_options* opts, mw_model** out_model) {
    return guarded([&] {
        if (!out_model) mw::fail(MW_ERR_INVALID_ARGUMENT, "out_model is NULL");
        *out_model = nullptr;
        if (!path) mw::fail(MW_ERR_INVALID_ARGUMENT, "path is NULL");
        const mw_model_options o = read_options(opts, mw_model_options_init, "mw_model_options");
        mw::ModelLoadOptions lo;
        lo.prefault = o.prefault != 0;
        lo.lock = o.lock != 0;
        switch (o.access_hint) {
            case MW_ACCESS_DEFAULT: lo.access = mw::gguf::AccessHint::Default; break;
            case MW_ACCESS_RANDOM: lo.access = mw::gguf::AccessHint::Random; break;
            case MW_ACCESS_SEQUENTIAL: lo.access = mw::gguf::AccessHint::Sequential; break;
            case MW_ACCESS_WILLNEED: lo.access = mw::gguf::AccessHint::WillNeed; break;
            default:
                mw::fail(MW_ERR_INVALID_ARGUMENT, "mw_model_options.access_hint " + std::to_string(o.access_hint) +
                                                      " is not an mw_access_hint (0..3)");
        }
        if (o.cache_dir) lo.cache_dir = o.cache_dir;
        auto h = std::make_unique<mw_model>();
        h->model = mw::Model::load(path, lo);
        register_handle(h.get());
        *out_model = h.release();
    });
}

MW_API void mw_model_close(mw_model* model) {
    if (!model || !unregister_handle(model)) return;
    delete model;  // engines hold their own reference to the model
}

MW_API mw_status mw_model_info_get(const mw_model* model, mw_model_info* info) {
    return guarded([&] {
        check_handle(model, "model");
        if (!info) mw::fail(MW_ERR_INVALID_ARGUMENT, "info is NULL");
        if (info->struct_size < sizeof(uint32_t)) mw::fail(MW_ERR_INVALID_ARGUMENT, "info->struct_size not set");
        const mw::Model& m = *model->model;
        const mw::ModelConfig& c = m.config();
        const mw::Tokenizer& t = m.tokenizer();
        mw_model_info i;
        std::memset(&i, 0, sizeof i);
        i.struct_size = sizeof i;
        copy_str(i.architecture, sizeof i.architecture, c.arch_name);
        copy_str(i.name, sizeof i.name, c.name);
        i.gguf_version = m.file().version();
        i.n_vocab = (uint32_t)c.n_vocab;
        i.n_ctx_train = (uint32_t)c.n_ctx_train;
        i.n_embd = (uint32_t)c.n_embd;
        i.n_layer = (uint32_t)c.n_layer;
        i.n_head = (uint32_t)c.layers[0].n_head;
        i.n_head_kv = (uint32_t)c.layers[0].n_head_kv;
        i.n_ff = (uint32_t)c.layers[0].n_ff;
        i.head_dim = (uint32_t)c.head_dim;
        i.n_params = m.n_params();
        i.file_bytes = m.file().file_size();
        i.weight_bytes = m.weight_bytes();
        i.bos_token = t.bos();
        i.eos_token = t.eos();
        i.eot_token = t.eot();
        i.kv_bytes_per_token = (uint32_t)(c.kv_elements_per_token() * 2);
        i.add_bos = t.add_bos() ? 1 : 0;
        copy_str(i.tokenizer_model, sizeof i.tokenizer_model, t.model_name());
        copy_str(i.tokenizer_pre, sizeof i.tokenizer_pre, t.pre_name());
        copy_str(i.chat_template, sizeof i.chat_template,
                 m.chat_template() == mw::ChatTemplateKind::Unknown ? "" : mw::chat_template_name(m.chat_template()));
        copy_str(i.file_type, sizeof i.file_type, m.dominant_type_name());
        const size_t n = std::min<size_t>(info->struct_size, sizeof i);
        std::memcpy(info, &i, n);
        info->struct_size = (uint32_t)n;
    });
}

MW_API size_t mw_model_tensor_count(const mw_model* model) {
    if (!is_live(model)) return 0;
    return model->model->file().tensors().size();
}

MW_API mw_status mw_model_tensor_info(const mw_model* model, size_t index, mw_tensor_info* info) {
    return guarded([&] {
        check_handle(model, "model");
        if (!info || info->struct_size < sizeof(uint32_t)) mw::fail(MW_ERR_INVALID_ARGUMENT, "info is NULL or struct_size not set");
        const auto& ts = model->model->file().tensors();
        if (index >= ts.size())
            mw::fail(MW_ERR_INVALID_ARGUMENT, "tensor index " + std::to_string(index) + " out of range (" +
                                                  std::to_string(ts.size()) + " tensors)");
        const mw::gguf::TensorInfo& t = ts[index];
        mw_tensor_info i;
        std::memset(&i, 0, sizeof i);
        i.struct_size = sizeof i;
        i.name = t.name.c_str();
        const mw::gguf::TensorTypeInfo* ti = mw::gguf::tensor_type_info((uint32_t)t.type);
        copy_str(i.type_name, sizeof i.type_name, ti ? ti->name : "?");
        i.n_dims = t.n_dims;
        for (int d = 0; d < 4; d++) i.ne[d] = t.ne[d];
        i.n_bytes = t.n_bytes;
        i.file_offset = model->model->file().data_offset() + t.offset;
        const size_t n = std::min<size_t>(info->struct_size, sizeof i);
        std::memcpy(info, &i, n);
        info->struct_size = (uint32_t)n;
    });
}

/* ---- tokenizer ---- */

MW_API mw_status mw_tokenize(const mw_model* model, const char* text, size_t text_len, int add_special,
                             int parse_special, int32_t* tokens, size_t capacity, size_t* n_tokens) {
    mw_status st = MW_OK;
    const mw_status g = guarded([&] {
        check_handle(model, "model");
        if (!text && text_len) mw::fail(MW_ERR_INVALID_ARGUMENT, "text is NULL");
        if (!n_tokens) mw::fail(MW_ERR_INVALID_ARGUMENT, "n_tokens is NULL");
        if (!tokens && capacity) mw::fail(MW_ERR_INVALID_ARGUMENT, "tokens is NULL with non-zero capacity");
        const std::vector<int32_t> ids = model->model->tokenizer().encode(std::string_view(text ? text : "", text_len),
                                                                          add_special != 0, parse_special != 0);
        *n_tokens = ids.size();
        std::copy_n(ids.begin(), std::min(ids.size(), capacity), tokens);
        if (capacity < ids.size())
            st = set_error(MW_ERR_BUFFER_TOO_SMALL, "text has " + std::to_string(ids.size()) + " tokens, capacity is " +
                                                        std::to_string(capacity));
    });
    return g != MW_OK ? g : st;
}

MW_API mw_status mw_detokenize(const mw_model* model, const int32_t* tokens, size_t n_tokens, int render_special,
                               char* text, size_t capacity, size_t* text_len) {
    mw_status st = MW_OK;
    const mw_status g = guarded([&] {
        check_handle(model, "model");
        if (!tokens && n_tokens) mw::fail(MW_ERR_INVALID_ARGUMENT, "tokens is NULL");
        if (!text_len) mw::fail(MW_ERR_INVALID_ARGUMENT, "text_len is NULL");
        const mw::Tokenizer& t = model->model->tokenizer();
        std::vector<int32_t> ids(tokens, tokens + n_tokens);
        for (size_t i = 0; i < n_tokens; i++)
            if (ids[i] < 0 || ids[i] >= t.n_vocab())
                mw::fail(MW_ERR_INVALID_ARGUMENT, "token " + std::to_string(i) + ": id " + std::to_string(ids[i]) +
                                                      " out of range [0, " + std::to_string(t.n_vocab()) + ")");
        st = copy_out(t.decode(ids, render_special != 0), text, capacity, text_len);
    });
    return g != MW_OK ? g : st;
}

MW_API mw_status mw_chat_format(const mw_model* model, const mw_chat_message* messages, size_t n_messages,
                                int add_generation_prompt, char* text, size_t capacity, size_t* text_len) {
    mw_status st = MW_OK;
    const mw_status g = guarded([&] {
        check_handle(model, "model");
        if (!text_len) mw::fail(MW_ERR_INVALID_ARGUMENT, "text_len is NULL");
        if (!messages && n_messages) mw::fail(MW_ERR_INVALID_ARGUMENT, "messages is NULL");
        const mw::Model& m = *model->model;
        if (m.chat_template() == mw::ChatTemplateKind::Unknown)
            mw::fail(MW_ERR_UNSUPPORTED, m.file().find("tokenizer.chat_template")
                                             ? "the model's chat template is not one memwise recognises (ChatML, Llama-2, Llama-3, Mistral); pass raw text instead"
                                             : "the model has no chat template; pass raw text instead");
        std::vector<mw::ChatMessage> msgs;
        for (size_t i = 0; i < n_messages; i++) {
            const mw_chat_message& cm = messages[i];
            if ((!cm.role && cm.role_len) || (!cm.content && cm.content_len))
                mw::fail(MW_ERR_INVALID_ARGUMENT, "message " + std::to_string(i) + " has a NULL role or content");
            msgs.push_back({std::string(cm.role ? cm.role : "", cm.role_len),
                            std::string(cm.content ? cm.content : "", cm.content_len)});
        }
        const mw::Tokenizer& t = m.tokenizer();
        const std::string bos = t.bos() >= 0 ? t.piece(t.bos(), true) : "";
        const std::string eos = t.eos() >= 0 ? t.piece(t.eos(), true) : "";
        st = copy_out(mw::format_chat(m.chat_template(), msgs, add_generation_prompt != 0, bos, eos,
                                      m.chat_default_system()),
                      text, capacity, text_len);
    });
    return g != MW_OK ? g : st;
}

/* ---- engine ---- */

MW_API void mw_engine_options_init(mw_engine_options* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->n_threads = 0;
    opts->n_ctx = 0;
    opts->max_sequences = 1;
    opts->kv_block_tokens = 16;
    opts->kv_type = MW_KV_F16;
    opts->max_batch_tokens = 512;
    opts->memory_budget_bytes = 0;
    opts->prefix_cache = 1;
    opts->preempt_mode = MW_PREEMPT_RECOMPUTE;
    opts->spill_dir = nullptr;
    opts->backend = MW_BACKEND_CPU;
    opts->cuda_device = 0;
    opts->release_host_weights = 0;
}

MW_API int mw_backend_available(int32_t backend) {
    try {
        if (backend == MW_BACKEND_CPU || backend == MW_BACKEND_AUTO) return 1;
        std::string why;
        return backend == MW_BACKEND_CUDA && mw::cuda_usable(0, &why) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

namespace {
mw::EngineOptions engine_options_from(const mw_engine_options* opts) {
    const mw_engine_options o = read_options(opts, mw_engine_options_init, "mw_engine_options");
    mw::EngineOptions eo;
    if (o.n_threads > 1024) mw::fail(MW_ERR_INVALID_ARGUMENT, "n_threads " + std::to_string(o.n_threads) + " out of range");
    if (o.n_ctx > (1u << 22)) mw::fail(MW_ERR_INVALID_ARGUMENT, "n_ctx " + std::to_string(o.n_ctx) + " too large");
    if (o.max_sequences > 4096 || o.kv_block_tokens > 1024 || o.max_batch_tokens > 65536)
        mw::fail(MW_ERR_INVALID_ARGUMENT, "max_sequences, kv_block_tokens or max_batch_tokens out of range");
    if (o.kv_type != MW_KV_F16 && o.kv_type != MW_KV_F32 && o.kv_type != MW_KV_Q8_0)
        mw::fail(MW_ERR_INVALID_ARGUMENT, "kv_type " + std::to_string(o.kv_type) + " is not a mw_kv_type");
    if (o.prefix_cache != 0 && o.prefix_cache != 1)
        mw::fail(MW_ERR_INVALID_ARGUMENT, "prefix_cache must be 0 or 1, not " + std::to_string(o.prefix_cache));
    if (o.preempt_mode != MW_PREEMPT_RECOMPUTE && o.preempt_mode != MW_PREEMPT_SPILL)
        mw::fail(MW_ERR_INVALID_ARGUMENT, "preempt_mode " + std::to_string(o.preempt_mode) + " is not a mw_preempt_mode");
    eo.n_threads = (int32_t)o.n_threads;
    eo.n_ctx = (int32_t)o.n_ctx;
    eo.max_sequences = (int32_t)o.max_sequences;
    eo.kv_block_tokens = (int32_t)o.kv_block_tokens;
    eo.kv_type = o.kv_type == MW_KV_F32 ? mw::KvType::F32 : o.kv_type == MW_KV_Q8_0 ? mw::KvType::Q8_0 : mw::KvType::F16;
    eo.prefix_cache = o.prefix_cache != 0;
    eo.preempt_spill = o.preempt_mode == MW_PREEMPT_SPILL;
    if (o.spill_dir) eo.spill_dir = o.spill_dir;
    eo.max_batch_tokens = (int32_t)o.max_batch_tokens;
    eo.memory_budget_bytes = o.memory_budget_bytes;
    if (o.backend != MW_BACKEND_CPU && o.backend != MW_BACKEND_CUDA && o.backend != MW_BACKEND_AUTO)
        mw::fail(MW_ERR_INVALID_ARGUMENT, "backend " + std::to_string(o.backend) + " is not a mw_backend");
    if (o.cuda_device < 0 || o.cuda_device > 1024)
        mw::fail(MW_ERR_INVALID_ARGUMENT, "cuda_device " + std::to_string(o.cuda_device) + " out of range");
    eo.backend = o.backend == MW_BACKEND_CUDA ? mw::Backend::Cuda
                 : o.backend == MW_BACKEND_AUTO ? mw::Backend::Auto
                                                : mw::Backend::Cpu;
    eo.cuda_device = o.cuda_device;
    eo.release_host_weights = o.release_host_weights != 0;
    return eo;
}
}  // namespace

MW_API mw_status mw_engine_create(mw_model* model, const mw_engine_options* opts, mw_engine** out_engine) {
    return guarded([&] {
        if (!out_engine) mw::fail(MW_ERR_INVALID_ARGUMENT, "out_engine is NULL");
        *out_engine = nullptr;
        check_handle(model, "model");
        const mw::EngineOptions eo = engine_options_from(opts);
        auto h = std::make_unique<mw_engine>();
        h->engine = std::make_unique<mw::Engine>(model->model, eo);
        register_handle(h.get());
        *out_engine = h.release();
    });
}

MW_API mw_status mw_engine_plan_memory(const mw_model* model, const mw_engine_options* opts, mw_engine_plan* plan) {
    return guarded([&] {
        check_handle(model, "model");
        if (!plan || plan->struct_size < sizeof(uint32_t))
            mw::fail(MW_ERR_INVALID_ARGUMENT, "plan is NULL or plan->struct_size not set");
        const mw::EnginePlan p = mw::plan_engine(model->model->config(), engine_options_from(opts));
        mw_engine_plan r;
        std::memset(&r, 0, sizeof r);
        r.struct_size = sizeof r;
        r.n_threads = (uint32_t)p.n_threads;
        r.n_ctx = (uint32_t)p.n_ctx;
        r.max_sequences = (uint32_t)p.max_sequences;
        r.kv_block_tokens = (uint32_t)p.block_tokens;
        r.max_batch_tokens = (uint32_t)p.max_batch_tokens;
        r.n_kv_blocks = (uint32_t)p.n_blocks;
        r.kv_block_bytes = p.block_bytes;
        r.kv_bytes = p.kv_bytes;
        r.activation_bytes = p.scratch_bytes;
        r.backend = p.backend == mw::Backend::Cuda ? MW_BACKEND_CUDA : MW_BACKEND_CPU;
        const size_t n = std::min<size_t>(plan->struct_size, sizeof r);
        std::memcpy(plan, &r, n);
        plan->struct_size = (uint32_t)n;
    });
}

MW_API mw_status mw_engine_memory(const mw_engine* engine, mw_memory_report* report) {
    return guarded([&] {
        check_handle(engine, "engine");
        if (!report || report->struct_size < sizeof(uint32_t))
            mw::fail(MW_ERR_INVALID_ARGUMENT, "report is NULL or report->struct_size not set");
        const mw::EngineMemory m = engine->engine->memory();
        mw_memory_report r;
        std::memset(&r, 0, sizeof r);
        r.struct_size = sizeof r;
        r.version = MW_MEMORY_REPORT_VERSION;
        r.weights_mapped_bytes = m.weights_mapped;
        r.weights_resident_bytes = m.weights_resident;
        r.kv_reserved_bytes = m.kv_reserved;
        r.kv_resident_bytes = m.kv_resident;
        r.kv_used_bytes = m.kv_used;
        r.kv_cached_bytes = m.kv_cached;
        r.kv_free_bytes = m.kv_free;
        r.activations_reserved_bytes = m.activations_reserved;
        r.activations_high_water_bytes = m.activations_high_water;
        r.scratch_bytes = m.scratch;
        r.heap_committed_bytes = m.heap_committed;
        r.heap_overhead_bytes = m.heap_overhead;
        r.engine_total_bytes = m.engine_total;
        r.process_rss_bytes = m.process.rss;
        r.process_pss_bytes = m.process.pss;
        r.process_anonymous_bytes = m.process.anonymous;
        r.process_file_bytes = m.process.file;
        r.heap_allocations = m.heap_allocations;
        r.adapters_mapped_bytes = m.adapters_mapped;
        r.adapters_anonymous_bytes = m.adapters_owned;
        r.device_weights_bytes = m.device.weights;
        r.device_kv_bytes = m.device.kv;
        r.device_activations_bytes = m.device.activations;
        r.device_workspace_bytes = m.device.workspace;
        r.device_total_bytes = m.device.total;
        const size_t n = std::min<size_t>(report->struct_size, sizeof r);
        std::memcpy(report, &r, n);
        report->struct_size = (uint32_t)n;
    });
}

MW_API mw_status mw_engine_stats(const mw_engine* engine, mw_stats* stats) {
    return guarded([&] {
        check_handle(engine, "engine");
        if (!stats || stats->struct_size < sizeof(uint32_t))
            mw::fail(MW_ERR_INVALID_ARGUMENT, "stats is NULL or stats->struct_size not set");
        const mw::EngineStats e = engine->engine->stats();
        mw_stats r;
        std::memset(&r, 0, sizeof r);
        r.struct_size = sizeof r;
        r.queued = e.queued;
        r.running = e.running;
        r.kv_blocks_total = e.kv_blocks_total;
        r.kv_blocks_used = e.kv_blocks_used;
        r.kv_blocks_cached = e.kv_blocks_cached;
        r.kv_blocks_free = e.kv_blocks_free;
        r.requests_submitted = e.requests_submitted;
        r.requests_finished = e.sched.requests_finished;
        r.steps = e.sched.steps;
        r.prompt_tokens_computed = e.sched.prompt_tokens;
        r.generated_tokens = e.sched.generated_tokens;
        r.prompt_tokens_per_second = e.sched.prompt_tps;
        r.generated_tokens_per_second = e.sched.generated_tps;
        r.prefix_cache_hits = e.sched.prefix_hits;
        r.prefix_cache_misses = e.sched.prefix_misses;
        const uint64_t lookups = e.sched.prefix_hits + e.sched.prefix_misses;
        r.prefix_cache_hit_rate = lookups ? (double)e.sched.prefix_hits / (double)lookups : 0.0;
        r.preemptions = e.sched.preemptions;
        r.spill_bytes_written = e.sched.spill_bytes;
        r.spill_failures = e.sched.spill_failures;
        const size_t n = std::min<size_t>(stats->struct_size, sizeof r);
        std::memcpy(stats, &r, n);
        stats->struct_size = (uint32_t)n;
    });
}

MW_API void mw_engine_destroy(mw_engine* engine) {
    if (!engine || !unregister_handle(engine)) return;
    delete engine;  // joins the engine thread; running requests finish as cancelled
}

/* ---- LoRA adapters ---- */

MW_API mw_status mw_adapter_open(const mw_model* model, const char* path, mw_adapter** out_adapter) {
    return guarded([&] {
        if (!out_adapter) mw::fail(MW_ERR_INVALID_ARGUMENT, "out_adapter is NULL");
        *out_adapter = nullptr;
        check_handle(model, "model");
        if (!path) mw::fail(MW_ERR_INVALID_ARGUMENT, "path is NULL");
        auto h = std::make_unique<mw_adapter>();
        h->adapter = mw::LoraAdapter::load(path, model->model);
        register_handle(h.get());
        *out_adapter = h.release();
    });
}

MW_API void mw_adapter_close(mw_adapter* adapter) {
    if (!adapter || !unregister_handle(adapter)) return;
    delete adapter;  // requests that use it hold their own reference
}

MW_API mw_status mw_adapter_info_get(const mw_adapter* adapter, mw_adapter_info* info) {
    return guarded([&] {
        check_handle(adapter, "adapter");
        if (!info || info->struct_size < sizeof(uint32_t))
            mw::fail(MW_ERR_INVALID_ARGUMENT, "info is NULL or info->struct_size not set");
        const mw::LoraAdapter& a = *adapter->adapter;
        mw_adapter_info i;
        std::memset(&i, 0, sizeof i);
        i.struct_size = sizeof i;
        i.alpha = a.alpha();
        i.n_tensors = (uint32_t)a.n_weights();
        i.max_rank = (uint32_t)a.max_rank();
        i.mapped_bytes = a.mapped_bytes();
        i.anonymous_bytes = a.owned_bytes();
        const size_t n = std::min<size_t>(info->struct_size, sizeof i);
        std::memcpy(info, &i, n);
        info->struct_size = (uint32_t)n;
    });
}

/* ---- requests ---- */

MW_API void mw_request_options_init(mw_request_options* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->add_special = 1;
    opts->parse_special = 1;
    opts->max_tokens = 256;
    opts->temperature = 0.8f;
    opts->top_k = 40;
    opts->top_p = 0.95f;
    opts->min_p = 0.05f;
    opts->repeat_penalty = 1.0f;
    opts->repeat_last_n = 64;
    opts->seed = MW_SEED_RANDOM;
    opts->adapter = NULL;
    opts->adapter_scale = 1.0f;
}

namespace {
// Builds a request from validated options (the prompt tokenized here, on the
// caller's thread). A request may outlive its engine (the caller owns the
// handle), so it lives on the process heap, not on the engine's.
std::shared_ptr<mw::Request> request_from(const mw::Engine& engine, const mw_request_options& o,
                                          const std::vector<int32_t>* prompt) {
    auto r = std::make_shared<mw::Request>();
    if (prompt) r->prompt = *prompt;
    r->sampling.temperature = o.temperature;
    r->sampling.top_k = o.top_k;
    r->sampling.top_p = o.top_p;
    r->sampling.min_p = o.min_p;
    r->sampling.repeat_penalty = o.repeat_penalty;
    r->sampling.repeat_last_n = o.repeat_last_n;
    r->sampling.seed = o.seed == MW_SEED_RANDOM ? ((uint64_t)std::random_device{}() << 32) ^ std::random_device{}()
                                                : o.seed;
    r->max_tokens = o.max_tokens;
    r->ignore_eos = o.ignore_eos != 0;
    r->priority = o.priority;
    for (size_t i = 0; i < o.n_stop; i++) {
        if (!o.stop[i].data && o.stop[i].len) mw::fail(MW_ERR_INVALID_ARGUMENT, "stop string " + std::to_string(i) + " is NULL");
        if (o.stop[i].len == 0) mw::fail(MW_ERR_INVALID_ARGUMENT, "stop string " + std::to_string(i) + " is empty");
        r->stops.emplace_back(o.stop[i].data, o.stop[i].len);
    }
    r->callback = o.callback;
    r->user_data = o.user_data;
    if (o.adapter && o.adapter_scale != 0.0f) {
        check_handle(o.adapter, "adapter");
        r->adapter = o.adapter->adapter;
        r->lora.scale = o.adapter_scale;  // checked with the adapter's model by the engine
    }
    (void)engine;
    return r;
}

// Checks the options and returns the prompt's tokens.
std::vector<int32_t> prompt_from(const mw::Engine& engine, const mw_request_options* opts, mw_request_options* out) {
    if (!opts) mw::fail(MW_ERR_INVALID_ARGUMENT, "options are NULL (the prompt is required)");
    const mw_request_options o = read_options(opts, mw_request_options_init, "mw_request_options");
    *out = o;
    const bool has_text = o.prompt != nullptr || o.prompt_len > 0;
    const bool has_tokens = o.prompt_tokens != nullptr || o.n_prompt_tokens > 0;
    if (has_text == has_tokens)
        mw::fail(MW_ERR_INVALID_ARGUMENT, has_text ? "give either prompt text or prompt tokens, not both"
                                                   : "empty prompt: give prompt text or prompt tokens");
    if ((has_text && !o.prompt) || (has_tokens && !o.prompt_tokens))
        mw::fail(MW_ERR_INVALID_ARGUMENT, "prompt pointer is NULL with a non-zero length");
    if (o.n_stop && !o.stop) mw::fail(MW_ERR_INVALID_ARGUMENT, "stop is NULL with n_stop > 0");
    if (has_text) {
        if (o.prompt_len == 0) mw::fail(MW_ERR_INVALID_ARGUMENT, "empty prompt");
        return engine.model().tokenizer().encode(std::string_view(o.prompt, o.prompt_len), o.add_special != 0,
                                                 o.parse_special != 0);
    }
    return std::vector<int32_t>(o.prompt_tokens, o.prompt_tokens + o.n_prompt_tokens);
}
}  // namespace

MW_API mw_status mw_submit(mw_engine* engine, const mw_request_options* opts, mw_request** out_request) {
    return guarded([&] {
        if (!out_request) mw::fail(MW_ERR_INVALID_ARGUMENT, "out_request is NULL");
        *out_request = nullptr;
        check_handle(engine, "engine");
        mw_request_options o;
        const std::vector<int32_t> prompt = prompt_from(*engine->engine, opts, &o);
        auto r = request_from(*engine->engine, o, &prompt);
        auto h = std::make_unique<mw_request>();
        h->request = r;
        r->handle = h.get();
        // Registered before it is queued: once queued nothing may fail, or the
        // engine would run a request whose handle was never returned.
        register_handle(h.get());
        try {
            engine->engine->submit(r);
        } catch (...) {
            unregister_handle(h.get());
            throw;
        }
        *out_request = h.release();
    });
}

MW_API mw_status mw_submit_n(mw_engine* engine, const mw_request_options* opts, uint32_t n,
                             mw_request** out_requests) {
    return guarded([&] {
        if (!out_requests) mw::fail(MW_ERR_INVALID_ARGUMENT, "out_requests is NULL");
        for (uint32_t i = 0; i < n; i++) out_requests[i] = nullptr;
        check_handle(engine, "engine");
        if (n == 0) mw::fail(MW_ERR_INVALID_ARGUMENT, "n must be at least 1");
        if (n > (uint32_t)engine->engine->plan().max_sequences)
            mw::fail(MW_ERR_INVALID_ARGUMENT, "n = " + std::to_string(n) + " completions exceed the engine's max_sequences " +
                                                  std::to_string(engine->engine->plan().max_sequences));
        mw_request_options o;
        const std::vector<int32_t> prompt = prompt_from(*engine->engine, opts, &o);
        std::vector<std::shared_ptr<mw::Request>> rs;
        std::vector<std::unique_ptr<mw_request>> hs;
        for (uint32_t i = 0; i < n; i++) {
            mw_request_options oi = o;
            if (o.seed != MW_SEED_RANDOM) oi.seed = o.seed + i;  // completion i samples with seed + i
            rs.push_back(request_from(*engine->engine, oi, &prompt));
            hs.push_back(std::make_unique<mw_request>());
            hs.back()->request = rs.back();
            rs.back()->handle = hs.back().get();
        }
        // Registered before they are queued (as in mw_submit).
        uint32_t registered = 0;
        try {
            for (; registered < n; registered++) register_handle(hs[registered].get());
            engine->engine->submit_group(rs);
        } catch (...) {
            while (registered > 0) unregister_handle(hs[--registered].get());
            throw;
        }
        for (uint32_t i = 0; i < n; i++) out_requests[i] = hs[i].release();
    });
}

MW_API mw_status mw_request_next(mw_request* request, int32_t timeout_ms, mw_event* event) {
    mw_status st = MW_OK;
    const mw_status g = guarded([&] {
        check_handle(request, "request");
        if (!event) mw::fail(MW_ERR_INVALID_ARGUMENT, "event is NULL");
        if (event->struct_size < sizeof(uint32_t)) mw::fail(MW_ERR_INVALID_ARGUMENT, "event->struct_size not set");
        if (!request->request->next(timeout_ms, &request->current)) {
            st = MW_TIMEOUT;
            return;
        }
        fill_event(request->current, event);
    });
    return g != MW_OK ? g : st;
}

MW_API mw_status mw_request_cancel(mw_request* request) {
    return guarded([&] {
        check_handle(request, "request");
        request->request->cancel_requested.store(true);
    });
}

MW_API void mw_request_release(mw_request* request) {
    if (!request || !unregister_handle(request)) return;
    request->request->cancel_requested.store(true);
    delete request;  // the engine keeps its own reference until the sequence ends
}

}  // extern "C"
