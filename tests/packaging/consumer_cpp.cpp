// Packaging test: a C++ program built by CMake with find_package(memwise) and
// the imported target memwise::memwise. Same job and same output format as
// consumer_c.c (run.sh compares them), written the way a C++ user would wrap
// the handles.
#include <memwise/memwise.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace {

constexpr unsigned kTokens = 16;

struct ModelCloser { void operator()(mw_model* m) const { mw_model_close(m); } };
struct EngineDestroyer { void operator()(mw_engine* e) const { mw_engine_destroy(e); } };
struct RequestReleaser { void operator()(mw_request* r) const { mw_request_release(r); } };

int fail(const char* what, mw_status st) {
    std::fprintf(stderr, "consumer_cpp: %s: %s: %s\n", what, mw_status_string(st), mw_last_error());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    mw_model* raw_model = nullptr;
    mw_status st = mw_model_open(argv[1], nullptr, &raw_model);
    if (st != MW_OK) return fail("mw_model_open", st);
    std::unique_ptr<mw_model, ModelCloser> model(raw_model);

    mw_engine_options eopts;
    mw_engine_options_init(&eopts);
    eopts.n_threads = 1;
    eopts.n_ctx = 64;
    mw_engine* raw_engine = nullptr;
    st = mw_engine_create(model.get(), &eopts, &raw_engine);
    if (st != MW_OK) return fail("mw_engine_create", st);
    std::unique_ptr<mw_engine, EngineDestroyer> engine(raw_engine);

    const std::string prompt = "Once upon a time";
    mw_request_options ropts;
    mw_request_options_init(&ropts);
    ropts.prompt = prompt.data();
    ropts.prompt_len = prompt.size();
    ropts.max_tokens = kTokens;
    ropts.temperature = 0.0f;  // greedy
    ropts.ignore_eos = 1;      // always exactly kTokens tokens
    ropts.seed = 1;
    mw_request* raw_request = nullptr;
    st = mw_submit(engine.get(), &ropts, &raw_request);
    if (st != MW_OK) return fail("mw_submit", st);
    std::unique_ptr<mw_request, RequestReleaser> request(raw_request);

    std::string out;
    for (;;) {
        mw_event ev;
        std::memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        st = mw_request_next(request.get(), 60000, &ev);
        if (st != MW_OK) return fail("mw_request_next", st);
        if (ev.kind == MW_EVENT_TOKEN) {
            out += std::to_string(ev.token) + '\t' + std::string(ev.text, ev.text_len) + '\n';
        } else if (ev.kind == MW_EVENT_FINISHED) {
            out += "finish=" + std::to_string(ev.finish_reason) + " status=" + std::to_string(ev.status) +
                   " generated=" + std::to_string(ev.n_generated_tokens) + '\n';
            std::fwrite(out.data(), 1, out.size(), stdout);
            if (ev.status != MW_OK || ev.finish_reason != MW_FINISH_LENGTH || ev.n_generated_tokens != kTokens) {
                std::fprintf(stderr, "consumer_cpp: unexpected finish: %.*s\n", static_cast<int>(ev.text_len),
                             ev.text);
                return 1;
            }
            return 0;
        }
    }
}
