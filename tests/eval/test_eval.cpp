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
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
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

// The export's window plan: every position 0 .. n-2 exactly once, in order;
// window 0 from token 0; later windows full, each scored position with at
// least n_ctx/2 tokens of input; the last window ends at the last token.
static void test_export_window_plan(void**) {
    for (int32_t ctx : {4, 5, 8, 9, 32}) {
        for (int64_t n : {2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 47, 48, 49, 50, 100, 1001}) {
            const std::vector<eval::Window> plan = eval::plan_export_windows(n, ctx, 0);
            int64_t next = 0;
            for (size_t w = 0; w < plan.size(); w++) {
                const eval::Window& x = plan[w];
                assert_true(x.n_scored >= 1);
                assert_true(x.first + x.n_scored <= x.n_tokens - 1);
                assert_true(x.start + x.n_tokens <= n);
                assert_int_equal(x.start + x.first, next);  // contiguous, each position once
                next += x.n_scored;
                if (w == 0) {
                    assert_int_equal(x.start, 0);
                    assert_int_equal(x.first, 0);
                    assert_int_equal(x.n_tokens, std::min<int64_t>(ctx, n));
                } else {
                    assert_int_equal(x.n_tokens, ctx);
                    assert_true(x.first + 1 >= ctx / 2);  // inputs 0 .. first
                    assert_true(x.start > plan[w - 1].start);
                    assert_true(x.start <= plan[w - 1].start + ctx / 2);
                }
            }
            assert_int_equal(next, n - 1);
            assert_int_equal(plan.back().start + plan.back().n_tokens, std::max<int64_t>(n, std::min<int64_t>(ctx, n)));
        }
    }
    // The worked example of docs/COMPRESSION.md: 22 tokens, context 8.
    const std::vector<eval::Window> ex = eval::plan_export_windows(22, 8, 0);
    const int64_t want[5][4] = {{0, 8, 0, 7}, {4, 8, 3, 4}, {8, 8, 3, 4}, {12, 8, 3, 4}, {14, 8, 5, 2}};
    assert_int_equal(ex.size(), 5);
    for (int w = 0; w < 5; w++) {
        assert_int_equal(ex[(size_t)w].start, want[w][0]);
        assert_int_equal(ex[(size_t)w].n_tokens, want[w][1]);
        assert_int_equal(ex[(size_t)w].first, want[w][2]);
        assert_int_equal(ex[(size_t)w].n_scored, want[w][3]);
    }
    assert_int_equal(eval::plan_export_windows(1000, 32, 3).size(), 3);  // a prefix
    assert_int_equal(status_of([] { eval::plan_export_windows(1, 32, 0); }), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(status_of([] { eval::plan_export_windows(100, 3, 0); }), MW_ERR_INVALID_ARGUMENT);
    // The evaluation plan keeps llama-perplexity's windows.
    const std::vector<eval::Window> ev = eval::plan_eval_windows(100, 32, 0);
    assert_int_equal(ev.size(), 3);
    assert_int_equal(ev[2].start, 64);
    assert_int_equal(ev[2].first, 16);
    assert_int_equal(ev[2].n_scored, 15);
}

// A short text with context 32: the records are exactly the stream positions
// 0 .. n-2, each once; each record matches the plain reference forward pass
// over its window's tokens; the top K plus the remaining mass sum to 1; the
// teacher against its own export gives KL 0 and top-1 100 % everywhere.
static void test_export_every_position(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    const int32_t ctx = 32, K = 8;
    // A prefix whose token count leaves a tail: the last window is shifted back.
    const std::string all = english();
    std::string text;
    std::vector<int32_t> tokens;
    for (size_t len = 1500;; len++) {
        text = all.substr(0, len);
        tokens = eval::tokenize_for_eval(*m, text);
        if ((tokens.size() - ctx) % (ctx / 2) != 0) break;
    }
    const int64_t n = (int64_t)tokens.size();
    const int32_t bos = m->tokenizer().bos();
    assert_int_equal(tokens[0], bos);

    const std::string out = tmp_path("every.mwdx");
    eval::ExportOptions eo;
    eo.n_ctx = ctx;
    eo.n_threads = 2;
    eo.top_k = K;
    eo.kv_f32 = true;  // the reference keeps K/V in F32
    const eval::ExportSummary s = eval::distill_export(m, text, out, eo);
    assert_int_equal(s.header.n_records, n - 1);

    eval::ExportReader rd(out);
    const eval::ExportHeader& h = rd.header();
    assert_int_equal(h.version, 2);
    assert_int_equal(h.n_ctx, ctx);
    assert_int_equal(h.stride, ctx / 2);
    assert_int_equal(h.n_text_tokens, n);
    assert_int_equal(h.n_records, n - 1);
    assert_int_equal(h.bos, bos);
    std::vector<int> seen((size_t)n, 0);
    double max_diff = 0, max_mass_err = 0;
    uint64_t windows = 0;
    bool shifted_tail = false;
    while (rd.next_window()) {
        const eval::ExportWindow& w = rd.window();
        const int32_t* toks = rd.window_tokens();
        // The window's tokens are the stream's, BOS in slot 0.
        for (uint32_t i = 0; i < w.n_tokens; i++)
            assert_int_equal(toks[i], i == 0 ? bos : tokens[(size_t)(w.start + i)]);
        if (windows > 0 && w.start % (ctx / 2) != 0) shifted_tail = true;
        test::ReferenceForward ref(*m);
        for (uint32_t p = 0; p < w.first + w.n_scored; p++) {
            const std::vector<float> logits = ref.step(toks[p]);
            if (p < w.first) continue;
            const eval::ExportRecord rec = rd.record(p - w.first);
            const uint64_t pos = w.start + p;
            seen[(size_t)pos]++;
            assert_int_equal(rec.token, tokens[(size_t)pos + 1]);
            double mx = -1e300, sum = 0;
            for (float v : logits) mx = std::max(mx, (double)v);
            for (float v : logits) sum += std::exp((double)v - mx);
            const double lse = mx + std::log(sum);
            max_diff = std::max(max_diff, std::fabs(rec.token_logprob - (logits[(size_t)rec.token] - lse)));
            // The K-th largest reference log-prob: every exported id must reach it.
            std::vector<float> sorted = logits;
            std::nth_element(sorted.begin(), sorted.begin() + (K - 1), sorted.end(), std::greater<float>());
            const double kth = sorted[(size_t)K - 1] - lse;
            double mass = rec.rest_mass;
            for (int j = 0; j < K; j++) {
                const double lp = logits[(size_t)rec.ids[j]] - lse;
                max_diff = std::max(max_diff, std::fabs(rec.logprobs[j] - lp));
                assert_true(lp >= kth - 1e-4);
                if (j) assert_true(rec.logprobs[j] <= rec.logprobs[j - 1]);
                mass += std::exp((double)rec.logprobs[j]);
            }
            max_mass_err = std::max(max_mass_err, std::fabs(mass - 1));
        }
        windows++;
    }
    std::printf("%lld tokens, %llu windows (shifted tail: %s): max |log-prob - reference| %.3g, max |mass - 1| %.3g\n",
                (long long)n, (unsigned long long)windows, shifted_tail ? "yes" : "no", max_diff, max_mass_err);
    assert_int_equal(windows, h.n_windows);
    assert_true(shifted_tail);
    for (int64_t p = 0; p < n - 1; p++) assert_int_equal(seen[(size_t)p], 1);
    assert_int_equal(seen[(size_t)n - 1], 0);  // the last token has no next token
    assert_true(max_diff < 1e-4);
    assert_true(max_mass_err < 1e-5);

    eval::EvalOptions xo;
    xo.n_threads = 2;
    xo.kv_f32 = true;
    const eval::EvalResult self = eval::evaluate_against_export(m, out, xo);
    std::printf("teacher vs its export: %lld positions, KL %.3g, top-1 %.4f\n", (long long)self.n_scored,
                self.kl_mean, self.top1_agreement);
    assert_int_equal(self.n_scored, n - 1);
    assert_int_equal(self.n_windows, (int64_t)h.n_windows);
    assert_true(self.kl_mean < 1e-6);
    assert_true(self.kl_max < 1e-5);
    assert_true(self.top1_agreement == 1.0);
    assert_true(std::fabs(self.ln_ppl_ratio) < 1e-6);
    std::remove(out.c_str());
}

// Export, read back, and KL from the export equals KL from the teacher on the
// same windows within the top-K approximation (a lower bound, tight when the
// top K hold most mass).
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
    std::printf("export: %llu windows, %llu positions, %llu bytes\n", (unsigned long long)s.header.n_windows,
                (unsigned long long)s.header.n_records, (unsigned long long)s.file_bytes);
    assert_true(s.file_bytes > 256);

    const std::vector<int32_t> tokens = eval::tokenize_for_eval(*teacher, english());
    const std::vector<eval::Window> plan = eval::plan_export_windows((int64_t)tokens.size(), 64, 0);
    eval::EvalOptions xo;
    xo.n_threads = 2;
    const eval::EvalResult full = eval::evaluate_windows(student, teacher, tokens, plan, xo);
    const eval::EvalResult ex = eval::evaluate_against_export(student, out, xo);
    std::printf("KL full %.6g, from export %.6g (smallest top-64 mass %.4f); top-1 %.4f vs %.4f; PPL %.5f vs %.5f\n",
                full.kl_mean, ex.kl_mean, ex.ref_min_topk_mass, full.top1_agreement, ex.top1_agreement,
                full.perplexity, ex.perplexity);
    assert_true(ex.ref_is_export);
    assert_int_equal(ex.n_scored, (int64_t)tokens.size() - 1);
    assert_int_equal(ex.n_scored, full.n_scored);
    assert_true(std::fabs(ex.perplexity / full.perplexity - 1) < 1e-9);
    assert_true(std::fabs(ex.ref_perplexity / full.ref_perplexity - 1) < 1e-5);
    assert_true(std::fabs(ex.top1_agreement - full.top1_agreement) < 1e-9);
    assert_true(ex.kl_mean <= full.kl_mean * 1.001 + 1e-9);  // a lower bound
    assert_true(ex.kl_mean >= full.kl_mean * 0.8);
    // --chunks: the first windows only.
    xo.max_windows = 3;
    const eval::EvalResult part = eval::evaluate_against_export(student, out, xo);
    assert_int_equal(part.n_windows, 3);
    assert_int_equal(part.n_scored, 63 + 32 + 32);
    std::remove(out.c_str());
    std::remove(f16.c_str());
}

// A version 1 file (the committed fuzz seed: 2 windows of 32, top 4) still
// reads, and eval follows its windows (second halves only).
static void test_export_reads_v1(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    const std::string v1 = std::string(mw_test_data_dir()) + "/../../fuzz/corpus/distill/v1-seed-k4-ctx32.mwd";
    {
        eval::ExportReader rd(v1);
        assert_int_equal(rd.header().version, 1);
        assert_int_equal(rd.header().n_records, 2 * 15);
        uint64_t w = 0;
        while (rd.next_window()) {
            assert_int_equal(rd.window().start, w * 32);
            assert_int_equal(rd.window().first, 16);
            assert_int_equal(rd.window().n_scored, 15);
            w++;
        }
        assert_int_equal(w, 2);
    }
    eval::EvalOptions xo;
    xo.n_threads = 1;
    const eval::EvalResult r = eval::evaluate_against_export(m, v1, xo);
    std::printf("v1 export: %lld positions, KL %.3g\n", (long long)r.n_scored, r.kl_mean);
    assert_int_equal(r.n_scored, 30);
    assert_true(r.kl_mean < 1e-6);
    assert_true(r.top1_agreement == 1.0);
}

namespace {

uint64_t fnv1a(const std::string& b, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)b[i];
        h *= 1099511628211ull;
    }
    return h;
}

template <class T>
void poke(std::string* b, size_t off, T v) {
    std::memcpy(&(*b)[off], &v, sizeof v);
}
template <class T>
T peek(const std::string& b, size_t off) {
    T v;
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}

// Sets a header field and recomputes the header checksum: only the field's
// own check can catch it.
template <class T>
std::string with_header_field(std::string b, size_t off, T v) {
    poke(&b, off, v);
    poke(&b, 248, fnv1a(b, 248));
    return b;
}

std::string zstd_frame(const std::string& raw) {
    std::string out(ZSTD_compressBound(raw.size()), '\0');
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    const size_t n = ZSTD_compress2(c, &out[0], out.size(), raw.data(), raw.size());
    ZSTD_freeCCtx(c);
    if (ZSTD_isError(n)) std::abort();
    out.resize(n);
    return out;
}

// The file with its first window's uncompressed bytes edited by `edit`
// (re-framed with a correct zstd checksum and size).
template <class F>
std::string with_first_window(const std::string& file, F&& edit) {
    const uint64_t size = peek<uint64_t>(file, 256);
    std::string raw((size_t)ZSTD_getFrameContentSize(file.data() + 264, (size_t)size), '\0');
    if (ZSTD_decompress(&raw[0], raw.size(), file.data() + 264, (size_t)size) != raw.size()) std::abort();
    edit(&raw);
    const std::string frame = zstd_frame(raw);
    std::string out = file.substr(0, 256);
    out.append(8, '\0');
    poke<uint64_t>(&out, 256, frame.size());
    out += frame;
    out += file.substr(264 + (size_t)size);
    return out;
}

}  // namespace

// Truncated, corrupted, inconsistent and foreign files are MW_ERR_FORMAT (never
// a crash, a hang or a huge allocation); a missing one MW_ERR_IO.
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
    // Reads every window and record (the reader checks each field as it reads).
    auto read_bad = [&] {
        return status_of([&] {
            eval::ExportReader r(bad);
            while (r.next_window()) {
            }
        });
    };
    auto eval_bad = [&] { return status_of([&] { eval::evaluate_against_export(m, bad, xo); }); };

    write_bad(good);
    assert_int_equal(eval_bad(), MW_OK);
    assert_int_equal(read_bad(), MW_OK);
    // Cut everywhere: inside the header, the frame sizes, the frames, the trailer.
    for (size_t cut = 0; cut < good.size(); cut += (cut < 300 ? 7 : 97)) {
        write_bad(good.substr(0, cut));
        assert_int_equal(read_bad(), MW_ERR_FORMAT);
    }
    for (size_t cut : {size_t(256 + 4), good.size() / 2, good.size() - 16, good.size() - 1}) {
        write_bad(good.substr(0, cut));
        assert_int_equal(eval_bad(), MW_ERR_FORMAT);
    }
    // A flipped byte in each header field (checksum), in the first frame size
    // (a frame larger than the file), in frames (zstd checksum), in the trailer.
    for (size_t at : {size_t(0), size_t(4), size_t(12), size_t(16), size_t(20), size_t(24), size_t(32), size_t(40),
                      size_t(56), size_t(70), size_t(240), size_t(250), size_t(256 + 3), size_t(256 + 7),
                      size_t(256 + 8 + 20), good.size() / 2, good.size() - 40, good.size() - 12, good.size() - 3}) {
        std::string b = good;
        b[at] = (char)(b[at] ^ 0x5a);
        write_bad(b);
        assert_int_equal(read_bad(), MW_ERR_FORMAT);
    }
    // Header fields with a valid checksum: each refused by its own check.
    write_bad(with_header_field<uint32_t>(good, 4, 3));  // a future version
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    // A longer n_ctx (stride to match) is consistent: windows may be shorter.
    const std::string longer = with_header_field<uint32_t>(with_header_field<uint32_t>(good, 20, 1u << 20), 24, 1u << 19);
    write_bad(longer);
    assert_int_equal(read_bad(), MW_OK);
    // Eval sizes its KV cache by the windows read, not by 2^20 tokens.
    assert_int_equal(eval_bad(), MW_OK);
    write_bad(with_header_field<uint32_t>(longer, 16, 512));  // K 512 at n_ctx 2^20: windows over 1 GiB
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_header_field<uint32_t>(good, 20, 1u << 21));  // n_ctx above the maximum
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_header_field<uint32_t>(good, 24, 15));  // stride not n_ctx / 2
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_header_field<uint64_t>(good, 240, peek<uint64_t>(good, 40)));  // records >= tokens
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_header_field<uint64_t>(good, 240, peek<uint64_t>(good, 240) + 1));  // one more than held
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_header_field<uint64_t>(good, 32, 1ull << 40));  // 2^40 windows in a small file
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_header_field<uint64_t>(good, 40, 5));  // windows run past the text
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_header_field<uint32_t>(good, 16, 600));  // K above the vocabulary
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_header_field<int32_t>(good, 56, 512));  // BOS outside the vocabulary
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    // Window fields inside a valid zstd frame.
    write_bad(with_first_window(good, [](std::string*) {}));  // re-framed, unchanged: still fine
    assert_int_equal(read_bad(), MW_OK);
    write_bad(with_first_window(good, [](std::string* w) { poke<uint32_t>(w, 0, 1); }));  // index
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { poke<uint64_t>(w, 4, 1); }));  // start: a gap
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { poke<uint64_t>(w, 4, ~0ull); }));  // start overflows
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { poke<uint32_t>(w, 12, 33); }));  // more than n_ctx
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { poke<uint32_t>(w, 16, 0xffffffffu); }));  // first
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { poke<uint32_t>(w, 20, 32); }));  // n_scored
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { w->resize(w->size() - 4); }));  // a short window
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { poke<int32_t>(w, 24 + 4, 512); }));  // token id
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { poke<float>(w, 24 + 4 * 32 + 8, 2.0f); }));  // mass
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    write_bad(with_first_window(good, [](std::string* w) { poke<float>(w, 24 + 4 * 32 + 12 + 32, NAN); }));
    assert_int_equal(read_bad(), MW_ERR_FORMAT);
    // A frame that claims 64 MiB (zeros compress to almost nothing): refused
    // from its declared size, before any allocation.
    write_bad(with_first_window(good, [](std::string* w) { w->assign(64u << 20, '\0'); }));
    assert_int_equal(read_bad(), MW_ERR_FORMAT);

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
        cmocka_unit_test(test_export_window_plan),
        cmocka_unit_test(test_export_every_position),
        cmocka_unit_test(test_export_round_trip),
        cmocka_unit_test(test_export_reads_v1),
        cmocka_unit_test(test_export_damaged),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_rounded_base_steps),
        cmocka_unit_test(test_rounded_base_cutoff),
        cmocka_unit_test(test_rounded_base_eval),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
