// ModelConfig: the geometry and hyper-parameters of a llama-family model, read
// from GGUF metadata ("<arch>.*" keys). Per-layer head counts and FFN widths
// come from array-valued keys when present (pruned models).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mw::gguf { class File; }

namespace mw {

enum class Arch { Llama, Qwen2 };

enum class RopeOrder {
    Normal,  // rotate adjacent pairs (x[2i], x[2i+1]): llama as converted to GGUF
    Neox,    // rotate halves (x[i], x[i + n_rot/2]): qwen2
};

struct LayerConfig {
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t n_ff = 0;
};

struct ModelConfig {
    Arch arch = Arch::Llama;
    std::string arch_name;   // "llama", "qwen2"
    std::string name;        // general.name
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t head_dim = 0;    // same for every layer
    std::vector<LayerConfig> layers;
    float rms_eps = 1e-5f;
    float rope_theta = 10000.0f;
    float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
    int32_t n_rot = 0;             // rotated dimensions per head (<= head_dim)
    RopeOrder rope_order = RopeOrder::Normal;

    int32_t max_n_head() const;
    int32_t max_kv_dim() const;  // max over layers of n_head_kv * head_dim
    int32_t max_n_ff() const;
    // K+V elements one token occupies in the cache, summed over layers.
    int64_t kv_elements_per_token() const;
};

// Reads and checks the config. Throws mw::Error: MW_ERR_UNSUPPORTED for another
// architecture, MW_ERR_FORMAT for missing or inconsistent values.
ModelConfig read_model_config(const gguf::File& file);

}  // namespace mw
