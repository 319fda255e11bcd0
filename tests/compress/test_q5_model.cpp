// Q5_0 and Q5_1 end to end on stories260K: memwise's quantizer writes the
// file, the loader takes it, the CPU kernels run it, and its next-token
// distributions stay closer to the F32 model's than Q4_0's / Q4_1's do (KL on
// tests/data/english.txt). Skips when the model is absent.
#include "base/error.h"
#include "model/model.h"
#include "tools/eval/eval.h"
#include "tools/quantize/quantize.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

extern "C" {
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
}
#include "test_util.h"

using namespace mw;
using gguf::TensorType;

namespace {

std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

struct Result {
    double kl, top1, ppl;
};

// Quantizes the model to t (plain round-to-nearest), loads it and measures it against the F32 model.
Result quantize_and_eval(const char* path, std::shared_ptr<const Model> ref, TensorType t, const std::string& text) {
    const std::string out = "/tmp/mw-test-q5-" + std::to_string(getpid()) + ".gguf";
    compress::QuantizeOptions o;
    o.type = t;
    o.has_type = true;
    o.n_threads = 2;
    const compress::QuantizeReport r = compress::quantize_model(path, out, o);
    auto m = Model::load(out);
    // 64-wide rows take the type itself, the 172-wide ffn_down falls back to F16.
    assert_int_equal((int)m->weights().layers[0].wq.type, (int)t);
    assert_int_equal((int)m->weights().layers[0].w_down.type, (int)TensorType::F16);
    assert_int_equal(r.n_fallback, 5);
    assert_int_equal(m->file().get_uint("general.file_type", 99), compress::file_type_of(t));
    eval::EvalOptions eo;
    eo.n_ctx = 128;
    eo.n_threads = 2;
    eo.max_windows = 4;
    const eval::EvalResult e = eval::evaluate_text(m, ref, text, eo);
    unlink(out.c_str());
    const char* name = gguf::tensor_type_info((uint32_t)t)->name;
    std::printf("%-5s %7llu bytes  KL %.5f  same top %.1f %%  PPL %.3f (F32 %.3f)\n", name,
                (unsigned long long)r.out_bytes, e.kl_mean, 100 * e.top1_agreement, e.perplexity, e.ref_perplexity);
    return {e.kl_mean, e.top1_agreement, e.perplexity};
}

void test_q5_stories_close_to_f32(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto ref = Model::load(path);
    const std::string text = read_text(std::string(mw_test_data_dir()) + "/english.txt");
    const Result q40 = quantize_and_eval(path, ref, TensorType::Q4_0, text);
    const Result q41 = quantize_and_eval(path, ref, TensorType::Q4_1, text);
    const Result q50 = quantize_and_eval(path, ref, TensorType::Q5_0, text);
    const Result q51 = quantize_and_eval(path, ref, TensorType::Q5_1, text);
    // One more bit per weight: measured KL 0.047 / 0.034 against Q4_0's 0.217 and
    // Q4_1's 0.165 (same top 84 / 86 % against 69 / 70 %); asked at most half.
    assert_true(q50.kl > 0 && q50.kl < 0.5 * q40.kl && q50.kl < 0.07);
    assert_true(q51.kl > 0 && q51.kl < 0.5 * q41.kl && q51.kl < 0.05);
    assert_true(q50.top1 > q40.top1 + 0.05 && q51.top1 > q41.top1 + 0.05);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q5_stories_close_to_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
