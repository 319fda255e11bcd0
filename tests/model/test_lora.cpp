// LoRA adapters inside the engine: the Executor with an adapter gives the
// logits of the reference forward pass over the merged weights W + s B A (F32
// and quantized bases; adapter matrices F32, F16 and dequantized Q8_0; token
// embedding and output head adapted), rows of one batch with different
// adapters each get their own, and malformed adapters or adapters for another
// base model are refused with the right status.
#include "base/error.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "reference_forward.h"
#include "runtime/executor.h"
#include "synthetic_lora.h"
#include "synthetic_model.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

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
    char path[] = "/tmp/mw_lora_XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes.data(), bytes.size()), (ssize_t)bytes.size());
    close(fd);
    return path;
}

std::shared_ptr<const Model> load_bytes(const std::vector<uint8_t>& bytes) {
    const std::string path = write_temp(bytes);
    auto m = Model::load(path);
    unlink(path.c_str());  // the mapping stays valid
    return m;
}

std::shared_ptr<const LoraAdapter> load_lora(const std::vector<uint8_t>& bytes, const std::shared_ptr<const Model>& m) {
    const std::string path = write_temp(bytes);
    try {
        auto a = LoraAdapter::load(path, m);
        unlink(path.c_str());
        return a;
    } catch (...) {
        unlink(path.c_str());
        throw;
    }
}

void expect_lora_error(const std::vector<uint8_t>& bytes, const std::shared_ptr<const Model>& m, mw_status status,
                       const char* needle) {
    try {
        load_lora(bytes, m);
        fail_msg("adapter loaded; expected an error with \"%s\"", needle);
    } catch (const Error& e) {
        std::printf("refused as expected: %s\n", e.what());
        if (e.status() != status || !std::strstr(e.what(), needle))
            fail_msg("got status %d \"%s\"; expected %d with \"%s\"", e.status(), e.what(), status, needle);
    }
}

// Logits of every position of each sequence, all sequences run in the same
// batches (chunk tokens of each per step), sequence i with bindings[i].
std::vector<std::vector<std::vector<float>>> run_batched(const std::shared_ptr<const Model>& m,
                                                         const std::vector<std::vector<int32_t>>& seqs,
                                                         const std::vector<const LoraBinding*>& bindings, int chunk) {
    const int n_ctx = 64, block = 8;
    KvCache kv(m->config(), KvType::F32, block, (int32_t)seqs.size() * (n_ctx / block));
    ThreadPool pool(2);
    Executor ex(m, kv, pool, chunk * (int32_t)seqs.size(), chunk * (int32_t)seqs.size(), n_ctx);
    std::vector<BlockTable> tables(seqs.size());
    for (size_t s = 0; s < seqs.size(); s++) assert_true(kv.reserve(tables[s], (int32_t)seqs[s].size()));
    std::vector<std::vector<std::vector<float>>> out(seqs.size());
    Batch b;
    for (size_t i = 0;; i += (size_t)chunk) {
        b.clear();
        std::vector<size_t> owner;
        for (size_t s = 0; s < seqs.size(); s++) {
            b.tables.push_back(&tables[s]);
            b.loras.push_back(bindings[s]);
            for (size_t j = i; j < std::min(seqs[s].size(), i + (size_t)chunk); j++) {
                b.tokens.push_back(BatchToken{seqs[s][j], (int32_t)j, (int32_t)s, true, seqs[s].size() > 1});
                owner.push_back(s);
            }
        }
        if (b.tokens.empty()) break;
        ex.forward(b);
        for (size_t r = 0; r < b.tokens.size(); r++)
            out[owner[r]].emplace_back(ex.logits((int32_t)r), ex.logits((int32_t)r) + m->config().n_vocab);
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

const std::vector<int32_t> kTokens = {1, 260, 261, 262, 70, 80, 90, 263, 100, 101, 102};

// Executor(base + adapter at scale) against the reference pass over the merged
// file; returns how far the adapter moved the logits from the base model's.
double check_against_merged(const test::SyntheticSpec& base_spec, const test::LoraSpec& lora_spec, float scale,
                            double tol, const char* label) {
    const std::vector<uint8_t> base_bytes = test::synthetic_model(base_spec);
    auto base = load_bytes(base_bytes);
    const std::vector<uint8_t> lora_bytes = test::synthetic_lora(base->file(), lora_spec);
    auto lora_file = gguf::File::from_memory(lora_bytes.data(), lora_bytes.size());
    auto merged = load_bytes(test::merged_model(base->file(), *lora_file, scale));
    auto adapter = load_lora(lora_bytes, base);
    test::ReferenceForward ref(*merged);
    std::vector<std::vector<float>> expect;
    for (int32_t t : kTokens) expect.push_back(ref.step(t));
    LoraBinding bind{adapter.get(), scale};
    double worst = 0, moved = 0;
    for (int chunk : {1, 4, 11}) {
        auto got = run_batched(base, {kTokens}, {&bind}, chunk)[0];
        for (size_t i = 0; i < kTokens.size(); i++) worst = std::max(worst, max_rel_diff(got[i], expect[i]));
    }
    auto plain = run_batched(base, {kTokens}, {nullptr}, 4)[0];
    for (size_t i = 0; i < kTokens.size(); i++) moved = std::max(moved, max_rel_diff(plain[i], expect[i]));
    std::printf("%-34s worst relative error vs merged reference %.2e (tolerance %.0e); adapter moves logits by %.2e\n",
                label, worst, tol, moved);
    assert_true(worst <= tol);
    return moved;
}

}  // namespace

static void test_f32_base_matches_merged(void**) {
    test::SyntheticSpec s;
    test::LoraSpec l;
    l.targets = test::all_layer_targets(s.n_layer);
    l.targets.push_back({"token_embd.weight"});
    l.targets[9].a_type = gguf::TensorType::Q8_0;  // dequantized to F32 at load
    assert_true(check_against_merged(s, l, 0.75f, 1e-4, "F32 base, F32 adapter") > 0.05);
    l.write_alpha = false;  // alpha absent: s is the user scale alone
    assert_true(check_against_merged(s, l, 0.3f, 1e-4, "F32 base, no alpha") > 0.05);
    // F16 matrices (used in place) multiply F16-rounded activations, as
    // llama.cpp pairs them: F16 rounding error on a delta as large as the base
    // product itself here (it moves the logits by over 100%).
    l.write_alpha = true;
    for (auto& t : l.targets) t.a_type = t.b_type = gguf::TensorType::F16;
    assert_true(check_against_merged(s, l, 0.75f, 5e-3, "F32 base, F16 adapter") > 0.05);
}

static void test_quantized_base_matches_merged(void**) {
    // The base product uses 8-bit activations, so the tolerance is that of
    // test_model_forward's quantized types; the adapter's part is exact F32.
    for (gguf::TensorType t : {gguf::TensorType::Q8_0, gguf::TensorType::Q4_K}) {
        test::SyntheticSpec s;
        s.n_embd = 256;
        s.n_ff = 512;
        s.weight_type = t;
        test::LoraSpec l;
        l.rank = 8;
        l.alpha = 16;
        l.targets = test::all_layer_targets(s.n_layer, gguf::TensorType::F16);
        assert_true(check_against_merged(s, l, 1.0f, 3e-2, gguf::tensor_type_info((uint32_t)t)->name) > 0.1);
    }
}

static void test_mixed_adapters_in_one_batch(void**) {
    test::SyntheticSpec s;
    auto base = load_bytes(test::synthetic_model(s));
    test::LoraSpec l1, l2;
    l1.targets = test::all_layer_targets(s.n_layer);
    l2.targets = {{"blk.0.attn_v.weight", gguf::TensorType::F16, gguf::TensorType::F16},
                  {"blk.1.ffn_down.weight"}};
    l2.seed = 99;
    l2.rank = 2;
    auto a1 = load_lora(test::synthetic_lora(base->file(), l1), base);
    auto a2 = load_lora(test::synthetic_lora(base->file(), l2), base);
    LoraBinding b1{a1.get(), 1.0f}, b2{a2.get(), 0.5f};
    const std::vector<int32_t> p1 = kTokens, p2 = {1, 70, 71, 72, 73}, p3 = {1, 262, 263, 100};
    // Each alone, then all three in the same batches: identical logits.
    auto alone1 = run_batched(base, {p1}, {&b1}, 3)[0];
    auto alone2 = run_batched(base, {p2}, {nullptr}, 3)[0];
    auto alone3 = run_batched(base, {p3}, {&b2}, 3)[0];
    auto together = run_batched(base, {p1, p2, p3}, {&b1, nullptr, &b2}, 3);
    assert_true(together[0] == alone1);
    assert_true(together[1] == alone2);
    assert_true(together[2] == alone3);
    // And the adapters did act: the same prompt with and without differs.
    auto plain1 = run_batched(base, {p1}, {nullptr}, 3)[0];
    assert_true(max_rel_diff(plain1.back(), alone1.back()) > 0.05);
}

static void test_bad_adapters_refused(void**) {
    test::SyntheticSpec s;
    auto base = load_bytes(test::synthetic_model(s));
    test::LoraSpec good;
    good.targets = {{"blk.0.attn_q.weight"}, {"blk.1.ffn_up.weight"}};
    {
        auto a = load_lora(test::synthetic_lora(base->file(), good), base);
        assert_int_equal(a->n_weights(), 2);
        assert_int_equal(a->max_rank(), 4);
        assert_true(a->alpha() == 8.0f);
        assert_int_equal(a->mapped_bytes(), 4 * 4 * (64 + 64) + 4 * 4 * (64 + 96));
        assert_int_equal(a->owned_bytes(), 0);
    }
    // An adapter made for another base model: wider embeddings.
    test::SyntheticSpec other = s;
    other.n_embd = 128;
    auto other_base = load_bytes(test::synthetic_model(other));
    expect_lora_error(test::synthetic_lora(other_base->file(), good), base, MW_ERR_INVALID_ARGUMENT,
                      "do not fit the base tensor");
    // ... with a tensor the base does not have (more layers).
    test::LoraSpec deeper = good;
    deeper.targets.push_back({"blk.5.attn_q.weight"});
    expect_lora_error(test::synthetic_lora(base->file(), deeper), base, MW_ERR_INVALID_ARGUMENT, "does not have");
    // ... for another architecture.
    test::LoraSpec arch = good;
    arch.arch = "qwen2";
    expect_lora_error(test::synthetic_lora(base->file(), arch), base, MW_ERR_INVALID_ARGUMENT, "architecture 'qwen2'");
    // Not a LoRA adapter.
    test::LoraSpec not_adapter = good;
    not_adapter.general_type = "model";
    expect_lora_error(test::synthetic_lora(base->file(), not_adapter), base, MW_ERR_FORMAT, "general.type");
    test::LoraSpec not_lora = good;
    not_lora.adapter_type = "ia3";
    expect_lora_error(test::synthetic_lora(base->file(), not_lora), base, MW_ERR_FORMAT, "adapter.type");
    // Half a pair.
    test::LoraSpec half = good;
    half.keep = [](const std::string& n) { return n != "blk.1.ffn_up.weight.lora_b"; };
    expect_lora_error(test::synthetic_lora(base->file(), half), base, MW_ERR_FORMAT, "no lora_b");
    // A stored untransposed: ranks disagree.
    test::LoraSpec flipped = good;
    flipped.reshape = [](const std::string& n, std::vector<uint64_t>& ne) {
        if (n == "blk.0.attn_q.weight.lora_a") ne[1] = 5;
    };
    expect_lora_error(test::synthetic_lora(base->file(), flipped), base, MW_ERR_FORMAT, "disagree on the rank");
    // Truncated file.
    std::vector<uint8_t> cut = test::synthetic_lora(base->file(), good);
    cut.resize(cut.size() - 100);
    expect_lora_error(cut, base, MW_ERR_FORMAT, "");
    // The embedding of a model whose output head is tied to it.
    test::SyntheticSpec tied = s;
    tied.tied_output = true;
    auto tied_base = load_bytes(test::synthetic_model(tied));
    test::LoraSpec embd;
    embd.targets = {{"token_embd.weight"}};
    expect_lora_error(test::synthetic_lora(tied_base->file(), embd), tied_base, MW_ERR_UNSUPPORTED, "tied");
    // A model file is not an adapter.
    expect_lora_error(test::synthetic_model(s), base, MW_ERR_FORMAT, "general.type");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_base_matches_merged),
        cmocka_unit_test(test_quantized_base_matches_merged),
        cmocka_unit_test(test_mixed_adapters_in_one_batch),
        cmocka_unit_test(test_bad_adapters_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
