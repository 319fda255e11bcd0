#include "tools/quantize/quantize.h"

#include "base/error.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "quant/quant.h"
#include "quant/quant_weighted.h"
#include "tools/calibrate/calibration.h"
#include "tools/calibrate/f32_forward.h"
#include "tools/quantize/mixed_plan.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <thread>

namespace mw::compress {

using gguf::TensorType;

namespace {

const TensorType kProducible[] = {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                                  TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_0,
                                  TensorType::F16,  TensorType::BF16, TensorType::F32};
// Candidate types of mixed precision, cheapest first.
const TensorType kMixedCandidates[] = {TensorType::Q4_0, TensorType::Q4_K, TensorType::Q4_1, TensorType::Q5_0,
                                       TensorType::Q5_K, TensorType::Q5_1, TensorType::Q6_K, TensorType::Q8_0,
                                       TensorType::F16};

const gguf::TensorTypeInfo& info(TensorType t) { return *gguf::tensor_type_info((uint32_t)t); }
bool fits(TensorType t, uint64_t n_in) { return n_in % info(t).block_elems == 0; }
bool is_quantized(TensorType t) { return t != TensorType::F32 && t != TensorType::F16 && t != TensorType::BF16; }
std::string kib(uint64_t b) {
    char s[32];
    snprintf(s, sizeof s, "%.1f KiB", (double)b / 1024.0);
    return s;
}

// The tensor as F32 rows (throws MW_ERR_UNSUPPORTED for a type memwise cannot read).
std::vector<float> to_f32(const gguf::TensorInfo& t) {
    const gguf::TensorTypeInfo* ti = gguf::tensor_type_info((uint32_t)t.type);
    if (!ti || (t.type != TensorType::F32 && t.type != TensorType::F16 && t.type != TensorType::BF16 && !ti->supported))
        fail(MW_ERR_UNSUPPORTED, "tensor '" + t.name + "' has type " + (ti ? ti->name : std::to_string((uint32_t)t.type)) +
                                     ", which quantize cannot read");
    const uint64_t n_in = t.ne[0], rows = t.n_elements / n_in;
    std::vector<float> out(t.n_elements);
    const size_t rb = gguf::row_bytes(*ti, n_in);
    for (uint64_t r = 0; r < rows; r++) quant::dequantize_row(t.type, t.data + r * rb, out.data() + r * n_in, n_in);
    return out;
}

// Quantizes rows x n_in floats to `type`, weighted by imp (n_in values) when
// weighted, else plain round-to-nearest.
std::vector<uint8_t> encode(const std::vector<float>& x, uint64_t n_in, TensorType type, bool weighted,
                            const float* imp, int n_threads) {
    const uint64_t rows = x.size() / n_in;
    const size_t rb = gguf::row_bytes(info(type), n_in);
    std::vector<uint8_t> out(rows * rb);
    parallel_for((int64_t)rows, n_threads, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; r++) {
            if (weighted) quant::quantize_row_weighted(type, x.data() + r * n_in, out.data() + r * rb, n_in, imp);
            else quant::quantize_row(type, x.data() + r * n_in, out.data() + r * rb, n_in);
        }
    });
    return out;
}

// The keys this tool sets on its output (also used to size the header).
void set_output_keys(gguf::Writer& w, TensorType dominant, bool weighted, int64_t calib_tokens) {
    w.set_u32("general.file_type", file_type_of(dominant));
    w.set_u32("general.quantization_version", 2);
    w.set_bool("memwise.quantize.importance_weighted", weighted);
    if (weighted) w.set_u32("memwise.quantize.calibration_tokens", (uint32_t)std::min<int64_t>(calib_tokens, UINT32_MAX));
}

bool is_matrix(const gguf::TensorInfo& t) { return t.n_dims >= 2 && t.ne[0] > 0 && t.n_elements / t.ne[0] > 1; }

}  // namespace

TensorType parse_quant_type(const std::string& name) {
    std::string up = name;
    for (char& ch : up) ch = (char)std::toupper((unsigned char)ch);
    std::string known;
    for (TensorType t : kProducible) {
        if (up == info(t).name) return t;
        known += std::string(known.empty() ? "" : ", ") + info(t).name;
    }
    fail(MW_ERR_INVALID_ARGUMENT, "unknown quantization type '" + name + "' (known: " + known + ")");
}

TensorType fallback_type(TensorType want, uint64_t n_in) {
    if (fits(want, n_in)) return want;
    std::vector<TensorType> chain;
    switch (want) {
    case TensorType::Q4_K: chain = {TensorType::Q4_1, TensorType::F16}; break;
    case TensorType::Q5_K: chain = {TensorType::Q5_1, TensorType::F16}; break;
    case TensorType::Q6_K: chain = {TensorType::Q8_0, TensorType::F16}; break;
    default: chain = {TensorType::F16}; break;
    }
    for (TensorType t : chain)
        if (fits(t, n_in)) return t;
    return TensorType::F32;
}

uint32_t file_type_of(TensorType t) {
    switch (t) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 1;
    case TensorType::Q4_0: return 2;
    case TensorType::Q4_1: return 3;
    case TensorType::Q5_0: return 8;
    case TensorType::Q5_1: return 9;
    case TensorType::Q8_0: return 7;
    case TensorType::Q4_K: return 14;  // Q4_K_S: all Q4_K
    case TensorType::Q5_K: return 16;  // Q5_K_S
    case TensorType::Q6_K: return 18;
    case TensorType::BF16: return 32;
    default: return 0;
    }
}

QuantizeReport quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeOptions& opts) {
    auto log = [&](const std::string& s) { if (opts.log) opts.log(s); };
    const bool mixed = opts.target_size > 0 || opts.target_bpw > 0;
    if (opts.target_size > 0 && opts.target_bpw > 0)
        fail(MW_ERR_INVALID_ARGUMENT, "give a target size or a target bits per weight, not both");
    if (opts.target_bpw < 0 || opts.target_bpw > 32)
        fail(MW_ERR_INVALID_ARGUMENT, "target bits per weight " + std::to_string(opts.target_bpw) + " is outside (0, 32]");
    if (!mixed && !opts.has_type) fail(MW_ERR_INVALID_ARGUMENT, "no target type (and no target size or bits per weight)");
    if (mixed && opts.calib_path.empty())
        fail(MW_ERR_INVALID_ARGUMENT, "mixed precision measures each tensor's sensitivity on calibration text: give a calibration file");
    if (opts.has_type && std::find(std::begin(kProducible), std::end(kProducible), opts.type) == std::end(kProducible))
        fail(MW_ERR_INVALID_ARGUMENT, std::string("quantize cannot produce type ") +
                                          (gguf::tensor_type_info((uint32_t)opts.type) ? info(opts.type).name : "?"));
    if (in_path == out_path) fail(MW_ERR_INVALID_ARGUMENT, "the output must not be the input file");
    const int n_threads = opts.n_threads > 0 ? opts.n_threads : (int)std::max(1u, std::thread::hardware_concurrency());

    // Read the calibration text before the (slower) model load, so a bad file fails fast.
    std::string calib_text;
    if (!opts.calib_path.empty()) calib_text = read_calibration_text(opts.calib_path);

    std::shared_ptr<const Model> model = Model::load(in_path);
    const gguf::File& f = model->file();
    QuantizeReport rep;
    rep.in_bytes = f.file_size();
    rep.mixed = mixed;
    for (const auto& t : f.tensors())
        if (is_matrix(t) && is_quantized(t.type)) rep.requantized = true;
    if (rep.requantized)
        log("warning: the input is already quantized: its weights are dequantized and quantized again, so the "
            "errors of both quantizations add up");

    std::unique_ptr<F32Forward> fwd;
    CalibStats stats;
    if (!calib_text.empty()) {
        fwd = std::make_unique<F32Forward>(*model, n_threads);
        const auto windows = calibration_windows(*model, calib_text, opts.n_ctx, opts.calib_tokens);
        stats = calibrate(*fwd, windows, [&](int64_t done, int64_t total) {
            if (done == total) log("calibration: " + std::to_string(total) + " tokens");
        });
        rep.calib_tokens = stats.n_tokens;
    }
    const bool weighted = !calib_text.empty();
    auto imp_of = [&](const std::string& name) -> const float* {
        auto it = stats.importance.find(name);
        return it == stats.importance.end() ? nullptr : it->second.data();
    };

    // Type per tensor.
    std::map<std::string, TensorType> chosen;
    std::map<std::string, double> sens;
    std::set<std::string> rtn;  // mixed precision: tensors whose round-to-nearest encoding measured better
    if (!mixed) {
        for (const auto& t : f.tensors()) {
            if (!is_matrix(t)) continue;
            const TensorType ty = fallback_type(opts.type, t.ne[0]);
            chosen[t.name] = ty;
        }
    } else {
        std::vector<PlanTensor> plan;
        // Bytes in the file: each tensor padded to the alignment, plus the
        // header, measured exactly (an estimate too high by even a few bytes
        // shuts out the single-type plan of exactly the budget's size): the
        // output's metadata and tensor infos, with 1-element stand-ins whose
        // padded data (one alignment each) is subtracted.
        const uint64_t al = f.alignment();
        auto padded = [al](uint64_t b) { return (b + al - 1) / al * al; };
        uint64_t fixed = 0;
        {
            gguf::Writer hw(al);
            hw.copy_metadata(f);
            set_output_keys(hw, TensorType::F32, true, 0);
            const float one = 0;
            for (const auto& t : f.tensors())
                hw.add_tensor(t.name, TensorType::F32, std::vector<uint64_t>(t.n_dims, 1), &one, sizeof one);
            fixed = hw.serialize().size() - f.tensors().size() * padded(sizeof one);
        }
        uint64_t n_elems = 0;
        for (const auto& t : f.tensors()) {
            if (!is_matrix(t) || !fwd->tensor(t.name)) {
                fixed += padded(t.n_bytes);
                continue;
            }
            PlanTensor p{t.name, {}};
            for (TensorType ty : kMixedCandidates)
                if (fits(ty, t.ne[0])) {
                    const uint64_t b = padded((t.n_elements / t.ne[0]) * gguf::row_bytes(info(ty), t.ne[0]));
                    p.cands.push_back({ty, b, 0, true});
                    // Optionally the round-to-nearest encoder too (same
                    // bytes): the importance weights are a proxy, and for
                    // some tensors plain rounding measures better (on
                    // stories260K not reliably on held-out text: see
                    // docs/COMPRESSION.md).
                    if (opts.rtn_variants && is_quantized(ty)) p.cands.push_back({ty, b, 0, false});
                }
            n_elems += t.n_elements;
            plan.push_back(std::move(p));
        }
        uint64_t budget;
        if (opts.target_size > 0) {
            if (opts.target_size <= fixed)
                fail(MW_ERR_INVALID_ARGUMENT, "target size " + std::to_string(opts.target_size) + " bytes leaves nothing for the weights (" +
                                                  std::to_string(fixed) + " bytes are metadata and unquantized tensors)");
            budget = opts.target_size - fixed;
        } else {
            budget = (uint64_t)(opts.target_bpw * (double)n_elems / 8.0);
        }
        check_budget(plan, budget);  // before the (slow) measurements
        const auto sens_windows = calibration_windows(*model, calib_text, opts.n_ctx, opts.sens_tokens);
        log("mixed precision: measuring the sensitivity of " + std::to_string(plan.size()) + " tensors");
        // quantize-then-dequantize of one tensor's F32 copy, as the output will encode it.
        auto qdq = [&](const std::string& name, const Candidate& c, std::vector<float>& data) {
            const uint64_t n_in = f.find_tensor(name)->ne[0];
            const std::vector<uint8_t> q = encode(data, n_in, c.type, c.weighted, imp_of(name), n_threads);
            const size_t rb = gguf::row_bytes(info(c.type), n_in);
            for (uint64_t r = 0; r < data.size() / n_in; r++)
                quant::dequantize_row(c.type, q.data() + r * rb, data.data() + r * n_in, n_in);
        };
        // One line per tensor as it is measured: on a real model this is the
        // slow part (minutes), so the lines are the progress report.
        auto tensor_done = [&](const PlanTensor& p, size_t i) {
            std::string line = "sensitivity [" + std::to_string(i + 1) + "/" + std::to_string(plan.size()) + "] " + p.name + ":";
            for (const auto& c : p.cands) {
                char v[64];
                snprintf(v, sizeof v, " %s%s %.3g", info(c.type).name, c.weighted ? "" : "-RTN", c.loss);
                line += v;
            }
            log(line);
            if (opts.progress) opts.progress(i + 1, plan.size());
        };
        measure_sensitivity(*fwd, sens_windows, plan, qdq, tensor_done);
        keep_best_variants(plan);
        const std::vector<Plan> plans = candidate_plans(plan, budget);
        // Plans are measured on the calibration tokens that FOLLOW the
        // sensitivity tokens (twice as many): the candidates were built from
        // losses on the sensitivity windows, so measuring them there again
        // favours plans that fit those windows' noise.
        // The windows after the last (possibly cut short) sensitivity window,
        // up to twice the sensitivity tokens.
        std::vector<std::vector<int32_t>> val_windows;
        {
            const auto all = calibration_windows(*model, calib_text, opts.n_ctx, 0);
            const int64_t want = 2 * (int64_t)opts.sens_tokens;
            int64_t got = 0;
            for (size_t i = sens_windows.size(); i < all.size() && got < want; i++) {
                std::vector<int32_t> w = all[i];
                if (got + (int64_t)w.size() > want) w.resize((size_t)(want - got));
                if (w.size() < 2) break;
                got += (int64_t)w.size();
                val_windows.push_back(std::move(w));
            }
        }
        if (val_windows.empty()) {
            log("mixed precision: the calibration text has no tokens after the sensitivity tokens: the plans are measured on those");
            val_windows = sens_windows;
        }
        int64_t n_val = 0;
        for (const auto& w : val_windows) n_val += (int64_t)w.size();
        // The true KL of a whole plan: every planned tensor quantized at once
        // in the F32 model (only the tensors that differ from the last plan
        // measured are encoded again; the F32 original is the input's tensor).
        const std::vector<std::vector<float>> ref = window_logits(*fwd, val_windows);
        std::vector<size_t> applied(plan.size(), SIZE_MAX);
        auto apply = [&](const std::vector<size_t>& pick) {
            for (size_t i = 0; i < plan.size(); i++) {
                if (applied[i] == pick[i]) continue;
                std::vector<float>& data = *fwd->tensor(plan[i].name);
                data = to_f32(*f.find_tensor(plan[i].name));
                if (pick[i] != SIZE_MAX) qdq(plan[i].name, plan[i].cands[pick[i]], data);
                applied[i] = pick[i];
            }
        };
        const PlanChoice choice = choose_plan_measured(plans, (size_t)std::max(1, opts.plan_candidates), [&](const std::vector<size_t>& pick) {
            apply(pick);
            return window_kl(*fwd, val_windows, ref);
        });
        apply(std::vector<size_t>(plan.size(), SIZE_MAX));  // F32 again (the forward is not used after this, but keep it true)
        log("mixed precision: " + std::to_string(plans.size()) + " candidate plans within " + std::to_string(budget) +
            " bytes for the quantized tensors; measured KL of " + std::to_string(choice.tried.size()) + " on " +
            std::to_string(n_val) + " calibration tokens after the sensitivity tokens:");
        for (const auto& [p, m] : choice.tried) {
            char v[96];
            snprintf(v, sizeof v, "  predicted %.6f measured %.6f %llu bytes: ", p.predicted, m, (unsigned long long)p.bytes);
            log(v + p.how + (p.pick == choice.plan.pick ? "  <- chosen" : ""));
        }
        const std::vector<size_t>& pick = choice.plan.pick;
        for (size_t i = 0; i < plan.size(); i++) {
            chosen[plan[i].name] = plan[i].cands[pick[i]].type;
            if (!plan[i].cands[pick[i]].weighted) rtn.insert(plan[i].name);
            sens[plan[i].name] = plan[i].cands[pick[i]].loss;
        }
        rep.predicted_kl = choice.plan.predicted;
        rep.measured_kl = choice.measured;
        char v[96];
        snprintf(v, sizeof v, "mixed precision: chosen plan: predicted KL %.6f, measured KL %.6f (", rep.predicted_kl,
                 rep.measured_kl);
        log(v + choice.plan.how + ")");
    }

    gguf::Writer w(f.alignment());
    w.copy_metadata(f);
    std::map<TensorType, uint64_t> bytes_by_type;
    const int64_t n_tensors = (int64_t)f.tensors().size();
    int64_t done = 0;
    for (const auto& t : f.tensors()) {
        std::vector<uint64_t> ne(t.ne, t.ne + t.n_dims);
        TensorReport tr;
        tr.name = t.name;
        tr.from = t.type;
        tr.n_elements = t.n_elements;
        auto it = chosen.find(t.name);
        if (it == chosen.end()) {  // 1-D: copied unchanged
            tr.to = t.type;
            tr.bytes = t.n_bytes;
            w.add_tensor(t.name, t.type, ne, t.data, t.n_bytes);
        } else {
            tr.to = it->second;
            tr.converted = true;
            tr.fallback = !mixed && it->second != opts.type;
            tr.sensitivity = sens.count(t.name) ? sens[t.name] : 0;
            const std::vector<float> x = to_f32(t);
            const std::vector<uint8_t> q = encode(x, t.ne[0], tr.to, weighted && !rtn.count(t.name), imp_of(t.name), n_threads);
            tr.bytes = q.size();
            w.add_tensor(t.name, tr.to, ne, q.data(), q.size());
            bytes_by_type[tr.to] += q.size();
            if (tr.fallback) {
                rep.n_fallback++;
                log(t.name + ": rows of " + std::to_string(t.ne[0]) + " are not a multiple of the " + info(opts.type).name +
                    " block (" + std::to_string(info(opts.type).block_elems) + "): " + info(tr.to).name + " instead");
            }
        }
        log("[" + std::to_string(done + 1) + "/" + std::to_string(n_tensors) + "] " + t.name + " " + info(tr.from).name +
            " -> " + info(tr.to).name + " " + kib(tr.bytes) + (rtn.count(t.name) ? " (round-to-nearest)" : ""));
        rep.tensors.push_back(tr);
        if (opts.progress && !mixed) opts.progress(done + 1, n_tensors);
        done++;
    }
    TensorType dominant = TensorType::F32;
    uint64_t most = 0;
    for (const auto& [ty, b] : bytes_by_type)
        if (b > most) { most = b; dominant = ty; }
    set_output_keys(w, dominant, weighted, stats.n_tokens);
    w.write(out_path);
    struct stat st;
    if (::stat(out_path.c_str(), &st) == 0) rep.out_bytes = (uint64_t)st.st_size;
    return rep;
}

}  // namespace mw::compress
