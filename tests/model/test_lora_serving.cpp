// LoRA adapters through the C API: requests with different adapters (and one
// with none) served concurrently in the same batches produce exactly what each
// produces alone; the memory report shows the adapters' bytes; closing an
// adapter while a request uses it is safe; bad adapters and misuse get clear
// statuses (a CUDA engine, where a GPU is present, refuses adapters with
// MW_ERR_UNSUPPORTED). Built against the library only, as a host would use it.
#include "gguf/gguf_file.h"
#include "synthetic_lora.h"
#include "synthetic_model.h"

#include <memwise/memwise.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "test_util.h"

namespace {

std::string write_temp(const std::vector<uint8_t>& bytes) {
    char path[] = "/tmp/mw_lora_serving_XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes.data(), bytes.size()), (ssize_t)bytes.size());
    close(fd);
    return path;
}

struct Fixture {
    std::string model_path, lora1_path, lora2_path, foreign_path;
    mw_model* model = nullptr;
};
Fixture g;

mw_engine* make_engine(uint32_t max_sequences, uint32_t max_batch_tokens) {
    mw_engine_options eo;
    mw_engine_options_init(&eo);
    eo.n_threads = 2;
    eo.n_ctx = 128;
    eo.max_sequences = max_sequences;
    eo.max_batch_tokens = max_batch_tokens;
    eo.kv_type = MW_KV_F32;
    mw_engine* e = nullptr;
    assert_int_equal(mw_engine_create(g.model, &eo, &e), MW_OK);
    return e;
}

mw_request* submit(mw_engine* e, const std::vector<int32_t>& prompt, const mw_adapter* adapter, float scale) {
    mw_request_options o;
    mw_request_options_init(&o);
    o.prompt_tokens = prompt.data();
    o.n_prompt_tokens = prompt.size();
    o.max_tokens = 24;
    o.temperature = 0;
    o.ignore_eos = 1;
    o.adapter = adapter;
    o.adapter_scale = scale;
    mw_request* r = nullptr;
    const mw_status st = mw_submit(e, &o, &r);
    if (st != MW_OK) fail_msg("mw_submit: %s: %s", mw_status_string(st), mw_last_error());
    return r;
}

std::vector<int32_t> collect(mw_request* r) {
    std::vector<int32_t> out;
    mw_event ev;
    ev.struct_size = sizeof ev;
    for (;;) {
        assert_int_equal(mw_request_next(r, -1, &ev), MW_OK);
        if (ev.kind == MW_EVENT_TOKEN) out.push_back(ev.token);
        if (ev.kind == MW_EVENT_FINISHED) {
            if (ev.status != MW_OK) fail_msg("request failed: %.*s", (int)ev.text_len, ev.text);
            break;
        }
    }
    mw_request_release(r);
    return out;
}

mw_adapter* open_adapter(const std::string& path) {
    mw_adapter* a = nullptr;
    const mw_status st = mw_adapter_open(g.model, path.c_str(), &a);
    if (st != MW_OK) fail_msg("mw_adapter_open: %s: %s", mw_status_string(st), mw_last_error());
    return a;
}

mw_memory_report report(mw_engine* e) {
    mw_memory_report m;
    m.struct_size = sizeof m;
    assert_int_equal(mw_engine_memory(e, &m), MW_OK);
    return m;
}

// The engine drops a finished sequence (and its hold on the adapter) just
// after delivering the finish event, so wait briefly for a figure to settle.
uint64_t settled_mapped(mw_engine* e, uint64_t want) {
    uint64_t got = 0;
    for (int i = 0; i < 200; i++) {
        got = report(e).adapters_mapped_bytes;
        if (got == want) break;
        usleep(10000);
    }
    return got;
}

const std::vector<int32_t> kP1 = {1, 260, 261, 262, 70, 80, 90, 263, 100}, kP2 = {1, 70, 71, 72, 73, 74},
                           kP3 = {1, 262, 263, 100, 101, 102, 103};

}  // namespace

static int setup(void**) {
    mw::test::SyntheticSpec s;
    const std::vector<uint8_t> model_bytes = mw::test::synthetic_model(s);
    g.model_path = write_temp(model_bytes);
    auto base = mw::gguf::File::from_memory(model_bytes.data(), model_bytes.size());
    mw::test::LoraSpec l1, l2;
    l1.targets = mw::test::all_layer_targets(s.n_layer);
    l1.magnitude = 2.0f;
    l2.targets = mw::test::all_layer_targets(s.n_layer, mw::gguf::TensorType::F16);
    l2.targets[2].a_type = mw::gguf::TensorType::Q8_0;  // dequantized at open: anonymous bytes
    l2.seed = 3;
    l2.rank = 2;
    l2.magnitude = 2.0f;
    g.lora1_path = write_temp(mw::test::synthetic_lora(*base, l1));
    g.lora2_path = write_temp(mw::test::synthetic_lora(*base, l2));
    mw::test::SyntheticSpec other = s;
    other.n_ff = 128;
    const std::vector<uint8_t> other_bytes = mw::test::synthetic_model(other);
    auto other_base = mw::gguf::File::from_memory(other_bytes.data(), other_bytes.size());
    g.foreign_path = write_temp(mw::test::synthetic_lora(*other_base, l1));
    return mw_model_open(g.model_path.c_str(), nullptr, &g.model) == MW_OK ? 0 : -1;
}

static int teardown(void**) {
    mw_model_close(g.model);
    for (const std::string& p : {g.model_path, g.lora1_path, g.lora2_path, g.foreign_path}) unlink(p.c_str());
    return 0;
}

static void test_mixed_requests_match_each_alone(void**) {
    mw_adapter* a1 = open_adapter(g.lora1_path);
    mw_adapter* a2 = open_adapter(g.lora2_path);
    mw_engine* e = make_engine(3, 4);  // 4-token steps: prefill chunks share batches with decodes
    const std::vector<int32_t> alone1 = collect(submit(e, kP1, a1, 1.0f));
    const std::vector<int32_t> alone2 = collect(submit(e, kP2, nullptr, 1.0f));
    const std::vector<int32_t> alone3 = collect(submit(e, kP3, a2, 0.5f));
    mw_request* r1 = submit(e, kP1, a1, 1.0f);
    mw_request* r2 = submit(e, kP2, nullptr, 1.0f);
    mw_request* r3 = submit(e, kP3, a2, 0.5f);
    assert_true(collect(r1) == alone1);
    assert_true(collect(r2) == alone2);
    assert_true(collect(r3) == alone3);
    // The adapters act: without them the same prompts continue differently.
    assert_true(collect(submit(e, kP1, nullptr, 1.0f)) != alone1);
    assert_true(collect(submit(e, kP3, nullptr, 1.0f)) != alone3);
    // Scale 0 is the base model.
    assert_true(collect(submit(e, kP1, a1, 0.0f)) == collect(submit(e, kP1, nullptr, 1.0f)));
    // A caller built against the header before the adapter fields.
    mw_request_options o;
    mw_request_options_init(&o);
    o.struct_size = offsetof(mw_request_options, adapter);
    o.prompt_tokens = kP2.data();
    o.n_prompt_tokens = kP2.size();
    o.max_tokens = 24;
    o.temperature = 0;
    o.ignore_eos = 1;
    mw_request* old = nullptr;
    assert_int_equal(mw_submit(e, &o, &old), MW_OK);
    assert_true(collect(old) == alone2);
    mw_engine_destroy(e);
    mw_adapter_close(a1);
    mw_adapter_close(a2);
}

static void test_memory_report_and_close_in_use(void**) {
    mw_engine* e = make_engine(2, 64);
    mw_adapter* a1 = open_adapter(g.lora1_path);
    mw_adapter* a2 = open_adapter(g.lora2_path);
    mw_adapter_info i1, i2;
    i1.struct_size = i2.struct_size = sizeof i1;
    assert_int_equal(mw_adapter_info_get(a1, &i1), MW_OK);
    assert_int_equal(mw_adapter_info_get(a2, &i2), MW_OK);
    std::printf("adapter 1: %u tensors, rank %u, alpha %.1f, %llu mapped, %llu anonymous bytes\n", i1.n_tensors,
                i1.max_rank, (double)i1.alpha, (unsigned long long)i1.mapped_bytes,
                (unsigned long long)i1.anonymous_bytes);
    assert_int_equal(i1.n_tensors, 2 * 7 + 1);
    assert_int_equal(i1.max_rank, 4);
    assert_true(i1.alpha == 8.0f);
    assert_int_equal(i1.anonymous_bytes, 0);
    assert_true(i1.mapped_bytes > 0);
    assert_true(i2.anonymous_bytes > 0);  // the Q8_0 matrix, dequantized to F32
    assert_int_equal(report(e).adapters_mapped_bytes, 0);  // no request has used one yet

    // The first request runs with a1 (closed at once: the request keeps it
    // alive); the second, with a2, is queued behind a long first one.
    const std::vector<int32_t> expect = collect(submit(e, kP1, a1, 1.0f));
    mw_request* r1 = submit(e, kP1, a1, 1.0f);
    mw_request* r2 = submit(e, kP3, a2, 0.5f);
    mw_adapter_close(a1);
    const mw_memory_report during = report(e);
    assert_int_equal(during.adapters_mapped_bytes, i1.mapped_bytes + i2.mapped_bytes);
    assert_int_equal(during.adapters_anonymous_bytes, i2.anonymous_bytes);
    assert_true(collect(r1) == expect);
    collect(r2);
    // a1 is gone once its last request is; a2 is still open.
    assert_int_equal(settled_mapped(e, i2.mapped_bytes), i2.mapped_bytes);
    assert_int_equal(report(e).adapters_anonymous_bytes, i2.anonymous_bytes);
    mw_adapter_close(a2);
    assert_int_equal(settled_mapped(e, 0), 0);
    // A closed handle is refused, not a crash.
    mw_request_options o;
    mw_request_options_init(&o);
    o.prompt_tokens = kP1.data();
    o.n_prompt_tokens = kP1.size();
    o.max_tokens = 8;
    o.adapter = a1;
    mw_request* r = nullptr;
    assert_int_equal(mw_submit(e, &o, &r), MW_ERR_INVALID_ARGUMENT);
    assert_null(r);
    mw_engine_destroy(e);
}

static void test_misuse_refused(void**) {
    mw_adapter* a = nullptr;
    assert_int_equal(mw_adapter_open(g.model, g.foreign_path.c_str(), &a), MW_ERR_INVALID_ARGUMENT);
    std::printf("foreign adapter: %s\n", mw_last_error());
    assert_non_null(std::strstr(mw_last_error(), "another base model"));
    assert_null(a);
    assert_int_equal(mw_adapter_open(g.model, g.model_path.c_str(), &a), MW_ERR_FORMAT);
    assert_int_equal(mw_adapter_open(g.model, "/nonexistent/adapter.gguf", &a), MW_ERR_IO);
    assert_int_equal(mw_adapter_open(nullptr, g.lora1_path.c_str(), &a), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_adapter_open(g.model, nullptr, &a), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_adapter_open(g.model, g.lora1_path.c_str(), nullptr), MW_ERR_INVALID_ARGUMENT);
    mw_adapter_close(nullptr);

    // An adapter opened on another model handle (even of the same file).
    mw_model* other = nullptr;
    assert_int_equal(mw_model_open(g.model_path.c_str(), nullptr, &other), MW_OK);
    mw_adapter* a_other = nullptr;
    assert_int_equal(mw_adapter_open(other, g.lora1_path.c_str(), &a_other), MW_OK);
    mw_model_close(other);  // the adapter keeps its model alive
    mw_engine* e = make_engine(1, 64);
    mw_request_options o;
    mw_request_options_init(&o);
    o.prompt_tokens = kP1.data();
    o.n_prompt_tokens = kP1.size();
    o.max_tokens = 8;
    o.adapter = a_other;
    mw_request* r = nullptr;
    assert_int_equal(mw_submit(e, &o, &r), MW_ERR_INVALID_ARGUMENT);
    std::printf("adapter of another model: %s\n", mw_last_error());
    mw_adapter_close(a_other);
    // A non-finite scale.
    mw_adapter* a1 = open_adapter(g.lora1_path);
    o.adapter = a1;
    o.adapter_scale = NAN;
    assert_int_equal(mw_submit(e, &o, &r), MW_ERR_INVALID_ARGUMENT);
    mw_adapter_close(a1);
    mw_engine_destroy(e);
}

// LoRA deltas run on the CPU executor only: a CUDA engine refuses the request.
static void test_cuda_engine_refuses_adapters(void**) {
    if (!mw_backend_available(MW_BACKEND_CUDA)) {
        std::printf("SKIP: no CUDA device (or built without CUDA)\n");
        skip();
    }
    mw_engine_options eo;
    mw_engine_options_init(&eo);
    eo.n_ctx = 128;
    eo.kv_type = MW_KV_F32;
    eo.backend = MW_BACKEND_CUDA;
    mw_engine* e = nullptr;
    assert_int_equal(mw_engine_create(g.model, &eo, &e), MW_OK);
    mw_adapter* a = open_adapter(g.lora1_path);
    mw_request_options o;
    mw_request_options_init(&o);
    o.prompt_tokens = kP1.data();
    o.n_prompt_tokens = kP1.size();
    o.max_tokens = 4;
    o.temperature = 0;
    o.ignore_eos = 1;
    o.adapter = a;
    mw_request* r = nullptr;
    assert_int_equal(mw_submit(e, &o, &r), MW_ERR_UNSUPPORTED);
    std::printf("adapter on a CUDA engine: %s\n", mw_last_error());
    assert_non_null(std::strstr(mw_last_error(), "CPU backend only"));
    assert_null(r);
    o.adapter = nullptr;  // the same request without the adapter runs
    assert_int_equal(mw_submit(e, &o, &r), MW_OK);
    assert_int_equal((int)collect(r).size(), 4);
    mw_adapter_close(a);
    mw_engine_destroy(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_requests_match_each_alone),
        cmocka_unit_test(test_memory_report_and_close_in_use),
        cmocka_unit_test(test_misuse_refused),
        cmocka_unit_test(test_cuda_engine_refuses_adapters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
