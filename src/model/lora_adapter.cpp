#include "model/lora_adapter.h"

#include "base/error.h"
#include "base/half.h"
#include "quant/quant.h"

#include <atomic>
#include <cmath>
#include <map>

namespace mw {

float LoraMatrix::dot(int64_t r, const float* x) const {
    float s = 0;
    if (type == gguf::TensorType::F32) {
        const float* row = (const float*)(data + (size_t)r * row_bytes);
        for (int64_t i = 0; i < cols; i++) s += row[i] * x[i];
    } else {
        const uint16_t* row = (const uint16_t*)(data + (size_t)r * row_bytes);
        for (int64_t i = 0; i < cols; i++) s += f16_to_f32(row[i]) * x[i];
    }
    return s;
}

float LoraMatrix::at(int64_t r, int64_t c) const {
    const uint8_t* row = data + (size_t)r * row_bytes;
    return type == gguf::TensorType::F32 ? ((const float*)row)[c] : f16_to_f32(((const uint16_t*)row)[c]);
}

namespace {

std::atomic<uint64_t> g_next_id{1};

bool ends_with(const std::string& s, const char* suffix) {
    const size_t n = std::char_traits<char>::length(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::string shape_str(const gguf::TensorInfo& t) {
    std::string s = "[";
    for (uint32_t i = 0; i < t.n_dims; i++) s += (i ? ", " : "") + std::to_string(t.ne[i]);
    return s + "]";
}

// The base weights an adapter may adapt, by their GGUF names.
std::map<std::string, const Weight*> adaptable_weights(const Model& m) {
    std::map<std::string, const Weight*> out;
    const ModelWeights& w = m.weights();
    out["token_embd.weight"] = &w.token_embd;
    if (!w.tied_output) out["output.weight"] = &w.output;
    for (size_t i = 0; i < w.layers.size(); i++) {
        const LayerWeights& l = w.layers[i];
        const std::string p = "blk." + std::to_string(i) + ".";
        const std::pair<const char*, const Weight*> ws[] = {
            {"attn_q.weight", &l.wq},      {"attn_k.weight", &l.wk},   {"attn_v.weight", &l.wv},
            {"attn_output.weight", &l.wo}, {"ffn_gate.weight", &l.w_gate}, {"ffn_up.weight", &l.w_up},
            {"ffn_down.weight", &l.w_down}};
        for (const auto& [name, weight] : ws)
            if (*weight) out[p + name] = weight;
    }
    return out;
}

}  // namespace

std::shared_ptr<const LoraAdapter> LoraAdapter::load(const std::string& path, std::shared_ptr<const Model> base) {
    if (!base) fail(MW_ERR_INVALID_ARGUMENT, "no base model");
    std::shared_ptr<LoraAdapter> ad(new LoraAdapter());
    ad->base_ = std::move(base);
    ad->file_ = gguf::File::open(path);
    const gguf::File& f = *ad->file_;
    const Model& m = *ad->base_;
    const std::string where = "LoRA adapter '" + path + "': ";

    const std::string_view general_type = f.get_string("general.type", "");
    if (general_type != "adapter")
        fail(MW_ERR_FORMAT, where + (general_type.empty() ? std::string("has no general.type (a model, not an adapter?)")
                                                          : "general.type is '" + std::string(general_type) + "'") +
                                ", expected general.type 'adapter'");
    const std::string_view adapter_type = f.get_string("adapter.type", "");
    if (adapter_type != "lora")
        fail(MW_ERR_FORMAT, where + "adapter.type is '" + std::string(adapter_type) + "', expected 'lora'");
    const std::string_view arch = f.get_string("general.architecture", "");
    if (arch != m.config().arch_name)
        fail(MW_ERR_INVALID_ARGUMENT, where + "made for architecture '" + std::string(arch) + "', the base model is '" +
                                          m.config().arch_name + "'");
    const gguf::Value* alpha = f.find("adapter.lora.alpha");
    if (alpha && (alpha->is_array() || !(alpha->is_float() || alpha->is_integer())))
        fail(MW_ERR_FORMAT, where + "adapter.lora.alpha is not a number");
    ad->alpha_ = alpha ? (float)alpha->f : 0.0f;
    if (!std::isfinite(ad->alpha_)) fail(MW_ERR_FORMAT, where + "adapter.lora.alpha is not finite");

    // Pair <name>.lora_a with <name>.lora_b. Norm vectors are ignored, as llama.cpp does.
    std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> pairs;
    for (const gguf::TensorInfo& t : f.tensors()) {
        if (ends_with(t.name, ".lora_a")) pairs[t.name.substr(0, t.name.size() - 7)].first = &t;
        else if (ends_with(t.name, ".lora_b")) pairs[t.name.substr(0, t.name.size() - 7)].second = &t;
        else if (!ends_with(t.name, "_norm.weight"))
            fail(MW_ERR_FORMAT, where + "tensor '" + t.name + "' is neither a .lora_a nor a .lora_b matrix");
    }
    if (pairs.empty()) fail(MW_ERR_FORMAT, where + "holds no lora_a/lora_b tensors");

    const std::map<std::string, const Weight*> targets = adaptable_weights(m);
    // Binds one matrix: in place when F32/F16, dequantized to F32 otherwise.
    auto bind = [&](const gguf::TensorInfo& t) {
        LoraMatrix mx;
        mx.cols = (int64_t)t.ne[0];
        mx.rows = (int64_t)t.ne[1];
        const gguf::TensorTypeInfo* ti = gguf::tensor_type_info((uint32_t)t.type);
        if (!ti || !ti->supported)
            fail(MW_ERR_UNSUPPORTED, where + "tensor '" + t.name + "' has a type memwise cannot read");
        if (t.type == gguf::TensorType::F32 || t.type == gguf::TensorType::F16) {
            mx.type = t.type;
            mx.data = t.data;
            mx.row_bytes = gguf::row_bytes(*ti, t.ne[0]);
            ad->mapped_bytes_ += t.n_bytes;
            return mx;
        }
        if (t.ne[0] % ti->block_elems != 0)
            fail(MW_ERR_FORMAT, where + "tensor '" + t.name + "' rows are not whole " + ti->name + " blocks");
        std::vector<float>& v = ad->owned_.emplace_back((size_t)t.n_elements);
        const size_t src_row = gguf::row_bytes(*ti, t.ne[0]);
        for (int64_t r = 0; r < mx.rows; r++)
            quant::dequantize_row(t.type, t.data + (size_t)r * src_row, v.data() + (size_t)r * mx.cols, (size_t)mx.cols);
        mx.type = gguf::TensorType::F32;
        mx.data = (const uint8_t*)v.data();
        mx.row_bytes = (size_t)mx.cols * 4;
        ad->owned_bytes_ += v.size() * 4;
        return mx;
    };

    for (const auto& [name, ab] : pairs) {
        if (!ab.first || !ab.second)
            fail(MW_ERR_FORMAT, where + "'" + name + "' has a " + (ab.first ? "lora_a" : "lora_b") + " but no " +
                                    (ab.first ? "lora_b" : "lora_a"));
        const gguf::TensorInfo& a = *ab.first;
        const gguf::TensorInfo& b = *ab.second;
        if (a.n_dims != 2 || b.n_dims != 2)
            fail(MW_ERR_FORMAT, where + "'" + name + "': lora_a and lora_b must be matrices, are " + shape_str(a) +
                                    " and " + shape_str(b));
        auto it = targets.find(name);
        if (it == targets.end()) {
            if (name == "token_embd.weight" || (name == "output.weight" && m.weights().tied_output))
                fail(MW_ERR_UNSUPPORTED, where + "adapts '" + name + "', but the base model ties its output head to "
                                                 "the token embedding; memwise does not adapt a tied embedding");
            fail(MW_ERR_INVALID_ARGUMENT, where + "adapts '" + name + "', which the base model '" + m.config().name +
                                              "' does not have (an adapter for another base model?)");
        }
        const Weight& w = *it->second;
        const bool embd = name == "token_embd.weight";
        if (embd && m.weights().tied_output)
            fail(MW_ERR_UNSUPPORTED, where + "adapts token_embd.weight, but the base model ties its output head to "
                                             "the token embedding; memwise does not adapt a tied embedding");
        // GGUF ne: W [n_in, n_out], A [n_in, rank], B [rank, n_out]; token_embd: A [rank, n_vocab], B [rank, n_embd].
        const uint64_t rank = b.ne[0];
        const bool fits = embd ? (a.ne[0] == rank && a.ne[1] == (uint64_t)w.n_out && b.ne[1] == (uint64_t)w.n_in)
                               : (a.ne[0] == (uint64_t)w.n_in && b.ne[1] == (uint64_t)w.n_out);
        if (!fits)
            fail(MW_ERR_INVALID_ARGUMENT, where + "'" + name + "' lora_a " + shape_str(a) + " and lora_b " +
                                              shape_str(b) + " do not fit the base tensor [" + std::to_string(w.n_in) +
                                              ", " + std::to_string(w.n_out) + "] (an adapter for another base model?)");
        if (!embd && a.ne[1] != rank)
            fail(MW_ERR_FORMAT, where + "'" + name + "': lora_a " + shape_str(a) + " and lora_b " + shape_str(b) +
                                    " disagree on the rank (lora_a must be stored transposed, as llama.cpp writes it)");
        if (rank == 0 || rank > 65536) fail(MW_ERR_FORMAT, where + "'" + name + "' has rank " + std::to_string(rank));
        LoraWeight lw;
        lw.a = bind(a);
        lw.b = bind(b);
        lw.rank = (int32_t)rank;
        lw.alpha_scale = ad->alpha_ != 0.0f ? ad->alpha_ / (float)rank : 1.0f;
        ad->max_rank_ = std::max(ad->max_rank_, lw.rank);
        ad->weights_.emplace(&w, lw);
    }
    ad->id_ = g_next_id.fetch_add(1);
    return ad;
}

}  // namespace mw
