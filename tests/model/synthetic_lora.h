// Builds LoRA adapters in GGUF the way llama.cpp's convert_lora_to_gguf.py
// writes them (general.type "adapter", adapter.type "lora",
// adapter.lora.alpha, <tensor>.lora_a / .lora_b with A [rank, n_in] and
// B [n_out, rank] as rows x columns; token_embd's A transposed), and the
// merged model W + s * B A they must be equivalent to, with the project's own
// GGUF writer. Tests only.
#pragma once

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "quant/quant.h"

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace mw::test {

struct LoraTarget {
    std::string name;                                  // base tensor, e.g. "blk.0.attn_q.weight"
    gguf::TensorType a_type = gguf::TensorType::F32;   // falls back to F32 where rows do not fit the type
    gguf::TensorType b_type = gguf::TensorType::F32;
};

struct LoraSpec {
    std::string arch = "llama";
    std::string general_type = "adapter";
    std::string adapter_type = "lora";
    float alpha = 8.0f;
    bool write_alpha = true;
    int rank = 4;
    float magnitude = 1.0f;  // scales the random A/B values
    uint32_t seed = 7;
    std::vector<LoraTarget> targets;
    // Hooks for malformed files: leave a tensor out, change a shape.
    std::function<bool(const std::string&)> keep = nullptr;
    std::function<void(const std::string&, std::vector<uint64_t>&)> reshape = nullptr;
};

// Every matrix of a synthetic model's layers (and output) as a target.
inline std::vector<LoraTarget> all_layer_targets(int n_layer, gguf::TensorType t = gguf::TensorType::F32) {
    std::vector<LoraTarget> out;
    for (int l = 0; l < n_layer; l++)
        for (const char* w : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"})
            out.push_back({"blk." + std::to_string(l) + "." + w + ".weight", t, t});
    out.push_back({"output.weight", t, t});
    return out;
}

inline void add_matrix(gguf::Writer& w, const std::string& name, gguf::TensorType type, std::vector<uint64_t> ne,
                       const std::vector<float>& v) {
    const gguf::TensorTypeInfo* ti = gguf::tensor_type_info((uint32_t)type);
    if (ne[0] % ti->block_elems != 0) type = gguf::TensorType::F32, ti = gguf::tensor_type_info(0);
    std::vector<uint8_t> bytes(gguf::row_bytes(*ti, ne[0]) * (v.size() / ne[0]));
    quant::quantize_row(type, v.data(), bytes.data(), v.size());
    w.add_tensor(name, type, ne, bytes.data(), bytes.size());
}

// The adapter for `base` (shapes taken from its tensors).
inline std::vector<uint8_t> synthetic_lora(const gguf::File& base, const LoraSpec& s) {
    gguf::Writer w;
    w.set_string("general.architecture", s.arch);
    w.set_string("general.type", s.general_type);
    w.set_string("general.name", "synthetic lora");
    w.set_string("adapter.type", s.adapter_type);
    if (s.write_alpha) w.set_f32("adapter.lora.alpha", s.alpha);
    std::mt19937 rng(s.seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const uint64_t r = (uint64_t)s.rank;
    for (const LoraTarget& t : s.targets) {
        const gguf::TensorInfo* bt = base.find_tensor(t.name);
        const uint64_t n_in = bt ? bt->ne[0] : 64, n_out = bt ? bt->ne[1] : 64;
        const bool embd = t.name == "token_embd.weight";
        // GGUF ne (innermost first): A [n_in, rank], B [rank, n_out]; token_embd A [rank, n_vocab], B [rank, n_embd].
        std::vector<uint64_t> ne_a = embd ? std::vector<uint64_t>{r, n_out} : std::vector<uint64_t>{n_in, r};
        std::vector<uint64_t> ne_b = embd ? std::vector<uint64_t>{r, n_in} : std::vector<uint64_t>{r, n_out};
        const std::string an = t.name + ".lora_a", bn = t.name + ".lora_b";
        if (s.reshape) s.reshape(an, ne_a), s.reshape(bn, ne_b);
        std::vector<float> a(ne_a[0] * ne_a[1]), b(ne_b[0] * ne_b[1]);
        for (auto& x : a) x = s.magnitude * normal(rng) / std::sqrt((float)ne_a[0]);
        for (auto& x : b) x = s.magnitude * normal(rng) / std::sqrt((float)ne_b[0]);
        if (!s.keep || s.keep(an)) add_matrix(w, an, t.a_type, ne_a, a);
        if (!s.keep || s.keep(bn)) add_matrix(w, bn, t.b_type, ne_b, b);
    }
    return w.serialize();
}

inline std::vector<float> dequantize_tensor(const gguf::TensorInfo& t) {
    std::vector<float> v((size_t)t.n_elements);
    const size_t rb = gguf::row_bytes(*gguf::tensor_type_info((uint32_t)t.type), t.ne[0]);
    for (uint64_t r = 0; r < t.n_elements / t.ne[0]; r++)
        quant::dequantize_row(t.type, t.data + r * rb, v.data() + r * t.ne[0], (size_t)t.ne[0]);
    return v;
}

// The base model with every adapted tensor replaced by F32 W + s * B A
// (s = scale * alpha / rank, or scale when alpha is 0), from the values the
// adapter file actually stores.
inline std::vector<uint8_t> merged_model(const gguf::File& base, const gguf::File& lora, float scale) {
    gguf::Writer w;
    w.copy_metadata(base);
    const float alpha = (float)lora.get_float("adapter.lora.alpha", 0.0);
    for (const gguf::TensorInfo& t : base.tensors()) {
        const gguf::TensorInfo* ta = lora.find_tensor(t.name + ".lora_a");
        const gguf::TensorInfo* tb = lora.find_tensor(t.name + ".lora_b");
        std::vector<uint64_t> ne(t.ne, t.ne + t.n_dims);
        if (!ta || !tb) {
            w.add_tensor(t.name, t.type, ne, t.data, t.n_bytes);
            continue;
        }
        std::vector<float> W = dequantize_tensor(t), A = dequantize_tensor(*ta), B = dequantize_tensor(*tb);
        const uint64_t n_in = t.ne[0], n_out = t.ne[1], rank = tb->ne[0];
        const float s = alpha != 0.0f ? scale * alpha / (float)rank : scale;
        const bool embd = t.name == "token_embd.weight";
        for (uint64_t o = 0; o < n_out; o++)
            for (uint64_t i = 0; i < n_in; i++) {
                double d = 0;
                for (uint64_t k = 0; k < rank; k++)
                    d += embd ? (double)B[i * rank + k] * A[o * rank + k] : (double)B[o * rank + k] * A[k * n_in + i];
                W[o * n_in + i] += s * (float)d;
            }
        w.add_tensor(t.name, gguf::TensorType::F32, ne, W.data(), W.size() * 4);
    }
    return w.serialize();
}

}  // namespace mw::test
