// Builds small synthetic llama-family GGUF models with the project's own
// writer: random weights, any geometry, a SentencePiece-style byte vocabulary.
// Tests use it for shapes and failure cases no real file has.
#pragma once

#include "gguf/gguf_writer.h"
#include "quant/quant.h"

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace mw::test {

struct SyntheticSpec {
    std::string arch = "llama";
    int n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 2, n_ff = 96, n_ctx = 256;
    gguf::TensorType weight_type = gguf::TensorType::F32;
    bool tied_output = false;
    bool rope_freq_factors = false;  // llama3-style rope_freqs.weight
    // Per-layer geometry (pruned models): when set, written as array metadata.
    std::vector<int32_t> layer_heads, layer_heads_kv, layer_ff;
    uint32_t seed = 1;
    // Called with each tensor's name; return false to leave it out.
    std::function<bool(const std::string&)> keep = nullptr;
    // Called with each tensor's name and shape; may change the shape (for bad-shape tests).
    std::function<void(const std::string&, std::vector<uint64_t>&)> reshape = nullptr;
};

inline std::vector<uint8_t> synthetic_model(const SyntheticSpec& s) {
    gguf::Writer w;
    const std::string a = s.arch + ".";
    w.set_string("general.architecture", s.arch);
    w.set_string("general.name", "synthetic");
    w.set_u32(a + "context_length", (uint32_t)s.n_ctx);
    w.set_u32(a + "embedding_length", (uint32_t)s.n_embd);
    w.set_u32(a + "block_count", (uint32_t)s.n_layer);
    if (s.layer_ff.empty()) w.set_u32(a + "feed_forward_length", (uint32_t)s.n_ff);
    else w.set_array_i32(a + "feed_forward_length", s.layer_ff);
    if (s.layer_heads.empty()) w.set_u32(a + "attention.head_count", (uint32_t)s.n_head);
    else w.set_array_i32(a + "attention.head_count", s.layer_heads);
    if (s.layer_heads_kv.empty()) w.set_u32(a + "attention.head_count_kv", (uint32_t)s.n_head_kv);
    else w.set_array_i32(a + "attention.head_count_kv", s.layer_heads_kv);
    if (!s.layer_heads.empty()) w.set_u32(a + "attention.key_length", (uint32_t)(s.n_embd / s.n_head));
    w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
    w.set_f32(a + "rope.freq_base", 10000.0f);
    // Vocabulary: <unk> <s> </s>, then the 256 byte tokens, then a few words.
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};
    char buf[16];
    for (int b = 0; b < 256; b++) {
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        tokens.push_back(buf);
        scores.push_back(0);
        types.push_back(6);
    }
    #define MW_SP "\xe2\x96\x81"  // U+2581, SentencePiece's space
    for (const char* word : {MW_SP "the", MW_SP "a", MW_SP "cat", MW_SP "sat", MW_SP}) {
        tokens.push_back(word);
        scores.push_back(-1.0f * (float)tokens.size());
        types.push_back(1);
    }
#undef MW_SP
    const int n_vocab = (int)tokens.size();
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_array_string("tokenizer.ggml.tokens", tokens);
    w.set_array_f32("tokenizer.ggml.scores", scores);
    w.set_array_i32("tokenizer.ggml.token_type", types);
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);

    std::mt19937 rng(s.seed);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    auto add = [&](const std::string& name, std::vector<uint64_t> ne, bool is_norm) {
        if (s.keep && !s.keep(name)) return;
        if (s.reshape) s.reshape(name, ne);
        uint64_t n = 1;
        for (uint64_t d : ne) n *= d;
        std::vector<float> v(n);
        for (auto& x : v) x = is_norm ? 1.0f + 0.1f * normal(rng) : normal(rng) / std::sqrt((float)ne[0]);
        const gguf::TensorType t = is_norm ? gguf::TensorType::F32 : s.weight_type;
        const gguf::TensorTypeInfo* ti = gguf::tensor_type_info((uint32_t)t);
        if (ne[0] % ti->block_elems != 0) {  // this shape cannot take the type: store F32
            w.add_tensor(name, gguf::TensorType::F32, ne, v.data(), v.size() * 4);
            return;
        }
        std::vector<uint8_t> bytes((size_t)(n / ti->block_elems) * ti->block_bytes);
        quant::quantize_row(t, v.data(), bytes.data(), n);
        w.add_tensor(name, t, ne, bytes.data(), bytes.size());
    };
    const uint64_t E = (uint64_t)s.n_embd, hd = E / (uint64_t)s.n_head;
    add("token_embd.weight", {E, (uint64_t)n_vocab}, false);
    add("output_norm.weight", {E}, true);
    if (s.rope_freq_factors) {  // factors from 1 (high frequencies) to 8 (low), as llama3 scales
        std::vector<float> f(hd / 2);
        for (size_t i = 0; i < f.size(); i++) f[i] = 1.0f + 7.0f * (float)i / (float)(f.size() - 1);
        w.add_tensor("rope_freqs.weight", gguf::TensorType::F32, {hd / 2}, f.data(), f.size() * 4);
    }
    if (!s.tied_output) add("output.weight", {E, (uint64_t)n_vocab}, false);
    for (int l = 0; l < s.n_layer; l++) {
        const std::string p = "blk." + std::to_string(l) + ".";
        const int n_head = s.layer_heads.empty() ? s.n_head : s.layer_heads[(size_t)l];
        const int n_head_kv = s.layer_heads_kv.empty() ? s.n_head_kv : s.layer_heads_kv[(size_t)l];
        const int n_ff = s.layer_ff.empty() ? s.n_ff : s.layer_ff[(size_t)l];
        if (n_head > 0) {
        add(p + "attn_norm.weight", {E}, true);
        add(p + "attn_q.weight", {E, hd * (uint64_t)n_head}, false);
        add(p + "attn_k.weight", {E, hd * (uint64_t)n_head_kv}, false);
        add(p + "attn_v.weight", {E, hd * (uint64_t)n_head_kv}, false);
        add(p + "attn_output.weight", {hd * (uint64_t)n_head, E}, false);
        if (s.arch == "qwen2") {
            add(p + "attn_q.bias", {hd * (uint64_t)n_head}, true);
            add(p + "attn_k.bias", {hd * (uint64_t)n_head_kv}, true);
            add(p + "attn_v.bias", {hd * (uint64_t)n_head_kv}, true);
        }
        }
        if (n_ff > 0) {
        add(p + "ffn_norm.weight", {E}, true);
        add(p + "ffn_gate.weight", {E, (uint64_t)n_ff}, false);
        add(p + "ffn_up.weight", {E, (uint64_t)n_ff}, false);
        add(p + "ffn_down.weight", {(uint64_t)n_ff, E}, false);
        }
    }
    return w.serialize();
}

}  // namespace mw::test
