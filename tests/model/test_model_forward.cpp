// Model loading (synthetic and real files) and the Executor's forward pass
// against the plain reference forward pass, for every weight type, GQA,
// qwen2 biases, tied output, paged KV with small blocks, and batching.
#include "base/error.h"
#include "model/model.h"
#include "reference_forward.h"
#include "runtime/executor.h"
#include "synthetic_model.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

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

std::string write_temp(const std::vector<uint8_t>& bytes) {
    char path[] = "/tmp/mw_model_XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes.data(), bytes.size()), (ssize_t)bytes.size());
    close(fd);
    return path;
}

std::shared_ptr<const Model> load_spec(const test::SyntheticSpec& s) {
    const std::string path = write_temp(test::synthetic_model(s));
    auto m = Model::load(path);
    unlink(path.c_str());  // the mapping stays valid
    return m;
}

// Expects loading to fail with `status` and a message containing `needle`.
void expect_load_error(const test::SyntheticSpec& s, mw_status status, const char* needle) {
    const std::string path = write_temp(test::synthetic_model(s));
    try {
        Model::load(path);
        fail_msg("loading succeeded; expected %s", needle);
    } catch (const Error& e) {
        if (e.status() != status || !std::strstr(e.what(), needle))
            fail_msg("got status %d \"%s\"; expected %d with \"%s\"", e.status(), e.what(), status, needle);
    }
    unlink(path.c_str());
}

// Runs `tokens` through the Executor (in chunks of `chunk` tokens, paged KV with
// `block` tokens per block) and returns the logits of every position.
std::vector<std::vector<float>> run_executor(const std::shared_ptr<const Model>& m, const std::vector<int32_t>& tokens,
                                             int chunk, int block, KvType kv_type, int threads) {
    const int n_ctx = 128;
    KvCache kv(m->config(), kv_type, block, n_ctx / block + 1);
    ThreadPool pool(threads);
    Executor ex(m, kv, pool, chunk, chunk, n_ctx);
    BlockTable table;
    assert_true(kv.reserve(table, (int32_t)tokens.size()));
    std::vector<std::vector<float>> out;
    Batch b;
    for (size_t i = 0; i < tokens.size(); i += (size_t)chunk) {
        b.clear();
        b.tables.push_back(&table);
        for (size_t j = i; j < std::min(tokens.size(), i + (size_t)chunk); j++)
            b.tokens.push_back(BatchToken{tokens[j], (int32_t)j, 0, true});
        ex.forward(b);
        for (size_t r = 0; r < b.tokens.size(); r++)
            out.emplace_back(ex.logits((int32_t)r), ex.logits((int32_t)r) + m->config().n_vocab);
    }
    return out;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double mx = 0, scale = 1e-6;
    for (size_t i = 0; i < a.size(); i++) {
        mx = std::max(mx, (double)std::fabs(a[i] - b[i]));
        scale = std::max(scale, (double)std::fabs(b[i]));
    }
    return mx / scale;
}

void compare_with_reference(const test::SyntheticSpec& s, double tol, const char* label) {
    auto m = load_spec(s);
    const std::vector<int32_t> tokens = {1, 260, 261, 262, 70, 80, 90, 263, 100, 101, 102, 103, 104};
    test::ReferenceForward ref(*m);
    std::vector<std::vector<float>> expect;
    for (int32_t t : tokens) expect.push_back(ref.step(t));
    double worst = 0;
    for (int chunk : {1, 5, 13}) {
        for (int block : {4, 16}) {
            auto got = run_executor(m, tokens, chunk, block, KvType::F32, 2);
            for (size_t i = 0; i < tokens.size(); i++) worst = std::max(worst, max_rel_diff(got[i], expect[i]));
        }
    }
    std::printf("%-28s worst relative logit error vs reference: %.2e (tolerance %.0e)\n", label, worst, tol);
    assert_true(worst <= tol);
}

}  // namespace

static void test_forward_f32_matches_reference(void**) {
    test::SyntheticSpec s;
    compare_with_reference(s, 1e-4, "llama F32 GQA");
    s.n_head_kv = 4;
    s.tied_output = true;
    compare_with_reference(s, 1e-4, "llama F32 MHA tied");
    s.rope_freq_factors = true;
    compare_with_reference(s, 1e-4, "llama F32 rope freq factors");
    s.rope_freq_factors = false;
    s.arch = "qwen2";
    s.n_head_kv = 1;
    compare_with_reference(s, 1e-4, "qwen2 F32 (bias, neox)");
}

static void test_forward_per_layer_geometry(void**) {
    // A pruned-looking model: per-layer head counts (one layer without
    // attention) and FFN widths (one layer without FFN), read from arrays.
    test::SyntheticSpec s;
    s.n_layer = 4;
    s.layer_heads = {4, 2, 0, 4};
    s.layer_heads_kv = {2, 1, 0, 4};
    s.layer_ff = {96, 40, 64, 0};
    auto m = load_spec(s);
    assert_int_equal(m->config().layers[1].n_head, 2);
    assert_int_equal(m->config().layers[1].n_head_kv, 1);
    assert_int_equal(m->config().layers[2].n_head, 0);
    assert_int_equal(m->config().layers[3].n_ff, 0);
    assert_int_equal(m->config().head_dim, 16);
    compare_with_reference(s, 1e-4, "per-layer heads and FFN");
}

static void test_forward_quantized_types(void**) {
    // Activations are quantized to 8 bits for integer dot products, so the
    // tolerance is that of 8-bit activation rounding, not of the weights.
    const struct { gguf::TensorType t; const char* name; double tol; } types[] = {
        {gguf::TensorType::F16, "F16", 2e-3},   {gguf::TensorType::BF16, "BF16", 2e-2},
        {gguf::TensorType::Q8_0, "Q8_0", 3e-2}, {gguf::TensorType::Q4_0, "Q4_0", 3e-2},
        {gguf::TensorType::Q4_1, "Q4_1", 3e-2}, {gguf::TensorType::Q5_0, "Q5_0", 3e-2},
        {gguf::TensorType::Q5_1, "Q5_1", 3e-2}, {gguf::TensorType::Q4_K, "Q4_K", 3e-2},
        {gguf::TensorType::Q5_K, "Q5_K", 3e-2}, {gguf::TensorType::Q6_K, "Q6_K", 3e-2},
    };
    for (const auto& ty : types) {
        test::SyntheticSpec s;
        s.n_embd = 256;
        s.n_head = 4;
        s.n_head_kv = 2;
        s.n_ff = 512;
        s.weight_type = ty.t;
        compare_with_reference(s, ty.tol, ty.name);
    }
}

static void test_f16_kv_close_to_f32_kv(void**) {
    test::SyntheticSpec s;
    auto m = load_spec(s);
    const std::vector<int32_t> tokens = {1, 260, 261, 262, 70, 80, 90};
    auto a = run_executor(m, tokens, 7, 16, KvType::F32, 1);
    auto b = run_executor(m, tokens, 1, 4, KvType::F16, 2);
    for (size_t i = 0; i < tokens.size(); i++) assert_true(max_rel_diff(b[i], a[i]) < 5e-3);
}

// Long contexts: positions past Executor::kFlashMinPositions take the
// flash-decoding attention. Against the reference forward (F32 cache), and the
// same bits whatever the thread count and prompt chunking (the chunks and merge
// order depend only on the position); F16 and Q8_0 caches stay close to F32.
static void test_long_context_flash(void**) {
    test::SyntheticSpec s;
    s.n_ctx = 2048;
    auto m = load_spec(s);
    const int n_ctx = Executor::kFlashMinPositions + 300;
    std::vector<int32_t> tokens((size_t)n_ctx);
    for (int i = 0; i < n_ctx; i++) tokens[(size_t)i] = 1 + (i * 7919) % (m->config().n_vocab - 1);
    // Prompt in chunks of `chunk`, the last 3 tokens decoded one by one.
    auto run = [&](int chunk, int threads, KvType kv_type) {
        KvCache kv(m->config(), kv_type, 16, n_ctx / 16 + 1);
        ThreadPool pool(threads);
        Executor ex(m, kv, pool, chunk, chunk, n_ctx);
        BlockTable table;
        assert_true(kv.reserve(table, n_ctx));
        std::vector<std::vector<float>> out;
        Batch b;
        const size_t n_prompt = tokens.size() - 3;
        for (size_t i = 0; i < tokens.size();) {
            const size_t end = i < n_prompt ? std::min(n_prompt, i + (size_t)chunk) : i + 1;
            b.clear();
            b.tables.push_back(&table);
            for (size_t j = i; j < end; j++) b.tokens.push_back(BatchToken{tokens[j], (int32_t)j, 0, true, i < n_prompt});
            ex.forward(b);
            for (size_t r = 0; r < b.tokens.size(); r++)
                out.emplace_back(ex.logits((int32_t)r), ex.logits((int32_t)r) + m->config().n_vocab);
            i = end;
        }
        return out;
    };
    test::ReferenceForward ref(*m);
    const auto a = run(100, 2, KvType::F32), b = run(37, 3, KvType::F32);
    double worst = 0;
    for (size_t i = 0; i < tokens.size(); i++) {
        const std::vector<float> want = ref.step(tokens[i]);
        worst = std::max(worst, max_rel_diff(a[i], want));
        assert_memory_equal(a[i].data(), b[i].data(), a[i].size() * sizeof(float));
    }
    std::printf("flash attention to position %d: worst relative logit error vs reference %.2e\n", n_ctx, worst);
    assert_true(worst <= 1e-4);
    const auto h = run(100, 2, KvType::F16), q = run(100, 2, KvType::Q8_0);
    for (size_t i = 0; i < tokens.size(); i++) {  // both paths, as the positions pass 1024
        assert_true(max_rel_diff(h[i], a[i]) < 5e-3);
        assert_true(max_rel_diff(q[i], a[i]) < 3e-2);
    }
}

static void test_missing_and_misshapen_tensors(void**) {
    test::SyntheticSpec s;
    s.keep = [](const std::string& n) { return n != "blk.1.ffn_down.weight"; };
    expect_load_error(s, MW_ERR_FORMAT, "blk.1.ffn_down.weight");
    s.keep = nullptr;
    s.reshape = [](const std::string& n, std::vector<uint64_t>& ne) {
        if (n == "blk.0.attn_k.weight") ne[1] = 48;
    };
    expect_load_error(s, MW_ERR_FORMAT, "shape");
    s.reshape = nullptr;
    s.keep = [](const std::string& n) { return n != "token_embd.weight"; };
    expect_load_error(s, MW_ERR_FORMAT, "token_embd.weight");
    test::SyntheticSpec q;
    q.arch = "gpt-neox";
    expect_load_error(q, MW_ERR_UNSUPPORTED, "gpt-neox");
}

static void test_real_models_load(void**) {
    const char* stories = mw_test_find_model(MW_STORIES_MODEL);
    if (!stories) {
        std::printf("SKIP: model %s not found\n", MW_STORIES_MODEL);
        skip();
    }
    auto m = Model::load(stories);
    const ModelConfig& c = m->config();
    assert_int_equal(c.n_layer, 5);
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(c.layers[0].n_head_kv, 4);
    assert_int_equal(c.layers[0].n_ff, 172);
    assert_false(m->weights().tied_output);
    // The real model's executor output matches the reference forward too.
    test::ReferenceForward ref(*m);
    const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 432, 383};
    auto got = run_executor(m, tokens, 7, 16, KvType::F32, 2);
    for (size_t i = 0; i < tokens.size(); i++) assert_true(max_rel_diff(got[i], ref.step(tokens[i])) < 1e-4);
    if (const char* smol = mw_test_find_model(MW_SMOLLM_MODEL)) {
        auto s = Model::load(smol);
        assert_int_equal(s->config().n_layer, 30);
        assert_int_equal(s->config().layers[0].n_head_kv, 3);
        assert_true(s->weights().tied_output);
        assert_string_equal(s->dominant_type_name(), "Q4_1");
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_f32_matches_reference),
        cmocka_unit_test(test_forward_per_layer_geometry),
        cmocka_unit_test(test_forward_quantized_types),
        cmocka_unit_test(test_f16_kv_close_to_f32_kv),
        cmocka_unit_test(test_long_context_flash),
        cmocka_unit_test(test_missing_and_misshapen_tensors),
        cmocka_unit_test(test_real_models_load),
    };
    return cmocka_run_group_tests_name("model_forward", tests, NULL, NULL);
}
