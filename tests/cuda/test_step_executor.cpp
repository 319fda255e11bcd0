// The StepExecutor interface on both backends: KV block copy/read/write (what
// copy-on-write and spill use) on the CPU always; with a CUDA device also the
// CUDA executor's blocks, and its forward pass against the CPU executor on the
// same batches: stories260K (F32 weights, GEMV path) logits close, SmolLM2
// (Q4_1, chunks of 64 through the cuBLASLt path) greedy tokens mostly equal,
// single-token steps (CUDA graphs) as well, and the device argmax equal to the
// argmax of the logits it returns; a Q8_0 KV cache (KvCache's row layout, read
// and written by the CUDA kernels) on SmolLM2, and refused where head_dim is
// not a multiple of 32 (stories260K).
#include "base/error.h"
#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/backend.h"
#include "runtime/thread_pool.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
}
#include "test_util.h"

using namespace mw;

namespace {

void check_block_ops(StepExecutor& ex, const KvCache& kv) {
    const size_t bb = kv.block_bytes();
    std::vector<uint8_t> a(bb), b(bb), c(bb);
    std::mt19937 rng(5);
    for (auto& x : a) x = (uint8_t)rng();
    ex.write_kv_block(1, a.data());
    ex.read_kv_block(1, b.data());
    assert_memory_equal(a.data(), b.data(), bb);
    ex.copy_kv_block(1, 2);
    ex.read_kv_block(2, c.data());
    assert_memory_equal(a.data(), c.data(), bb);
}

void test_cpu_block_ops(void** state) {
    (void)state;
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    KvCache kv(m->config(), KvType::F16, 16, 4);
    ThreadPool pool(1);
    StepExecutorOptions so;
    so.max_batch_tokens = so.max_logit_rows = 4;
    so.n_ctx = 64;
    auto ex = make_step_executor(m, kv, pool, so);
    assert_int_equal((int)ex->backend(), (int)Backend::Cpu);
    check_block_ops(*ex, kv);
}

bool cuda_or_skip() {
    std::string why;
    if (cuda_usable(0, &why)) return true;
    printf("SKIP: CUDA executor checks need a GPU: %s\n", why.c_str());
    return false;
}

// Teacher-forced run of `tokens` through both executors in chunks; returns
// how many positions have equal greedy tokens, checks logits within tol when tol > 0.
int compare(const char* model_file, KvType kv_type, int chunk, int n_tokens, double tol) {
    const char* path = mw_test_find_model(model_file);
    if (!path) {
        printf("SKIP: model %s not found\n", model_file);
        return -1;
    }
    auto m = Model::load(path);
    const int V = m->config().n_vocab, n_ctx = n_tokens + 16;
    KvCache kv_cpu(m->config(), kv_type, 16, n_ctx / 16 + 1), kv_gpu(m->config(), kv_type, 16, n_ctx / 16 + 1);
    ThreadPool pool(2);
    StepExecutorOptions so;
    so.max_batch_tokens = so.max_logit_rows = chunk;
    so.n_ctx = n_ctx;
    auto cpu = make_step_executor(m, kv_cpu, pool, so);
    so.backend = Backend::Cuda;
    auto gpu = make_step_executor(m, kv_gpu, pool, so);
    check_block_ops(*gpu, kv_gpu);
    BlockTable t_cpu, t_gpu;
    assert_true(kv_cpu.reserve(t_cpu, n_tokens));
    assert_true(kv_gpu.reserve(t_gpu, n_tokens));
    std::mt19937 rng(9);
    std::vector<int32_t> tokens((size_t)n_tokens);
    for (auto& x : tokens) x = (int32_t)(3 + rng() % (uint32_t)(V - 3));
    int same = 0;
    double worst = 0;
    // Chunks first (the last one may be short), then single-token decode steps:
    // those run through the CUDA graph, captured on the first and replayed.
    const int n_decode = 6;
    for (int i = 0, step = 0; i < n_tokens; i += step) {
        step = i < n_tokens - n_decode ? std::min(chunk, n_tokens - n_decode - i) : 1;
        Batch b_cpu, b_gpu;
        b_cpu.tables.push_back(&t_cpu);
        b_gpu.tables.push_back(&t_gpu);
        for (int j = i; j < i + step; j++) {
            const bool prompt = step > 1;
            b_cpu.tokens.push_back(BatchToken{tokens[(size_t)j], j, 0, true, prompt});
            b_gpu.tokens.push_back(BatchToken{tokens[(size_t)j], j, 0, true, prompt});
        }
        cpu->forward(b_cpu);
        gpu->forward(b_gpu);
        for (int r = 0; r < (int)b_cpu.tokens.size(); r++) {
            const int32_t g_dev = gpu->argmax(r);
            const float* lg = gpu->logits(r);
            const float* lc = cpu->logits(r);
            assert_int_equal(g_dev, greedy_argmax(lg, V));  // device argmax = argmax of what it returned
            same += greedy_argmax(lc, V) == g_dev;
            for (int v = 0; v < V; v++) worst = std::max(worst, std::fabs((double)lg[v] - lc[v]) / (1.0 + std::fabs((double)lc[v])));
        }
    }
    printf("%s: CUDA and CPU executors agree on %d of %d greedy tokens; worst relative logit difference %.3g\n",
           model_file, same, n_tokens, worst);
    if (tol > 0) assert_true(worst <= tol);
    return same;
}

void test_cuda_matches_cpu_stories(void** state) {
    (void)state;
    if (!cuda_or_skip()) skip();
    const int same = compare(MW_STORIES_MODEL, KvType::F32, 24, 100, 2e-3);
    if (same < 0) skip();
    assert_true(same >= 98);
}

void test_cuda_matches_cpu_smollm2(void** state) {
    (void)state;
    if (!cuda_or_skip()) skip();
    // Chunks of 64: the cuBLASLt path on F16 tiles; the CPU quantizes activations to 8 bits.
    const int same = compare(MW_SMOLLM_MODEL, KvType::F16, 64, 160, 0);
    if (same < 0) skip();
    assert_true(same >= 144);  // 90%
}

void test_cuda_q8_0_kv(void** state) {
    (void)state;
    if (!cuda_or_skip()) skip();
    // Both executors quantize K/V rows to Q8_0 the same way (ggml's rounding).
    const int same = compare(MW_SMOLLM_MODEL, KvType::Q8_0, 64, 160, 0);
    if (same < 0) skip();
    assert_true(same >= 144);
}

void test_cuda_q8_0_kv_refused_for_small_heads(void** state) {
    (void)state;
    if (!cuda_or_skip()) skip();
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto m = Model::load(path);
    if (m->config().head_dim % 32 == 0) skip();
    KvCache kv(m->config(), KvType::Q8_0, 16, 4);  // kv_dim is a multiple of 32, head_dim is not
    ThreadPool pool(1);
    StepExecutorOptions so;
    so.backend = Backend::Cuda;
    so.max_batch_tokens = so.max_logit_rows = 4;
    so.n_ctx = 64;
    try {
        make_step_executor(m, kv, pool, so);
        fail_msg("the CUDA executor took a Q8_0 KV cache with head_dim %d", m->config().head_dim);
    } catch (const Error& e) {
        assert_int_equal(e.status(), MW_ERR_UNSUPPORTED);
        printf("refused: %s\n", e.what());
    }
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_block_ops),
        cmocka_unit_test(test_cuda_matches_cpu_stories),
        cmocka_unit_test(test_cuda_matches_cpu_smollm2),
        cmocka_unit_test(test_cuda_q8_0_kv),
        cmocka_unit_test(test_cuda_q8_0_kv_refused_for_small_heads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
