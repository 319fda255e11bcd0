// I/O faults on the .gguf.zst decompression cache, through mw_model_open:
// the temporary file or the whole cache directory removed while the entry is
// being written, and a full disk (RLIMIT_FSIZE). Each must be MW_ERR_IO, no
// partial file may be left or taken for complete, and a later open with the
// fault gone must succeed. (Read-only directories and stale or truncated
// entries are covered in tests/gguf/test_compressed_model.cpp.) Linked
// statically so the test's decompression observer is the library's.
#include "gguf/compressed_model.h"
#include "model/synthetic_model.h"

#include <memwise/memwise.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>
#include <zstd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

struct Dir {
    fs::path path;
    Dir() {
        char t[] = "/tmp/mw_iofault_XXXXXX";
        assert_non_null(mkdtemp(t));
        path = t;
    }
    ~Dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// A compressed synthetic model of a few MiB (several output chunks).
fs::path write_zst(const fs::path& dir) {
    mw::test::SyntheticSpec s;
    s.n_embd = 256;
    s.n_ff = 512;
    s.n_layer = 2;
    const std::vector<uint8_t> gguf = mw::test::synthetic_model(s);
    std::vector<uint8_t> z(ZSTD_compressBound(gguf.size()));
    const size_t n = ZSTD_compress(z.data(), z.size(), gguf.data(), gguf.size(), 1);
    assert_false(ZSTD_isError(n));
    const fs::path p = dir / "m.gguf.zst";
    std::ofstream(p, std::ios::binary).write((const char*)z.data(), (std::streamsize)n);
    return p;
}

mw_status open_model(const fs::path& src, const fs::path& cache) {
    mw_model_options o;
    mw_model_options_init(&o);
    const std::string c = cache.string();
    o.cache_dir = c.c_str();
    mw_model* m = nullptr;
    const mw_status st = mw_model_open(src.c_str(), &o, &m);
    printf("  mw_model_open: %s %s\n", mw_status_string(st), st == MW_OK ? "" : mw_last_error());
    if (st == MW_OK) {
        assert_non_null(m);
        mw_model_close(m);
    } else {
        assert_null(m);
    }
    return st;
}

std::vector<fs::path> files_in(const fs::path& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path());
    return out;
}

}  // namespace

static void test_temporary_removed_underneath(void**) {
    Dir d;
    const fs::path src = write_zst(d.path), cache = d.path / "cache";
    bool removed = false;
    mw::gguf::set_decompress_observer([&](uint64_t) {
        for (const auto& f : files_in(cache))
            if (!removed && f.filename().string().rfind(".zst-", 0) == 0) removed = fs::remove(f);
    });
    assert_int_equal(open_model(src, cache), MW_ERR_IO);
    mw::gguf::set_decompress_observer(nullptr);
    assert_true(removed);
    assert_true(files_in(cache).empty());  // nothing partial was renamed into place
    assert_int_equal(open_model(src, cache), MW_OK);
    assert_int_equal(files_in(cache).size(), 1);
}

static void test_cache_dir_removed_underneath(void**) {
    Dir d;
    const fs::path src = write_zst(d.path), cache = d.path / "cache";
    bool removed = false;
    mw::gguf::set_decompress_observer([&](uint64_t) {
        if (!removed) removed = fs::remove_all(cache) > 0;
    });
    assert_int_equal(open_model(src, cache), MW_ERR_IO);
    mw::gguf::set_decompress_observer(nullptr);
    assert_true(removed);
    assert_false(fs::exists(cache));
    assert_int_equal(open_model(src, cache), MW_OK);  // recreated
}

static void test_full_disk(void**) {
    Dir d;
    const fs::path src = write_zst(d.path), cache = d.path / "cache";
    fflush(stdout);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {  // the child: files may not grow past 64 KiB (EFBIG, as on a full disk)
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64u << 10, 64u << 10};
        setrlimit(RLIMIT_FSIZE, &rl);
        const mw_status st = open_model(src, cache);
        fflush(stdout);
        _exit(st == MW_ERR_IO ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(files_in(cache).empty());
    assert_int_equal(open_model(src, cache), MW_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_temporary_removed_underneath),
        cmocka_unit_test(test_cache_dir_removed_underneath),
        cmocka_unit_test(test_full_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
