// Each known llama.cpp GGUF parser CVE pattern has a regression file in the
// fuzz corpus (fuzz/corpus/gguf/cve-*.gguf, written by fuzz/make_corpus.cpp);
// every one must be rejected by mw_model_open with MW_ERR_FORMAT and a
// message, also when it arrives zstd-compressed.
#include <memwise/memwise.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
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

namespace fs = std::filesystem;

static fs::path corpus(const char* sub) {
    const char* src = getenv("MEMWISE_SOURCE_DIR");
    assert_non_null(src);
    return fs::path(src) / "fuzz" / "corpus" / sub;
}

static void expect_format(const fs::path& p, const char* cache_dir) {
    mw_model_options o;
    mw_model_options_init(&o);
    o.cache_dir = cache_dir;
    mw_model* m = nullptr;
    const mw_status st = mw_model_open(p.c_str(), &o, &m);
    std::printf("%s: %s: %s\n", p.filename().c_str(), mw_status_string(st), mw_last_error());
    assert_int_equal(st, MW_ERR_FORMAT);
    assert_null(m);
    assert_true(std::string(mw_last_error()).size() > 0);
}

static void test_cve_files_are_format_errors(void**) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(corpus("gguf")))
        if (e.path().filename().string().rfind("cve-", 0) == 0) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    assert_true(files.size() >= 12);  // one per pattern in the issue, and more
    for (const auto& f : files) expect_format(f, nullptr);
}

static void test_cve_inside_zst_is_format_error(void**) {
    char dir[] = "/tmp/mw_cve_zst_XXXXXX";
    assert_non_null(mkdtemp(dir));
    expect_format(corpus("zst") / "cve-exabyte-inside.gguf.zst", dir);
    fs::remove_all(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cve_files_are_format_errors),
        cmocka_unit_test(test_cve_inside_zst_is_format_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
