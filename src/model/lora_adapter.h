// LoraAdapter: a GGUF LoRA adapter as llama.cpp writes it (general.type
// "adapter", adapter.type "lora", adapter.lora.alpha), bound to one base Model.
// For a base weight W [n_out, n_in] the file holds <name>.lora_a [rank, n_in]
// and <name>.lora_b [n_out, rank] (rows x columns; GGUF ne is the reverse), and
// the adapted product is
//
//   y = W x + s * B (A x),   s = user_scale * alpha / rank   (alpha 0: s = user_scale)
//
// token_embd is the exception llama.cpp makes: lora_a is stored transposed
// [n_vocab, rank], so the row of a token is A[token] and e += s * B A[token].
// F32 and F16 matrices are used in place from the file mapping; any other
// type is dequantized to F32 once at load. Immutable after load and shared by
// every request and engine that uses it; the base weights are never copied.
#pragma once

#include "gguf/gguf_file.h"
#include "model/model.h"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace mw {

// A row-major F32 or F16 matrix, in the mapping or in owned memory.
struct LoraMatrix {
    gguf::TensorType type = gguf::TensorType::F32;  // F32 or F16 only
    const uint8_t* data = nullptr;
    int64_t rows = 0, cols = 0;
    size_t row_bytes = 0;
    // dot(row r, x[0..cols)) in F32 (the order is fixed, so results do not
    // depend on the batch).
    float dot(int64_t r, const float* x) const;
    float at(int64_t r, int64_t c) const;
};

struct LoraWeight {
    LoraMatrix a;       // [rank, n_in]; token_embd: [n_vocab, rank]
    LoraMatrix b;       // [n_out, rank]
    int32_t rank = 0;
    float alpha_scale;  // alpha / rank, or 1 when the file's alpha is 0
};

class LoraAdapter {
public:
    // Reads and validates the adapter against base: MW_ERR_FORMAT for a file
    // that is not a well-formed LoRA adapter, MW_ERR_INVALID_ARGUMENT for one
    // made for another base model (architecture, tensor names or shapes),
    // MW_ERR_UNSUPPORTED for a token_embd adapter on a model whose output head
    // is tied to the embedding. MW_ERR_IO when the file cannot be read.
    static std::shared_ptr<const LoraAdapter> load(const std::string& path, std::shared_ptr<const Model> base);

    // The delta for a base weight (by identity: &base.weights().layers[i].wq ...), or nullptr.
    const LoraWeight* find(const Weight& w) const {
        auto it = weights_.find(&w);
        return it == weights_.end() ? nullptr : &it->second;
    }
    const Model& base() const { return *base_; }
    // Unique in the process, never reused: part of a request's prefix identity.
    uint64_t id() const { return id_; }
    float alpha() const { return alpha_; }
    size_t n_weights() const { return weights_.size(); }
    int32_t max_rank() const { return max_rank_; }
    // Tensor bytes used in place from the file mapping (file-backed, shared).
    uint64_t mapped_bytes() const { return mapped_bytes_; }
    // Bytes of matrices dequantized to F32 at load (anonymous memory).
    uint64_t owned_bytes() const { return owned_bytes_; }

private:
    LoraAdapter() = default;
    std::shared_ptr<const Model> base_;
    std::unique_ptr<gguf::File> file_;
    std::unordered_map<const Weight*, LoraWeight> weights_;
    std::vector<std::vector<float>> owned_;  // dequantized matrices
    uint64_t id_ = 0;
    float alpha_ = 0;
    int32_t max_rank_ = 0;
    uint64_t mapped_bytes_ = 0, owned_bytes_ = 0;
};

// What a sequence runs with: an adapter and the caller's scale.
struct LoraBinding {
    const LoraAdapter* adapter = nullptr;
    float scale = 1.0f;
};

}  // namespace mw
