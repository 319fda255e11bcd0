// Teacher-forced agreement with llama.cpp: the fixture holds, for every
// position of a ~500-token text, llama.cpp's top-64 next-token ids and
// log-probabilities (log-softmax over the full vocabulary). memwise runs the
// same tokens and we compare distributions:
//  - top-1 agreement: memwise's argmax equals llama.cpp's argmax;
//  - KL(llama.cpp || memwise) over the top-64 tokens plus one bucket for the
//    remaining mass (a lower bound on the full KL, tight when the top 64 hold
//    almost all the mass, which the test prints).
#include "model/model.h"
#include "runtime/backend.h"
#include "runtime/executor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
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

struct Teacher {
    uint32_t n_tokens = 0, k = 0, n_vocab = 0;
    std::vector<int32_t> tokens, ids;
    std::vector<float> logprobs;
};

bool read_teacher(const std::string& path, Teacher* t) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    char magic[4];
    uint32_t version;
    f.read(magic, 4);
    f.read((char*)&version, 4);
    f.read((char*)&t->n_tokens, 4);
    f.read((char*)&t->k, 4);
    f.read((char*)&t->n_vocab, 4);
    if (std::string(magic, 4) != "MWTF" || version != 1) return false;
    t->tokens.resize(t->n_tokens);
    f.read((char*)t->tokens.data(), 4 * t->n_tokens);
    t->ids.resize((size_t)t->n_tokens * t->k);
    t->logprobs.resize((size_t)t->n_tokens * t->k);
    for (uint32_t p = 0; p < t->n_tokens; p++) {
        f.read((char*)&t->ids[(size_t)p * t->k], 4 * t->k);
        f.read((char*)&t->logprobs[(size_t)p * t->k], 4 * t->k);
    }
    return (bool)f;
}

void check(const char* model_file, const char* fixture, double min_top1, double max_mean_kl) {
    const char* path = mw_test_find_model(model_file);
    if (!path) {
        std::printf("SKIP: model %s not found; run scripts/setup.sh\n", model_file);
        skip();
    }
    Teacher t;
    const std::string fx = std::string(mw_test_data_dir()) + "/" + fixture;
    if (!read_teacher(fx, &t)) fail_msg("cannot read fixture %s", fx.c_str());
    auto m = Model::load(path);
    assert_int_equal((int)t.n_vocab, m->config().n_vocab);
    const int chunk = 64, n_ctx = (int)t.n_tokens + 16;
    KvCache kv(m->config(), std::getenv("MW_TEACHER_F32KV") ? KvType::F32 : KvType::F16, 16, n_ctx / 16 + 1);  // F16 KV, as llama.cpp default
    ThreadPool pool(2);
    // MEMWISE_TEST_BACKEND=cuda (bench/gpu-check.sh) runs the same check on the CUDA executor.
    StepExecutorOptions so;
    so.backend = mw_test_backend() ? Backend::Cuda : Backend::Cpu;
    so.max_batch_tokens = so.max_logit_rows = chunk;
    so.n_ctx = n_ctx;
    std::unique_ptr<StepExecutor> ex = make_step_executor(m, kv, pool, so);
    BlockTable table;
    assert_true(kv.reserve(table, (int32_t)t.n_tokens));

    const int V = m->config().n_vocab;
    std::vector<double> kls;
    int agree = 0;
    double min_mass = 1.0;
    std::vector<double> lq((size_t)V);
    Batch b;
    for (uint32_t i = 0; i < t.n_tokens; i += chunk) {
        b.clear();
        b.tables.push_back(&table);
        for (uint32_t j = i; j < std::min(t.n_tokens, i + chunk); j++)
            b.tokens.push_back(BatchToken{t.tokens[j], (int32_t)j, 0, true});
        ex->forward(b);
        for (size_t r = 0; r < b.tokens.size(); r++) {
            const size_t pos = i + r;
            const float* logits = ex->logits((int32_t)r);
            // memwise log-softmax
            double mx = -1e300;
            int argmax = 0;
            for (int v = 0; v < V; v++)
                if (logits[v] > mx) { mx = logits[v]; argmax = v; }
            double sum = 0;
            for (int v = 0; v < V; v++) sum += std::exp((double)logits[v] - mx);
            const double lse = mx + std::log(sum);
            const int32_t* ids = &t.ids[pos * t.k];
            const float* lp = &t.logprobs[pos * t.k];
            int teacher_top = ids[0];
            for (uint32_t j = 1; j < t.k; j++)
                if (lp[j] > lp[std::find(ids, ids + t.k, teacher_top) - ids]) teacher_top = ids[j];
            agree += argmax == teacher_top ? 1 : 0;
            double kl = 0, p_mass = 0, q_mass = 0;
            for (uint32_t j = 0; j < t.k; j++) {
                const double p = std::exp((double)lp[j]);
                const double logq = (double)logits[ids[j]] - lse;
                kl += p * ((double)lp[j] - logq);
                p_mass += p;
                q_mass += std::exp(logq);
            }
            const double p_rest = std::max(0.0, 1.0 - p_mass), q_rest = std::max(1e-300, 1.0 - q_mass);
            if (p_rest > 0) kl += p_rest * std::log(p_rest / q_rest);
            kls.push_back(kl);
            if (std::getenv("MW_TEACHER_VERBOSE"))
                std::printf("pos %zu token %d: KL %.6f memwise top %d, llama.cpp top %d\n", pos, t.tokens[pos], kl,
                            argmax, teacher_top);
            min_mass = std::min(min_mass, p_mass);
        }
    }
    double mean = 0;
    for (double k : kls) mean += k;
    mean /= (double)kls.size();
    std::vector<double> sorted = kls;
    std::sort(sorted.begin(), sorted.end());
    const double p99 = sorted[(size_t)(0.99 * (double)(sorted.size() - 1))];
    const double top1 = (double)agree / (double)kls.size();
    std::printf("%s: %zu positions, top-1 agreement %.4f, mean KL %.6f nats, p99 KL %.6f, max KL %.6f, "
                "smallest top-%u mass %.4f\n",
                model_file, kls.size(), top1, mean, p99, sorted.back(), t.k, min_mass);
    assert_true(top1 >= min_top1);
    assert_true(mean <= max_mean_kl);
}

}  // namespace

static void test_teacher_forced_smollm2(void**) { check(MW_SMOLLM_MODEL, "teacher_smollm2.bin", 0.99, 0.005); }
static void test_teacher_forced_stories(void**) { check(MW_STORIES_MODEL, "teacher_stories260K.bin", 0.99, 0.005); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_teacher_forced_stories),
        cmocka_unit_test(test_teacher_forced_smollm2),
    };
    return cmocka_run_group_tests_name("teacher_forced", tests, NULL, NULL);
}
