#include "model/model_config.h"

#include "base/error.h"
#include "gguf/gguf_file.h"

#include <algorithm>

namespace mw {

int32_t ModelConfig::max_n_head() const {
    int32_t m = 0;
    for (const auto& l : layers) m = std::max(m, l.n_head);
    return m;
}

int32_t ModelConfig::max_kv_dim() const {
    int32_t m = 0;
    for (const auto& l : layers) m = std::max(m, l.n_head_kv * head_dim);
    return m;
}

int32_t ModelConfig::max_n_ff() const {
    int32_t m = 0;
    for (const auto& l : layers) m = std::max(m, l.n_ff);
    return m;
}

int64_t ModelConfig::kv_elements_per_token() const {
    int64_t n = 0;
    for (const auto& l : layers) n += 2 * (int64_t)l.n_head_kv * head_dim;
    return n;
}

namespace {

// A per-layer value: either a scalar key or an array with one entry per layer.
std::vector<int32_t> per_layer(const gguf::File& f, const std::string& key, int32_t n_layer, bool required,
                               int32_t fallback) {
    std::vector<int32_t> out((size_t)n_layer, fallback);
    const gguf::Value* v = f.find(key);
    if (!v) {
        if (required) fail(MW_ERR_FORMAT, "missing metadata key '" + key + "'");
        return out;
    }
    if (v->is_array()) {
        if (v->count != (uint64_t)n_layer)
            fail(MW_ERR_FORMAT, "metadata key '" + key + "': array of " + std::to_string(v->count) +
                                    " values for " + std::to_string(n_layer) + " layers");
        for (int32_t i = 0; i < n_layer; i++) {
            int64_t x = v->int_at((uint64_t)i);
            if (x < 0 || x > (1 << 24)) fail(MW_ERR_FORMAT, "metadata key '" + key + "': bad value " + std::to_string(x));
            out[(size_t)i] = (int32_t)x;
        }
        return out;
    }
    const uint64_t x = f.get_uint(key, 0);
    if (x > (1u << 24)) fail(MW_ERR_FORMAT, "metadata key '" + key + "': bad value " + std::to_string(x));
    std::fill(out.begin(), out.end(), (int32_t)x);
    return out;
}

int32_t positive(const gguf::File& f, const std::string& key, uint64_t limit) {
    const uint64_t x = f.require_uint(key);
    if (x == 0 || x > limit) fail(MW_ERR_FORMAT, "metadata key '" + key + "': bad value " + std::to_string(x));
    return (int32_t)x;
}

}  // namespace

ModelConfig read_model_config(const gguf::File& f) {
    ModelConfig c;
    c.arch_name = std::string(f.require_string("general.architecture"));
    if (c.arch_name == "llama") {
        c.arch = Arch::Llama;
        c.rope_order = RopeOrder::Normal;
    } else if (c.arch_name == "qwen2") {
        c.arch = Arch::Qwen2;
        c.rope_order = RopeOrder::Neox;
    } else {
        fail(MW_ERR_UNSUPPORTED, "architecture '" + c.arch_name + "' is not supported (supported: llama, qwen2)");
    }
    const std::string a = c.arch_name + ".";
    c.name = std::string(f.get_string("general.name", ""));
    c.n_embd = positive(f, a + "embedding_length", 1 << 20);
    c.n_layer = positive(f, a + "block_count", 4096);
    c.n_ctx_train = positive(f, a + "context_length", 1u << 30);

    const auto n_head = per_layer(f, a + "attention.head_count", c.n_layer, true, 0);
    const auto n_head_kv = per_layer(f, a + "attention.head_count_kv", c.n_layer, false, -1);
    const auto n_ff = per_layer(f, a + "feed_forward_length", c.n_layer, true, 0);
    const int32_t n_head_max = *std::max_element(n_head.begin(), n_head.end());
    if (n_head_max <= 0) fail(MW_ERR_FORMAT, "metadata key '" + a + "attention.head_count': no layer has heads");

    // head_dim: explicit key, else n_embd / head count of a layer that has heads.
    const uint64_t key_len = f.get_uint(a + "attention.key_length", 0);
    c.head_dim = key_len ? (int32_t)key_len : c.n_embd / n_head_max;
    if (c.head_dim <= 0 || (!key_len && c.n_embd % n_head_max != 0))
        fail(MW_ERR_FORMAT, "cannot derive head dimension from embedding_length " + std::to_string(c.n_embd) +
                                " and head_count " + std::to_string(n_head_max));
    if (c.head_dim > 512) fail(MW_ERR_UNSUPPORTED, "head dimension " + std::to_string(c.head_dim) + " above 512");
    const uint64_t val_len = f.get_uint(a + "attention.value_length", (uint64_t)c.head_dim);
    if (val_len != (uint64_t)c.head_dim)
        fail(MW_ERR_UNSUPPORTED, "value_length " + std::to_string(val_len) + " differs from key_length");

    c.layers.resize((size_t)c.n_layer);
    for (int32_t i = 0; i < c.n_layer; i++) {
        LayerConfig& l = c.layers[(size_t)i];
        l.n_head = n_head[(size_t)i];
        l.n_head_kv = n_head_kv[(size_t)i] < 0 ? l.n_head : n_head_kv[(size_t)i];
        l.n_ff = n_ff[(size_t)i];
        if (l.n_head_kv <= 0 && l.n_head > 0)
            fail(MW_ERR_FORMAT, "layer " + std::to_string(i) + ": head_count_kv is 0");
        if (l.n_head_kv > 0 && l.n_head % l.n_head_kv != 0)
            fail(MW_ERR_FORMAT, "layer " + std::to_string(i) + ": head_count " + std::to_string(l.n_head) +
                                    " is not a multiple of head_count_kv " + std::to_string(l.n_head_kv));
        if (l.n_head == 0 && l.n_ff == 0)
            fail(MW_ERR_FORMAT, "layer " + std::to_string(i) + " has neither heads nor FFN channels");
    }

    c.rms_eps = (float)f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5);
    if (!(c.rms_eps > 0 && c.rms_eps < 1)) fail(MW_ERR_FORMAT, "bad layer_norm_rms_epsilon");
    c.rope_theta = (float)f.get_float(a + "rope.freq_base", 10000.0);
    if (!(c.rope_theta > 0)) fail(MW_ERR_FORMAT, "bad rope.freq_base");
    c.n_rot = (int32_t)f.get_uint(a + "rope.dimension_count", (uint64_t)c.head_dim);
    if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
        fail(MW_ERR_FORMAT, "rope.dimension_count " + std::to_string(c.n_rot) + " does not fit head dimension " +
                                std::to_string(c.head_dim));
    const std::string scaling = std::string(f.get_string(a + "rope.scaling.type", "none"));
    if (scaling == "linear") {
        const double factor = f.get_float(a + "rope.scaling.factor", 1.0);
        if (!(factor > 0)) fail(MW_ERR_FORMAT, "bad rope.scaling.factor");
        c.rope_freq_scale = (float)(1.0 / factor);
    } else if (scaling != "none" && scaling != "") {
        // llama3-style frequency factors are a tensor (rope_freqs.weight), handled by the weights.
        if (scaling != "llama3") fail(MW_ERR_UNSUPPORTED, "rope scaling '" + scaling + "' is not supported");
    }

    // The vocabulary size is the token list's length (the key is optional).
    const gguf::Value* toks = f.find("tokenizer.ggml.tokens");
    if (!toks || !toks->is_array()) fail(MW_ERR_FORMAT, "missing metadata key 'tokenizer.ggml.tokens'");
    c.n_vocab = (int32_t)toks->count;
    if (c.n_vocab <= 0) fail(MW_ERR_FORMAT, "empty vocabulary");
    return c;
}

}  // namespace mw
