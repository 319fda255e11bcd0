#include "model/model.h"
#include "gguf/compressed_model.h"

#include "base/error.h"

#include <cstring>
#include <map>

namespace mw {

namespace {

std::string shape_str(const gguf::TensorInfo& t) {
    std::string s = "[";
    for (uint32_t i = 0; i < t.n_dims; i++) s += (i ? ", " : "") + std::to_string(t.ne[i]);
    return s + "]";
}

// Binds a tensor and checks its shape (ne0 = n_in, ne1 = n_out; n_out 0 = a vector).
Weight bind_weight(const gguf::File& f, const std::string& name, int64_t n_in, int64_t n_out, bool required,
            bool f32_only = false) {
    Weight w;
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (!t) {
        if (required) fail(MW_ERR_FORMAT, "missing required tensor '" + name + "'");
        return w;
    }
    const bool is_vector = n_out == 0;
    const bool ok = is_vector ? (t->n_elements == (uint64_t)n_in && t->ne[0] == (uint64_t)n_in)
                              : (t->ne[0] == (uint64_t)n_in && t->ne[1] == (uint64_t)n_out && t->ne[2] == 1 &&
                                 t->ne[3] == 1);
    if (!ok)
        fail(MW_ERR_FORMAT, "tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" +
                                std::to_string(n_in) + (is_vector ? "" : ", " + std::to_string(n_out)) + "]");
    const gguf::TensorTypeInfo* ti = gguf::tensor_type_info((uint32_t)t->type);
    if (!ti || !ti->supported)
        fail(MW_ERR_UNSUPPORTED, "tensor '" + name + "' has type " + (ti ? ti->name : std::to_string((uint32_t)t->type)) +
                                     ", which memwise cannot compute with");
    if (f32_only && t->type != gguf::TensorType::F32)
        fail(MW_ERR_UNSUPPORTED, "tensor '" + name + "' must be F32, is " + ti->name);
    w.info = t;
    w.type = t->type;
    w.data = t->data;
    w.n_in = n_in;
    w.n_out = is_vector ? 1 : n_out;
    w.row_bytes = gguf::row_bytes(*ti, (uint64_t)n_in);
    return w;
}

std::string blk(int32_t i, const char* what) { return "blk." + std::to_string(i) + "." + what; }

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path, const ModelLoadOptions& opts) {
    std::shared_ptr<Model> m(new Model());
    gguf::OpenOptions fo;
    fo.prefault = opts.prefault;
    fo.lock = opts.lock;
    fo.access = opts.access;
    m->file_ = gguf::File::open(gguf::resolve_compressed_model(path, opts.cache_dir), fo);
    const gguf::File& f = *m->file_;
    m->config_ = read_model_config(f);
    const ModelConfig& c = m->config_;
    ModelWeights& w = m->weights_;

    w.token_embd = bind_weight(f, "token_embd.weight", c.n_embd, c.n_vocab, true);
    w.output_norm = bind_weight(f, "output_norm.weight", c.n_embd, 0, true, true);
    w.output = bind_weight(f, "output.weight", c.n_embd, c.n_vocab, false);
    if (!w.output) {
        w.output = w.token_embd;
        w.tied_output = true;
    }
    if (const gguf::TensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
        Weight r = bind_weight(f, "rope_freqs.weight", c.n_rot / 2, 0, true, true);
        w.rope_freq_factors.resize((size_t)(c.n_rot / 2));
        std::memcpy(w.rope_freq_factors.data(), r.data, w.rope_freq_factors.size() * sizeof(float));
        (void)rf;
    }
    const bool has_bias = c.arch == Arch::Qwen2;
    w.layers.resize((size_t)c.n_layer);
    for (int32_t i = 0; i < c.n_layer; i++) {
        const LayerConfig& lc = c.layers[(size_t)i];
        LayerWeights& l = w.layers[(size_t)i];
        const int64_t q_dim = (int64_t)lc.n_head * c.head_dim;
        const int64_t kv_dim = (int64_t)lc.n_head_kv * c.head_dim;
        if (lc.n_head > 0) {
            l.attn_norm = bind_weight(f, blk(i, "attn_norm.weight"), c.n_embd, 0, true, true);
            l.wq = bind_weight(f, blk(i, "attn_q.weight"), c.n_embd, q_dim, true);
            l.wk = bind_weight(f, blk(i, "attn_k.weight"), c.n_embd, kv_dim, true);
            l.wv = bind_weight(f, blk(i, "attn_v.weight"), c.n_embd, kv_dim, true);
            l.wo = bind_weight(f, blk(i, "attn_output.weight"), q_dim, c.n_embd, true);
            l.bq = bind_weight(f, blk(i, "attn_q.bias"), q_dim, 0, has_bias, true);
            l.bk = bind_weight(f, blk(i, "attn_k.bias"), kv_dim, 0, has_bias, true);
            l.bv = bind_weight(f, blk(i, "attn_v.bias"), kv_dim, 0, has_bias, true);
        }
        if (lc.n_ff > 0) {
            l.ffn_norm = bind_weight(f, blk(i, "ffn_norm.weight"), c.n_embd, 0, true, true);
            l.w_gate = bind_weight(f, blk(i, "ffn_gate.weight"), c.n_embd, lc.n_ff, true);
            l.w_up = bind_weight(f, blk(i, "ffn_up.weight"), c.n_embd, lc.n_ff, true);
            l.w_down = bind_weight(f, blk(i, "ffn_down.weight"), lc.n_ff, c.n_embd, true);
        }
    }

    std::map<std::string, uint64_t> bytes_by_type;
    for (const auto& t : f.tensors()) {
        m->n_params_ += t.n_elements;
        m->weight_bytes_ += t.n_bytes;
        const gguf::TensorTypeInfo* ti = gguf::tensor_type_info((uint32_t)t.type);
        if (ti && t.n_dims >= 2) bytes_by_type[ti->name] += t.n_bytes;
    }
    uint64_t best = 0;
    for (const auto& [name, bytes] : bytes_by_type) {
        if (bytes > best) {
            best = bytes;
            m->dominant_type_ = gguf::tensor_type_info((uint32_t)f.find_tensor("token_embd.weight")->type)->name;
            for (uint32_t id = 0; id < 32; id++) {
                const gguf::TensorTypeInfo* ti = gguf::tensor_type_info(id);
                if (ti && name == ti->name) m->dominant_type_ = ti->name;
            }
        }
    }

    m->tokenizer_ = Tokenizer::from_gguf(f);
    if (m->tokenizer_->n_vocab() != c.n_vocab) fail(MW_ERR_FORMAT, "tokenizer and model disagree on vocabulary size");
    const std::string_view tmpl = f.get_string("tokenizer.chat_template", "");
    m->chat_template_ = detect_chat_template(tmpl);
    m->chat_default_system_ = chat_template_default_system(tmpl);
    return m;
}

}  // namespace mw
