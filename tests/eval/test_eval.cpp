// Evaluation and distillation export (src/tools/eval) on the real stories260K:
// perplexity against the plain reference forward pass, KL of a model against
// itself and against its F16 conversion, the export round trip, and the
// errors for bad input and damaged export files.
#include "base/error.h"
#include "base/half.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "tools/eval/distill_export.h"
#include "tools/eval/distill_format.h"
#include "tools/eval/eval.h"
#include "tools/eval/rounded_base.h"
#include "tools/eval/token_stats.h"

#include "model/reference_forward.h"
#include "model/synthetic_model.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

// Project headers first: cmocka's fail() macro would otherwise clash with mw::fail.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "test_util.h"

using namespace mw;

namespace {

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string english() { return read_text(std::string(mw_test_data_dir()) + "/english.txt"); }

std::string tmp_path(const char* name) {
    const char* d = getenv("TMPDIR");
    return std::string(d ? d : "/tmp") + "/mw-test-eval-" + std::to_string(getpid()) + "-" + name;
}

// Status of the mw::Error body throws, MW_OK when it returns.
template <class F>
mw_status status_of(F&& body) {
    try {
        body();
        return MW_OK;
    } catch (const Error& e) {
        std::printf("  expected error: %d: %s\n", (int)e.status(), e.what());
        return e.status();
    }
}

// The F32 model with every 2-D F32 weight converted to F16 (norms stay F32),
// written with the project's GGUF writer: a slightly perturbed model.
std::string write_f16_copy(const Model& m) {
    const gguf::File& f = m.file();
    gguf::Writer w;
    w.copy_metadata(f);
    for (const gguf::TensorInfo& t : f.tensors()) {
        std::vector<uint64_t> ne(t.ne, t.ne + t.n_dims);
        if (t.type == gguf::TensorType::F32 && t.n_dims == 2) {
            std::vector<uint16_t> h((size_t)t.n_elements);
            const float* src = reinterpret_cast<const float*>(t.data);
            for (size_t i = 0; i < h.size(); i++) h[i] = f32_to_f16(src[i]);
            w.add_tensor(t.name, gguf::TensorType::F16, ne, h.data(), h.size() * 2);
        } else {
            w.add_tensor(t.name, t.type, ne, t.data, (size_t)t.n_bytes);
        }
    }
    const std::string path = tmp_path("f16.gguf");
    w.write(path);
    return path;
}

eval::EvalOptions small_opts() {
    eval::EvalOptions o;
    o.n_ctx = 64;
    o.n_threads = 2;
    return o;
}

}  // namespace

// Perplexity from the executor equals the plain reference forward pass run
// window by window with the same convention.
static void test_perplexity_matches_reference(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    eval::EvalOptions o = small_opts();
    o.kv_f32 = true;  // the reference keeps K/V in F32
    o.max_windows = 3;
    const std::vector<int32_t> tokens = eval::tokenize_for_eval(*m, english());
    const eval::EvalResult r = eval::evaluate(m, nullptr, tokens, o);
    assert_int_equal(r.n_windows, 3);
    assert_int_equal(r.n_scored, 3 * (64 - 1 - 32));

    double nll = 0;
    int64_t n = 0;
    for (int w = 0; w < 3; w++) {
        test::ReferenceForward ref(*m);
        for (int p = 0; p < 63; p++) {
            const int32_t t = p == 0 ? m->tokenizer().bos() : tokens[(size_t)(w * 64 + p)];
            const std::vector<float> logits = ref.step(t);
            if (p < 32) continue;
            double mx = -1e300, sum = 0;
            for (float v : logits) mx = std::max(mx, (double)v);
            for (float v : logits) sum += std::exp((double)v - mx);
            nll += mx + std::log(sum) - logits[(size_t)tokens[(size_t)(w * 64 + p + 1)]];
            n++;
        }
    }
    const double ppl_ref = std::exp(nll / (double)n);
    std::printf("perplexity %.6f, reference %.6f over %lld positions\n", r.perplexity, ppl_ref, (long long)n);
    assert_int_equal(n, r.n_scored);
    assert_true(std::fabs(r.perplexity / ppl_ref - 1) < 1e-4);
    assert_false(r.has_ref);
}

// A model against itself: KL 0, same argmax everywhere, equal perplexities.
static void test_kl_self_is_zero(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    const eval::EvalResult r = eval::evaluate_text(m, m, english(), small_opts());
    std::printf("self: KL %.3g p99 %.3g top-1 %.4f ln ratio %.3g\n", r.kl_mean, r.kl_p99, r.top1_agreement,
                r.ln_ppl_ratio);
    assert_true(r.has_ref);
    assert_true(r.kl_mean < 1e-9);
    assert_true(r.kl_max < 1e-7);
    assert_true(r.top1_agreement == 1.0);
    assert_true(std::fabs(r.ln_ppl_ratio) < 1e-12);
    assert_true(r.delta_p_rms < 1e-9);
}

// The F16 conversion against the F32 original: small, positive KL.
static void test_kl_f16_small_positive(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    const std::string f16 = write_f16_copy(*m);
    auto q = Model::load(f16);
    const eval::EvalResult r = eval::evaluate_text(q, m, english(), small_opts());
    std::printf("F16 vs F32: KL mean %.3g p99 %.3g max %.3g, top-1 %.4f, PPL %.4f vs %.4f, Δp RMS %.3g\n", r.kl_mean,
                r.kl_p99, r.kl_max, r.top1_agreement, r.perplexity, r.ref_perplexity, r.delta_p_rms);
    std::remove(f16.c_str());
    assert_true(r.kl_mean > 0);
    assert_true(r.kl_mean < 1e-3);
    assert_true(r.kl_p99 >= r.kl_mean * 0.5);
    assert_true(r.top1_agreement > 0.95);
    assert_true(std::fabs(r.ln_ppl_ratio) < 0.01);
}

// Export, read back, and KL from the export equals KL from the teacher within
// the top-K approximation (a lower bound, tight when the top K hold most mass).
static void test_export_round_trip(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto teacher = Model::load(path);
    const std::string f16 = write_f16_copy(*teacher);
    auto student = Model::load(f16);
    const std::string out = tmp_path("export.mwdx");
    eval::ExportOptions eo;
    eo.n_ctx = 64;
    eo.n_threads = 2;
    eo.top_k = 64;
    const eval::ExportSummary s = eval::distill_export(teacher, english(), out, eo);
    std::printf("export: %llu windows, %llu bytes\n", (unsigned long long)s.header.n_windows,
                (unsigned long long)s.file_bytes);
    assert_true(s.file_bytes > 256);

    // Read back: header fields and the records' agreement with the teacher.
    {
        eval::ExportReader rd(out);
        const eval::ExportHeader& h = rd.header();
        assert_int_equal(h.n_vocab, 512);
        assert_int_equal(h.top_k, 64);
        assert_int_equal(h.n_ctx, 64);
        assert_int_equal(h.first, 32);
        assert_int_equal(h.n_scored, 31);
        assert_int_equal(h.n_windows, s.header.n_windows);
        assert_true(h.vocab_hash == eval::vocab_identity(teacher->tokenizer()));
        assert_string_equal(h.arch.c_str(), "llama");
        uint64_t windows = 0;
        while (rd.next_window()) {
            for (uint32_t r = 0; r < h.n_scored; r++) {
                const eval::ExportRecord rec = rd.record(r);
                double mass = rec.rest_mass;
                for (uint32_t j = 0; j < h.top_k; j++) {
                    mass += std::exp((double)rec.logprobs[j]);
                    if (j) assert_true(rec.logprobs[j] <= rec.logprobs[j - 1]);
                }
                assert_true(std::fabs(mass - 1) < 1e-4);
            }
            windows++;
        }
        assert_int_equal(windows, h.n_windows);
    }

    const eval::EvalResult full = eval::evaluate_text(student, teacher, english(), small_opts());
    eval::EvalOptions xo;
    xo.n_threads = 2;
    const eval::EvalResult ex = eval::evaluate_against_export(student, out, xo);
    std::printf("KL full %.6g, from export %.6g (smallest top-64 mass %.4f); top-1 %.4f vs %.4f; PPL %.5f vs %.5f\n",
                full.kl_mean, ex.kl_mean, ex.ref_min_topk_mass, full.top1_agreement, ex.top1_agreement,
                full.perplexity, ex.perplexity);
    assert_true(ex.ref_is_export);
    assert_int_equal(ex.n_scored, full.n_scored);
    assert_true(std::fabs(ex.perplexity / full.perplexity - 1) < 1e-9);
    assert_true(std::fabs(ex.ref_perplexity / full.ref_perplexity - 1) < 1e-5);
    assert_true(std::fabs(ex.top1_agreement - full.top1_agreement) < 1e-9);
    assert_true(ex.kl_mean <= full.kl_mean * 1.001 + 1e-9);  // a lower bound
    assert_true(ex.kl_mean >= full.kl_mean * 0.8);

    // The teacher against its own export: zero within float rounding.
    const eval::EvalResult self = eval::evaluate_against_export(teacher, out, xo);
    assert_true(self.kl_mean < 1e-6);
    assert_true(self.top1_agreement == 1.0);
    std::remove(out.c_str());
    std::remove(f16.c_str());
}

// Truncated, corrupted and foreign files are MW_ERR_FORMAT; a missing one MW_ERR_IO.
static void test_export_damaged(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    const std::string out = tmp_path("damaged.mwdx");
    eval::ExportOptions eo;
    eo.n_ctx = 32;
    eo.n_threads = 1;
    eo.top_k = 8;
    eo.max_windows = 4;
    eval::distill_export(m, english(), out, eo);
    const std::string good = read_text(out);
    const std::string bad = tmp_path("bad.mwdx");
    auto write_bad = [&](const std::string& bytes) {
        std::ofstream f(bad, std::ios::binary | std::ios::trunc);
        f.write(bytes.data(), (std::streamsize)bytes.size());
    };
    eval::EvalOptions xo;
    xo.n_threads = 1;
    auto eval_bad = [&] { return status_of([&] { eval::evaluate_against_export(m, bad, xo); }); };

    write_bad(good);
    assert_int_equal(eval_bad(), MW_OK);
    // Cut at several places: inside the header, inside a frame, before the trailer.
    for (size_t cut : {size_t(10), size_t(200), size_t(256 + 4), good.size() / 2, good.size() - 16, good.size() - 1}) {
        write_bad(good.substr(0, cut));
        assert_int_equal(eval_bad(), MW_ERR_FORMAT);
    }
    // A flipped byte in the header (checksum) and in a compressed frame (zstd checksum).
    for (size_t at : {size_t(20), size_t(256 + 8 + 20), good.size() - 40}) {
        std::string b = good;
        b[at] = (char)(b[at] ^ 0x5a);
        write_bad(b);
        assert_int_equal(eval_bad(), MW_ERR_FORMAT);
    }
    write_bad(good + "x");  // bytes after the trailer
    assert_int_equal(eval_bad(), MW_ERR_FORMAT);
    write_bad("GGUF not an export at all");
    assert_int_equal(eval_bad(), MW_ERR_FORMAT);
    std::remove(bad.c_str());
    assert_int_equal(status_of([&] { eval::ExportReader r(bad); }), MW_ERR_IO);
    std::remove(out.c_str());
}

// Bad input: clear errors, and never a file under the output name.
static void test_bad_input(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    const eval::EvalOptions o = small_opts();
    assert_int_equal(status_of([&] { eval::evaluate_text(m, nullptr, "", o); }), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(status_of([&] { eval::evaluate_text(m, nullptr, "Once upon a time.", o); }),
                     MW_ERR_INVALID_ARGUMENT);
    eval::EvalOptions tiny = o;
    tiny.n_ctx = 2;
    assert_int_equal(status_of([&] { eval::evaluate_text(m, nullptr, english(), tiny); }), MW_ERR_INVALID_ARGUMENT);

    // A reference with another vocabulary (a synthetic byte-vocabulary model).
    const std::vector<uint8_t> img = test::synthetic_model(test::SyntheticSpec{});
    const std::string other = tmp_path("other.gguf");
    {
        std::ofstream f(other, std::ios::binary);
        f.write(reinterpret_cast<const char*>(img.data()), (std::streamsize)img.size());
    }
    auto o2 = Model::load(other);
    assert_int_equal(status_of([&] { eval::evaluate_text(m, o2, english(), o); }), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(status_of([&] { eval::evaluate_text(o2, m, english(), o); }), MW_ERR_INVALID_ARGUMENT);

    // Export: K out of range, empty text; nothing left under the output name.
    const std::string out = tmp_path("never.mwdx");
    eval::ExportOptions eo;
    eo.n_ctx = 32;
    eo.n_threads = 1;
    for (int k : {0, -1, 513}) {
        eo.top_k = k;
        assert_int_equal(status_of([&] { eval::distill_export(m, english(), out, eo); }), MW_ERR_INVALID_ARGUMENT);
    }
    eo.top_k = 4;
    assert_int_equal(status_of([&] { eval::distill_export(m, "", out, eo); }), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(access(out.c_str(), F_OK), -1);
    assert_int_equal(status_of([&] { eval::distill_export(m, english(), "/nonexistent-dir/x.mwdx", eo); }), MW_ERR_IO);

    // An export from one vocabulary refused for a student with another.
    eo.max_windows = 1;
    eval::distill_export(m, english(), out, eo);
    eval::EvalOptions xo;
    xo.n_threads = 1;
    assert_int_equal(status_of([&] { eval::evaluate_against_export(o2, out, xo); }), MW_ERR_INVALID_ARGUMENT);
    xo.n_ctx = 64;  // not the export's context
    assert_int_equal(status_of([&] { eval::evaluate_against_export(m, out, xo); }), MW_ERR_INVALID_ARGUMENT);
    std::remove(out.c_str());
    std::remove(other.c_str());
}

// Exact log-probability of token i of logits (double).
static double exact_logprob(const std::vector<float>& l, int i) {
    double mx = -1e300, sum = 0;
    for (float v : l) mx = std::max(mx, (double)v);
    for (float v : l) sum += std::exp((double)v - mx);
    return (double)l[(size_t)i] - mx - std::log(sum);
}

// llama.cpp's stored base: a token whose logit sits 0.4 of a step above a
// step is stored 0.4 step lower, and KL moves by the first-order change of
// that token's term p (log p - log q), i.e. p (log p - log q + 1) times the
// change of log p. Ends of the range: max at the top step, the min at 0.
static void test_rounded_base_steps(void**) {
    const float scale = 16.0f / 65535.0f;
    const float y = -16.0f + 65534.4f * scale;  // between steps 65534 and 65535
    const std::vector<float> p = {0.0f, y, -16.0f};
    const std::vector<float> q = {0.0f, 0.0f, -16.0f};
    eval::RoundedBase rb;
    eval::round_base(p.data(), 3, &rb);
    assert_true(std::fabs(rb.scale - scale) < 1e-9f);
    assert_int_equal(rb.steps[0], 65535);
    assert_int_equal(rb.steps[1], 65534);
    assert_int_equal(rb.steps[2], 0);
    assert_int_equal(rb.argmax(), 0);
    const double lp_y = exact_logprob(p, 1), lq_y = exact_logprob(q, 1);
    const double shift = (double)rb.logprob(1) - lp_y;
    std::printf("stored log p(y) moved by %.3g (0.4 step = %.3g)\n", shift, 0.4 * scale);
    assert_true(std::fabs(shift + 0.4 * scale) < 5e-6);
    // The min token is stored at log p = -16 - log Σ... < -16: left out of KL.
    assert_true(rb.logprob(2) <= eval::kRoundedBaseFloor);

    const eval::Normalizer np = eval::normalize(p.data(), 3), nq = eval::normalize(q.data(), 3);
    const double kl_exact = eval::kl_full(p.data(), np, q.data(), nq, 3);
    const double kl_rounded = eval::kl_rounded_base(rb, q.data(), nq, 3);
    const double expected = std::exp(lp_y) * (lp_y - lq_y + 1) * (-0.4 * scale);
    std::printf("KL exact %.9f rounded %.9f: change %.3g, expected %.3g\n", kl_exact, kl_rounded,
                kl_rounded - kl_exact, expected);
    assert_true(expected < -4e-5);
    assert_true(std::fabs((kl_rounded - kl_exact) - expected) < 1e-5);
}

// The -16 nats cutoff: 20000 tokens 17 nats under the top carry 0.08 % of
// the mass; llama.cpp's KL leaves their terms out, which here is exactly the
// difference from the full KL (Q uniform, so their terms are negative).
static void test_rounded_base_cutoff(void**) {
    const int V = 20001;
    std::vector<float> p((size_t)V, -17.0f), q((size_t)V, 0.0f);
    p[0] = 0.0f;
    eval::RoundedBase rb;
    eval::round_base(p.data(), V, &rb);
    for (int i = 1; i < V; i++) assert_int_equal(rb.steps[(size_t)i], 0);
    assert_true(rb.logprob(1) <= eval::kRoundedBaseFloor);
    const eval::Normalizer np = eval::normalize(p.data(), V), nq = eval::normalize(q.data(), V);
    const double kl_exact = eval::kl_full(p.data(), np, q.data(), nq, V);
    const double kl_rounded = eval::kl_rounded_base(rb, q.data(), nq, V);
    const double lq = -std::log((double)V);
    const double lp0 = exact_logprob(p, 0), lp1 = exact_logprob(p, 1);
    const double kept = std::exp(lp0) * (lp0 - lq);
    const double dropped = (V - 1) * std::exp(lp1) * (lp1 - lq);
    std::printf("KL exact %.9f rounded %.9f; kept term %.9f, dropped terms %.6f\n", kl_exact, kl_rounded, kept,
                dropped);
    assert_true(dropped < -5e-3);
    assert_true(std::fabs(kl_exact - (kept + dropped)) < 1e-6);
    assert_true(std::fabs(kl_rounded - kept) < 1e-5);
}

// The emulation through evaluate: a model against itself stays near 0 and
// agrees on the top token; an export refuses it.
static void test_rounded_base_eval(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    eval::EvalOptions o = small_opts();
    o.max_windows = 4;
    o.ref_base = eval::EvalOptions::Base::llama16;
    const eval::EvalResult r = eval::evaluate_text(m, m, english(), o);
    std::printf("self, llama16 base: KL %.3g max %.3g top-1 %.4f ln ratio %.3g\n", r.kl_mean, r.kl_max,
                r.top1_agreement, r.ln_ppl_ratio);
    assert_true(std::fabs(r.kl_mean) < 1e-4);
    assert_true(std::fabs(r.kl_max) < 1e-3);
    assert_true(r.top1_agreement > 0.99);
    assert_true(std::fabs(r.ln_ppl_ratio) < 1e-3);
    const std::string out = tmp_path("rb.mwdx");
    eval::ExportOptions eo;
    eo.n_ctx = 32;
    eo.n_threads = 1;
    eo.top_k = 4;
    eo.max_windows = 1;
    eval::distill_export(m, english(), out, eo);
    eval::EvalOptions xo;
    xo.n_threads = 1;
    xo.ref_base = eval::EvalOptions::Base::llama16;
    assert_int_equal(status_of([&] { eval::evaluate_against_export(m, out, xo); }), MW_ERR_INVALID_ARGUMENT);
    std::remove(out.c_str());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perplexity_matches_reference),
        cmocka_unit_test(test_kl_self_is_zero),
        cmocka_unit_test(test_kl_f16_small_positive),
        cmocka_unit_test(test_export_round_trip),
        cmocka_unit_test(test_export_damaged),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_rounded_base_steps),
        cmocka_unit_test(test_rounded_base_cutoff),
        cmocka_unit_test(test_rounded_base_eval),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
