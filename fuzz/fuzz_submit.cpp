// Fuzz target: mw_submit option parsing. Every field of mw_request_options
// comes from the input (struct_size, floats including NaN and infinities,
// negative counts, stop strings of any bytes, text or token prompts with ids
// out of range); pointers are either NULL or point at input bytes with the
// length the input claims, capped to what exists. A submit must return a
// status; an accepted request is cancelled and must finish with a status.
#include "fuzz_util.h"

#include <memwise/memwise.h>

#include <cstdio>
#include <cstdlib>

namespace {
mw_engine* engine() {
    static mw_engine* e = [] {
        mw_model* m = nullptr;
        if (mw_model_open(mw::fuzz::tiny_model_path().c_str(), nullptr, &m) != MW_OK) std::abort();
        mw_engine_options eo;
        mw_engine_options_init(&eo);
        eo.n_threads = 1;
        eo.n_ctx = 64;
        eo.max_sequences = 4;
        mw_engine* out = nullptr;
        if (mw_engine_create(m, &eo, &out) != MW_OK) std::abort();
        mw_model_close(m);  // the engine keeps it alive
        return out;
    }();
    return e;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    mw::fuzz::Bytes in(data, size);
    const uint16_t flags = in.take<uint16_t>();
    mw_request_options o;
    mw_request_options_init(&o);
    if (flags & 1) o.struct_size = in.take<uint8_t>() * 4u;  // too small, odd, or larger than known
    o.add_special = in.take<int8_t>();
    o.parse_special = in.take<int8_t>();
    o.max_tokens = in.take<uint8_t>() % 80;  // keep generations short; 0 = until the context fills
    o.temperature = in.take<float>();
    o.top_k = in.take<int32_t>();
    o.top_p = in.take<float>();
    o.min_p = in.take<float>();
    o.repeat_penalty = in.take<float>();
    o.repeat_last_n = in.take<int32_t>();
    o.seed = in.take<uint64_t>();
    o.ignore_eos = in.take<int8_t>();
    o.priority = in.take<int32_t>();
    mw_text stops[4];
    const size_t n_stop = (flags >> 1) & 7;
    for (size_t i = 0; i < n_stop && i < 4; i++) {
        const std::string_view s = in.slice(12);
        stops[i] = {(flags & 0x100) && s.empty() ? nullptr : s.data(), s.size()};
    }
    o.n_stop = n_stop;
    o.stop = (flags & 0x200) ? nullptr : stops;
    if (n_stop > 4) o.n_stop = 4;
    std::vector<int32_t> ids;
    const std::string_view prompt = in.rest();
    if (flags & 0x10) {  // token prompt: ids from the input, some out of range
        for (size_t i = 0; i + 2 <= prompt.size() && ids.size() < 48; i += 2)
            ids.push_back((int16_t)((uint8_t)prompt[i] | (uint8_t)prompt[i + 1] << 8));
        o.prompt_tokens = (flags & 0x400) ? nullptr : ids.data();
        o.n_prompt_tokens = ids.size();
    }
    if (!(flags & 0x10) || (flags & 0x20)) {  // text prompt (both: must be refused)
        o.prompt = (flags & 0x800) ? nullptr : prompt.data();
        o.prompt_len = prompt.size() > 256 ? 256 : prompt.size();
    }
    mw_request* r = nullptr;
    const mw_status st = mw_submit(engine(), &o, &r);
    if (st != MW_OK) {
        if (r != nullptr || st > 0 || std::string(mw_last_error()).empty()) {
            std::fprintf(stderr, "mw_submit failed (%s) without a message or left a handle\n", mw_status_string(st));
            std::abort();
        }
        return 0;
    }
    if (flags & 0x1000) mw_request_cancel(r);
    mw_event ev;
    ev.struct_size = sizeof ev;
    for (int k = 0; k < 200; k++) {
        if (mw_request_next(r, 10000, &ev) != MW_OK) {
            std::fprintf(stderr, "request did not finish within 10 s\n");
            std::abort();
        }
        if (ev.kind == MW_EVENT_FINISHED) break;
    }
    if (ev.kind != MW_EVENT_FINISHED) std::abort();
    mw_request_release(r);
    return 0;
}
