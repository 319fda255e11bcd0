// Fuzz target: a GGUF image in memory is validated (gguf::File), then
// inspected the way the loader does: every metadata value and array element
// read through the accessors, the model config and the tokenizer built from
// it. Anything but mw::Error is a bug.
#include "base/error.h"
#include "gguf/gguf_file.h"
#include "model/model_config.h"
#include "model/tokenizer.h"

#include <cstdint>
#include <new>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::unique_ptr<mw::gguf::File> f;
    try {
        f = mw::gguf::File::from_memory(data, size);
    } catch (const mw::Error&) {
        return 0;
    }
    volatile uint64_t sink = 0;
    for (const auto& [key, v] : f->metadata()) {
        if (!v.is_array()) continue;
        for (uint64_t i = 0; i < v.count && i < 4096; i++) {
            try {
                if (v.elem_type == mw::gguf::ValueType::STRING) sink = sink + v.str_at(i).size();
                else if (v.is_float() || v.elem_type == mw::gguf::ValueType::FLOAT32 ||
                         v.elem_type == mw::gguf::ValueType::FLOAT64)
                    sink = sink + (uint64_t)(v.float_at(i) != 0);
                else sink = sink + (uint64_t)v.int_at(i);
            } catch (const mw::Error&) {
            }
        }
    }
    for (const auto& t : f->tensors()) {
        // Every tensor's bytes are inside the image: touch the first and last.
        if (t.n_bytes) sink = sink + t.data[0] + t.data[t.n_bytes - 1];
    }
    try {
        mw::ModelConfig c = mw::read_model_config(*f);
        sink = sink + (uint64_t)c.n_embd;
    } catch (const mw::Error&) {
    }
    try {
        auto tok = mw::Tokenizer::from_gguf(*f);
        const auto ids = tok->encode("hello world", true, true);
        sink = sink + ids.size();
    } catch (const mw::Error&) {
    }
    return 0;
}
