// Quantization and pruning internals: every encoder decodes within its error
// bound; importance weighting lowers the weighted error against plain
// round-to-nearest; fallback types for rows that do not fit a block (the 172
// wide FFN of stories260K); the calibration forward against the reference
// forward; pruned and mixed-precision files have the expected shapes and sizes.
#include "base/error.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "quant/quant.h"
#include "quant/quant_weighted.h"
#include "tools/calibrate/calibration.h"
#include "tools/calibrate/f32_forward.h"
#include "tools/prune/prune.h"
#include "tools/quantize/mixed_plan.h"
#include "tools/quantize/quantize.h"

#include "model/reference_forward.h"
#include "model/synthetic_model.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "test_util.h"

using namespace mw;
using gguf::TensorType;

namespace {

std::string tmp_dir() {
    static std::string dir;
    if (dir.empty()) {
        char t[] = "/tmp/mw_compress_XXXXXX";
        assert_non_null(mkdtemp(t));
        dir = t;
    }
    return dir;
}

bool exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

std::string data_file(const char* name) { return std::string(mw_test_data_dir()) + "/" + name; }

std::vector<float> gaussian(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

std::vector<float> round_trip(TensorType t, const std::vector<float>& x, const float* imp, bool weighted) {
    const auto* ti = gguf::tensor_type_info((uint32_t)t);
    std::vector<uint8_t> q(gguf::row_bytes(*ti, x.size()));
    if (weighted) quant::quantize_row_weighted(t, x.data(), q.data(), x.size(), imp);
    else quant::quantize_row(t, x.data(), q.data(), x.size());
    std::vector<float> y(x.size());
    quant::dequantize_row(t, q.data(), y.data(), x.size());
    return y;
}

double rel_rms(const std::vector<float>& a, const std::vector<float>& b) {
    double e = 0, s = 0;
    for (size_t i = 0; i < a.size(); i++) { e += (double)(a[i] - b[i]) * (a[i] - b[i]); s += (double)a[i] * a[i]; }
    return std::sqrt(e / s);
}

// Each encoder's blocks decode (with the ordinary decoders) within the error
// its bit width allows, and the weighted search is never worse than RTN.
void test_encoders_round_trip(void**) {
    struct Case { TensorType t; double bound; };
    const Case cases[] = {{TensorType::Q8_0, 0.01}, {TensorType::Q4_0, 0.12}, {TensorType::Q4_1, 0.11},
                          {TensorType::Q5_0, 0.06}, {TensorType::Q5_1, 0.055},
                          {TensorType::Q4_K, 0.10}, {TensorType::Q5_K, 0.05}, {TensorType::Q6_K, 0.025},
                          {TensorType::F16, 0.001}, {TensorType::BF16, 0.005}};
    const std::vector<float> x = gaussian(4096, 7);
    for (const Case& c : cases) {
        const double w = rel_rms(x, round_trip(c.t, x, nullptr, true));
        const double r = rel_rms(x, round_trip(c.t, x, nullptr, false));
        printf("%-5s weighted %.5f rtn %.5f\n", gguf::tensor_type_info((uint32_t)c.t)->name, w, r);
        assert_true(w < c.bound);
        assert_true(w <= r * 1.0001);
    }
    // All-zero and constant blocks stay exact (no division by a zero scale).
    std::vector<float> z(512, 0.0f), k(512, 0.25f);
    for (const Case& c : cases) {
        assert_true(rel_rms(k, round_trip(c.t, k, nullptr, true)) < c.bound);
        for (float v : round_trip(c.t, z, nullptr, true)) assert_true(v == 0.0f);
    }
}

// With a heavy-tailed column importance (a few hot columns, as activations
// have), the importance-weighted encoder has a lower weighted error than RTN
// for every block type, summed over a 32 x 512 matrix.
void test_importance_lowers_weighted_error(void**) {
    const size_t rows = 32, n = 512;
    const std::vector<float> x = gaussian(rows * n, 11);
    std::vector<float> imp(n);
    std::mt19937 rng(3);
    std::exponential_distribution<float> e(1.0f);
    for (auto& v : imp) v = std::pow(e(rng), 3.0f);
    for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                         TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
        double ew = 0, er = 0, eu = 0;
        for (size_t r = 0; r < rows; r++) {
            const std::vector<float> row(x.begin() + (long)(r * n), x.begin() + (long)((r + 1) * n));
            ew += quant::weighted_sq_error(row.data(), round_trip(t, row, imp.data(), true).data(), imp.data(), n);
            er += quant::weighted_sq_error(row.data(), round_trip(t, row, nullptr, false).data(), imp.data(), n);
            eu += quant::weighted_sq_error(row.data(), round_trip(t, row, nullptr, true).data(), imp.data(), n);
        }
        printf("%-5s weighted error: importance %.4g, uniform search %.4g, rtn %.4g\n",
               gguf::tensor_type_info((uint32_t)t)->name, ew, eu, er);
        assert_true(ew < 0.9 * er);
        assert_true(ew < eu);
    }
}

// stories260K: FFN 172 wide (ffn_down rows), everything else 64 wide.
void test_fallback_types(void**) {
    assert_int_equal((int)compress::fallback_type(TensorType::Q8_0, 172), (int)TensorType::F16);
    assert_int_equal((int)compress::fallback_type(TensorType::Q4_0, 64), (int)TensorType::Q4_0);
    assert_int_equal((int)compress::fallback_type(TensorType::Q4_K, 64), (int)TensorType::Q4_1);
    assert_int_equal((int)compress::fallback_type(TensorType::Q6_K, 64), (int)TensorType::Q8_0);
    assert_int_equal((int)compress::fallback_type(TensorType::Q5_K, 64), (int)TensorType::Q5_1);
    assert_int_equal((int)compress::fallback_type(TensorType::Q5_K, 172), (int)TensorType::F16);
    assert_int_equal((int)compress::fallback_type(TensorType::Q5_0, 172), (int)TensorType::F16);
    assert_int_equal((int)compress::fallback_type(TensorType::Q5_1, 64), (int)TensorType::Q5_1);
    assert_int_equal((int)compress::fallback_type(TensorType::Q4_K, 512), (int)TensorType::Q4_K);
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    // The 32-block type a K-quant falls back to on 64-wide rows.
    auto fb32 = [](TensorType t) { return t == TensorType::Q4_K ? TensorType::Q4_1 : t == TensorType::Q5_K ? TensorType::Q5_1 : t; };
    for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q5_0}) {
        const std::string out = tmp_dir() + "/fallback.gguf";
        compress::QuantizeOptions o;
        o.type = t;
        std::vector<std::string> lines;
        o.log = [&](const std::string& s) { lines.push_back(s); };
        const compress::QuantizeReport r = compress::quantize_model(path, out, o);
        uint64_t n_fb = 0;
        for (const auto& tr : r.tensors) {
            if (!tr.converted) continue;
            const bool down = tr.name.find("ffn_down") != std::string::npos;
            const TensorType want = down ? TensorType::F16 : fb32(t);
            assert_int_equal((int)tr.to, (int)want);
            assert_true(tr.fallback == (tr.to != t));
            n_fb += tr.fallback;
        }
        assert_int_equal(r.n_fallback, n_fb);
        assert_int_equal(n_fb, t == TensorType::Q4_K || t == TensorType::Q5_K ? 37 : 5);
        bool reported = false;
        for (const auto& s : lines)
            if (s.find("blk.0.ffn_down.weight: rows of 172 are not a multiple") != std::string::npos) reported = true;
        assert_true(reported);
        // The file loads; its types are what the report says.
        auto m = Model::load(out);
        assert_int_equal((int)m->weights().layers[0].w_down.type, (int)TensorType::F16);
        assert_true(r.out_bytes < r.in_bytes / 2);
        assert_int_equal(m->file().get_uint("general.file_type", 99), compress::file_type_of(fb32(t)));
        unlink(out.c_str());
    }
}

// The calibration forward (batched, F32) gives the reference forward's logits.
void test_forward_matches_reference(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    compress::F32Forward fwd(*m, 2);
    const std::vector<int32_t> toks = {1, 403, 407, 261, 378, 363, 424, 261, 259, 300, 405, 281, 260, 290, 279, 286};
    std::vector<float> logits;
    fwd.forward(toks.data(), (int64_t)toks.size(), nullptr, &logits);
    test::ReferenceForward ref(*m);
    const int V = m->config().n_vocab;
    double max_diff = 0;
    for (size_t t = 0; t < toks.size(); t++) {
        const std::vector<float> r = ref.step(toks[t]);
        for (int i = 0; i < V; i++) max_diff = std::max(max_diff, (double)std::fabs(r[(size_t)i] - logits[t * (size_t)V + (size_t)i]));
    }
    printf("max |logit difference| %.3g\n", max_diff);
    assert_true(max_diff < 1e-3);
    // Resuming at any layer from the recorded residual stream gives the same
    // logits bit for bit (what the sensitivity measurements rely on) ...
    compress::F32Forward::LayerInputs inputs;
    std::vector<float> again, resumed;
    fwd.forward(toks.data(), (int64_t)toks.size(), nullptr, &again, &inputs);
    assert_int_equal(inputs.size(), m->config().n_layer + 1);
    assert_memory_equal(again.data(), logits.data(), logits.size() * sizeof(float));
    for (int l = 0; l <= m->config().n_layer; l++) {
        fwd.forward_from(l, inputs[(size_t)l], (int64_t)toks.size(), &resumed);
        assert_memory_equal(resumed.data(), logits.data(), logits.size() * sizeof(float));
    }
    // ... and sees a change to that layer's weights like a whole forward does.
    std::vector<float>& wq = *fwd.tensor("blk.3.attn_q.weight");
    const std::vector<float> wq_orig = wq;
    for (float& x : wq) x *= 1.5f;
    fwd.forward(toks.data(), (int64_t)toks.size(), nullptr, &again);
    fwd.forward_from(3, inputs[3], (int64_t)toks.size(), &resumed);
    assert_memory_equal(resumed.data(), again.data(), again.size() * sizeof(float));
    assert_true(std::memcmp(again.data(), logits.data(), logits.size() * sizeof(float)) != 0);
    wq = wq_orig;
    assert_int_equal(compress::first_layer_of("blk.3.attn_q.weight", 5), 3);
    assert_int_equal(compress::first_layer_of("output.weight", 5), 5);
    assert_int_equal(compress::first_layer_of("token_embd.weight", 5), -1);
    assert_int_equal(compress::first_layer_of("blk.7.attn_q.weight", 5), -1);
    // Calibration statistics: one importance per input column, all finite and >= 0.
    const auto windows = compress::calibration_windows(*m, "Once upon a time there was a little dog.", 0, 0);
    const compress::CalibStats s = compress::calibrate(fwd, windows, nullptr);
    assert_int_equal(s.importance.at("blk.0.ffn_down.weight").size(), 172);
    assert_int_equal(s.importance.at("blk.4.attn_q.weight").size(), 64);
    assert_int_equal(s.ffn_channel[2].size(), 172);
    assert_int_equal(s.head_group[2].size(), 4);
    for (const auto& [name, v] : s.importance)
        for (float x : v) assert_true(std::isfinite(x) && x >= 0);
}

// 25% of the FFN and of the heads pruned: the expected geometry, a smaller
// file, the metadata the loader reads, and a forward pass that runs.
void test_prune_shapes(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    const std::string out = tmp_dir() + "/pruned.gguf";
    compress::PruneOptions o;
    o.ffn_keep = 0.75;
    o.heads_keep = 0.75;
    o.calib_path = data_file("english.txt");
    const compress::PruneReport r = compress::prune_model(path, out, o);
    assert_true(r.out_bytes < r.in_bytes);
    assert_true(r.params_out < r.params_in);
    auto m = Model::load(out);
    const ModelConfig& c = m->config();
    for (const auto& l : c.layers) {
        assert_int_equal(l.n_ff, 128);  // 129 rounded to a multiple of 32
        assert_int_equal(l.n_head_kv, 3);
        assert_int_equal(l.n_head, 6);
    }
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(m->weights().layers[1].w_down.n_in, 128);
    assert_int_equal(m->weights().layers[1].wo.n_in, 48);
    compress::F32Forward fwd(*m, 1);
    const std::vector<int32_t> toks = {1, 403, 407, 261};
    std::vector<float> logits;
    fwd.forward(toks.data(), 4, nullptr, &logits);
    for (float v : logits) assert_true(std::isfinite(v));

    // Per-layer ranking: widths differ by layer (array metadata) and still load.
    o.per_layer = true;
    o.heads_keep = 1.0;
    compress::prune_model(path, out, o);
    auto m2 = Model::load(out);
    int total = 0;
    for (const auto& l : m2->config().layers) {
        assert_true((l.n_ff % 32 == 0 || l.n_ff == 172) && l.n_ff >= 32 && l.n_ff <= 172);
        total += l.n_ff;
    }
    assert_true(total < 5 * 172);

    // Random ranking needs no calibration text.
    compress::PruneOptions rnd;
    rnd.ffn_keep = 0.5;
    rnd.random = true;
    rnd.seed = 5;
    compress::prune_model(path, out, rnd);
    assert_int_equal(Model::load(out)->config().layers[0].n_ff, 96);
    unlink(out.c_str());
}

// A synthetic GQA model with a quantized input: groups go with their query
// heads; row-sliced tensors keep their type.
void test_prune_synthetic_gqa(void**) {
    test::SyntheticSpec s;
    s.n_embd = 64; s.n_head = 8; s.n_head_kv = 2; s.n_ff = 128; s.weight_type = TensorType::Q8_0;
    const std::string in = tmp_dir() + "/syn.gguf", out = tmp_dir() + "/syn_pruned.gguf";
    const std::vector<uint8_t> img = test::synthetic_model(s);
    FILE* f = fopen(in.c_str(), "wb");
    fwrite(img.data(), 1, img.size(), f);
    fclose(f);
    compress::PruneOptions o;
    o.heads_keep = 0.5;
    o.ffn_keep = 0.5;
    o.calib_path = data_file("story.txt");
    compress::prune_model(in, out, o);
    auto m = Model::load(out);
    assert_int_equal(m->config().layers[0].n_head, 4);
    assert_int_equal(m->config().layers[0].n_head_kv, 1);
    assert_int_equal(m->config().layers[0].n_ff, 64);
    assert_int_equal((int)m->weights().layers[0].wq.type, (int)TensorType::Q8_0);
    assert_int_equal((int)m->weights().layers[0].w_down.type, (int)TensorType::Q8_0);
    unlink(in.c_str());
    unlink(out.c_str());
}

// Mixed precision under a size budget: fits it, uses several types.
void test_mixed_precision(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    const std::string out = tmp_dir() + "/mixed.gguf";
    compress::QuantizeOptions o;
    o.has_type = false;
    o.calib_path = data_file("english.txt");
    o.sens_tokens = 64;
    o.target_size = 400000;
    std::vector<std::string> lines;
    o.log = [&](const std::string& s) { lines.push_back(s); };
    const compress::QuantizeReport r = compress::quantize_model(path, out, o);
    o.log = nullptr;
    assert_true(r.mixed);
    // Plans are measured on the 2 x 64 tokens that follow the first window
    // (the sensitivity tokens are the start of that window), not on the
    // sensitivity tokens again.
    bool val_tokens = false;
    for (const auto& s : lines)
        if (s.find("measured KL of") != std::string::npos && s.find(" on 128 calibration tokens after") != std::string::npos)
            val_tokens = true;
    assert_true(val_tokens);
    assert_true(r.out_bytes <= o.target_size);
    // The chosen plan was measured as a whole (tensors' losses interact, so
    // the measurement is not the predicted sum, but both are small and > 0).
    assert_true(r.measured_kl > 0 && std::isfinite(r.measured_kl));
    assert_true(r.predicted_kl > 0 && r.measured_kl < 10 * r.predicted_kl);
    std::set<int> types;
    for (const auto& t : r.tensors)
        if (t.converted) types.insert((int)t.to);
    assert_true(types.size() >= 2);
    Model::load(out);
    // A budget of exactly the all-Q8_0 file's size: the header is sized
    // exactly, so that plan fits and the result spends the whole budget (a
    // header estimate a few bytes high forced a tensor down to 4 bits).
    {
        const std::string q8 = tmp_dir() + "/mixed-q8.gguf";
        compress::QuantizeOptions u;
        u.type = TensorType::Q8_0;
        u.calib_path = o.calib_path;
        const uint64_t q8_bytes = compress::quantize_model(path, q8, u).out_bytes;
        compress::QuantizeOptions e = o;
        e.target_size = q8_bytes;
        e.rtn_variants = true;  // the round-to-nearest encoders as candidates too: same budget rule
        const compress::QuantizeReport rq = compress::quantize_model(path, out, e);
        assert_true(rq.out_bytes <= q8_bytes);
        assert_true(rq.out_bytes + 64 > q8_bytes);
        unlink(q8.c_str());
    }
    // A budget below the smallest possible file is refused, with no output.
    unlink(out.c_str());
    o.target_size = 100000;
    try {
        compress::quantize_model(path, out, o);
        assert_true(false);
    } catch (const Error& e) {
        assert_int_equal(e.status(), MW_ERR_INVALID_ARGUMENT);
    }
    assert_false(exists(out));
}

// Already-quantized input is requantized with a warning; an architecture
// memwise cannot run is refused as unsupported, with no output file.
void test_quantized_and_unsupported_input(void**) {
    test::SyntheticSpec s;
    s.weight_type = TensorType::Q8_0;
    const std::string in = tmp_dir() + "/syn_q8.gguf", out = tmp_dir() + "/syn_q4.gguf";
    auto save = [&](const std::vector<uint8_t>& img) {
        FILE* f = fopen(in.c_str(), "wb");
        fwrite(img.data(), 1, img.size(), f);
        fclose(f);
    };
    save(test::synthetic_model(s));
    compress::QuantizeOptions o;
    o.type = TensorType::Q4_0;
    std::string warnings;
    o.log = [&](const std::string& l) { if (l.rfind("warning", 0) == 0) warnings += l; };
    const compress::QuantizeReport r = compress::quantize_model(in, out, o);
    assert_true(r.requantized);
    assert_true(warnings.find("already quantized") != std::string::npos);
    assert_int_equal((int)Model::load(out)->weights().layers[0].wq.type, (int)TensorType::Q4_0);
    unlink(out.c_str());
    s.weight_type = TensorType::F32;
    s.arch = "gpt2";
    save(test::synthetic_model(s));
    try {
        compress::quantize_model(in, out, o);
        assert_true(false);
    } catch (const Error& e) {
        assert_int_equal(e.status(), MW_ERR_UNSUPPORTED);
    }
    assert_false(exists(out));
    unlink(in.c_str());
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoders_round_trip),
        cmocka_unit_test(test_importance_lowers_weighted_error),
        cmocka_unit_test(test_fallback_types),
        cmocka_unit_test(test_forward_matches_reference),
        cmocka_unit_test(test_prune_shapes),
        cmocka_unit_test(test_prune_synthetic_gqa),
        cmocka_unit_test(test_mixed_precision),
        cmocka_unit_test(test_quantized_and_unsupported_input),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
