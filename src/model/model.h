// Model: a loaded llama-family model. Immutable after load and shared (by
// std::shared_ptr) between engines and threads. Weights are views into the
// GGUF mapping; nothing is copied.
#pragma once

#include "gguf/gguf_file.h"
#include "model/chat_template.h"
#include "model/model_config.h"
#include "model/tokenizer.h"

#include <memory>
#include <string>
#include <vector>

namespace mw {

// A weight matrix used in place: n_out rows of n_in elements (ne0 = n_in).
struct Weight {
    const gguf::TensorInfo* info = nullptr;
    gguf::TensorType type = gguf::TensorType::F32;
    const uint8_t* data = nullptr;
    int64_t n_in = 0;
    int64_t n_out = 0;
    size_t row_bytes = 0;
    explicit operator bool() const { return data != nullptr; }
};

struct LayerWeights {
    Weight attn_norm;                   // [n_embd] F32
    Weight wq, wk, wv, wo;              // [n_head*hd, n_embd], [n_kv*hd, n_embd] x2, [n_embd, n_head*hd]
    Weight bq, bk, bv;                  // qwen2: biases, F32 (absent for llama)
    Weight ffn_norm;                    // [n_embd] F32
    Weight w_gate, w_up, w_down;        // [n_ff, n_embd] x2, [n_embd, n_ff]
};

struct ModelWeights {
    Weight token_embd;                  // [n_vocab, n_embd]
    Weight output_norm;                 // [n_embd] F32
    Weight output;                      // [n_vocab, n_embd]; = token_embd when tied
    bool tied_output = false;
    std::vector<float> rope_freq_factors;  // llama3 rope_freqs.weight (n_rot/2), empty if absent
    std::vector<LayerWeights> layers;
};

struct ModelLoadOptions {
    bool prefault = false;
    bool lock = false;                                        // mlock the mapping
    gguf::AccessHint access = gguf::AccessHint::Default;      // madvise hint
    std::string cache_dir;  // where a .gguf.zst model is decompressed; empty = the default cache
};

class Model {
public:
    // Throws mw::Error (MW_ERR_IO, MW_ERR_FORMAT, MW_ERR_UNSUPPORTED).
    static std::shared_ptr<const Model> load(const std::string& path, const ModelLoadOptions& opts = {});

    const gguf::File& file() const { return *file_; }
    const ModelConfig& config() const { return config_; }
    const ModelWeights& weights() const { return weights_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    ChatTemplateKind chat_template() const { return chat_template_; }
    const std::string& chat_default_system() const { return chat_default_system_; }
    uint64_t n_params() const { return n_params_; }
    uint64_t weight_bytes() const { return weight_bytes_; }
    // The weight type covering the most bytes ("Q4_1").
    const char* dominant_type_name() const { return dominant_type_; }

private:
    Model() = default;
    std::unique_ptr<gguf::File> file_;
    ModelConfig config_;
    ModelWeights weights_;
    std::unique_ptr<Tokenizer> tokenizer_;
    ChatTemplateKind chat_template_ = ChatTemplateKind::Unknown;
    std::string chat_default_system_;
    uint64_t n_params_ = 0;
    uint64_t weight_bytes_ = 0;
    const char* dominant_type_ = "";
};

}  // namespace mw
