// F32Forward: a plain, readable forward pass of a llama-family model over
// weights dequantized to F32 (in the style of llama2.c, batched over the tokens
// of one window), with hooks that see the input of every linear layer. It is
// what calibration (activation statistics), pruning importance and the
// mixed-precision sensitivity measurements run on; it is checked against the
// engine's logits in tests. Not an inference path: the engine is the executor.
#pragma once

#include "model/model.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mw::compress {

// Runs body(begin, end) over [0, n) split among n_threads threads.
void parallel_for(int64_t n, int n_threads, const std::function<void(int64_t, int64_t)>& body);

// y[t * y_stride + r] = x row t . w row r for t < T, r < n_out; rows of x and w
// hold n_in floats and start x_stride / w_stride floats apart (a column slice
// of a wider matrix is a smaller stride-compatible view). The engine's F32 GEMM
// kernel on n_threads threads.
void gemm_f32(const float* x, int64_t T, int64_t x_stride, const float* w, int64_t w_stride, int64_t n_in,
              int64_t n_out, float* y, int64_t y_stride, int n_threads);

// Where a hook sees activations: the input of a group of linear layers.
enum class Site {
    AttnIn,     // normed input of attn_q/k/v   (T x n_embd)
    AttnOut,    // attention output, input of attn_output (T x n_head*head_dim)
    FfnIn,      // normed input of ffn_gate/up  (T x n_embd)
    FfnHidden,  // silu(gate) * up, input of ffn_down (T x n_ff)
    OutputIn,   // normed final state, input of output (T x n_embd); layer = -1
};

class F32Forward {
public:
    // Dequantizes every weight (throws what dequantize_row throws).
    F32Forward(const Model& model, int n_threads);

    const ModelConfig& config() const { return c_; }
    int n_threads() const { return n_threads_; }
    // The F32 copy of a tensor by GGUF name (rows x n_in, row-major), or
    // nullptr when the forward does not use it. Writable: a caller may swap in
    // a modified copy (sensitivity measurements) and must restore it.
    std::vector<float>* tensor(const std::string& name);
    // Names of the 2-D weights the forward uses, file order of the model.
    const std::vector<std::string>& matrix_names() const { return matrices_; }

    using Hook = std::function<void(Site site, int layer, const float* x, int64_t n_tokens, int64_t width)>;

    // The residual stream (n_tokens x n_embd) at the input of layer 0 .. n_layer-1
    // and after the last layer: n_layer + 1 entries.
    using LayerInputs = std::vector<std::vector<float>>;

    // One window of tokens from an empty cache. Calls hook (if set) at every
    // Site; writes n_tokens x n_vocab logits when logits is not null, and the
    // residual stream at every layer input when layer_inputs is not null.
    void forward(const int32_t* tokens, int64_t n_tokens, const Hook& hook, std::vector<float>* logits,
                 LayerInputs* layer_inputs = nullptr);

    // The same window resumed at layer `layer` (0 .. n_layer) from its residual
    // stream there (entry `layer` of a forward's layer_inputs): bit-identical to
    // a whole forward when nothing before that layer has changed since. Lets a
    // change to one layer's weights be measured without recomputing the layers
    // before it.
    void forward_from(int layer, const std::vector<float>& layer_input, int64_t n_tokens, std::vector<float>* logits);

    // y (T x n_out) = x (T x n_in) . W^T, W given as n_out rows of n_in.
    void matmul(const float* x, int64_t T, const std::vector<float>& w, int64_t n_in, int64_t n_out, float* y) const;

private:
    struct Layer {
        std::vector<float> attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, gate, up, down;
    };
    std::vector<float> load(const Weight& w, const std::string& name);
    void rmsnorm(const float* x, const std::vector<float>& g, int64_t T, float* out) const;
    void rope(float* v, int64_t T, int n_heads) const;
    void layer(int li, std::vector<float>& x, int64_t T, const Hook& hook);  // x += layer li's attention and FFN
    void head(const std::vector<float>& x, int64_t T, const Hook& hook, std::vector<float>* logits);

    const Model& m_;
    ModelConfig c_;
    int n_threads_;
    std::vector<float> token_embd_, output_norm_, output_;  // output_ empty when tied
    std::vector<Layer> layers_;
    std::vector<std::string> matrices_;
    std::vector<std::pair<std::string, std::vector<float>*>> by_name_;
    std::vector<float> rope_cos_, rope_sin_;  // computed per position on demand
};

}  // namespace mw::compress
