// .gguf.zst models: decompressed once into a content-addressed cache entry that
// later opens reuse; the model behaves exactly like the uncompressed file;
// truncated or corrupt input is MW_ERR_FORMAT, a full disk or an unwritable
// cache directory MW_ERR_IO, and no partial entry is ever left behind; the
// decompression streams through fixed buffers (anonymous memory stays small).
#include "base/error.h"
#include "gguf/compressed_model.h"
#include "model/model.h"
#include "model/reference_forward.h"
#include "model/synthetic_model.h"

#include <memwise/memwise.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <ftw.h>
#include <malloc.h>
#include <signal.h>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
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

using Bytes = std::vector<uint8_t>;
constexpr size_t kTrailer = 48;  // bytes after the GGUF in a cache entry

// A fresh directory, removed with everything in it at the end of the scope.
struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/mw_zst_XXXXXX";
        assert_non_null(mkdtemp(t));
        path = t;
    }
    ~TempDir() {
        chmod(path.c_str(), 0700);
        nftw(path.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
             FTW_DEPTH | FTW_PHYS);
    }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_file(const std::string& path, const Bytes& b) {
    FILE* f = std::fopen(path.c_str(), "wb");
    assert_non_null(f);
    if (!b.empty()) assert_int_equal(std::fwrite(b.data(), 1, b.size(), f), b.size());
    assert_int_equal(std::fclose(f), 0);
}

Bytes read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    assert_true(f.good());
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// zstd with a content checksum, as the zstd command line writes it.
Bytes compress(const Bytes& src, int level = 3) {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    Bytes out(ZSTD_compressBound(src.size()));
    const size_t n = ZSTD_compress2(c, out.data(), out.size(), src.data(), src.size());
    ZSTD_freeCCtx(c);
    assert_false(ZSTD_isError(n));
    out.resize(n);
    return out;
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    DIR* d = opendir(dir.c_str());
    if (!d) return names;
    while (struct dirent* e = readdir(d))
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.push_back(e->d_name);
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

ino_t inode_of(const std::string& path) {
    struct stat st;
    assert_int_equal(stat(path.c_str(), &st), 0);
    return st.st_ino;
}

// Expects `fn` to throw mw::Error with `status` and a message containing `needle`.
template <class Fn>
void expect_error(Fn fn, mw_status status, const char* needle) {
    try {
        fn();
        fail_msg("no error; expected %s with \"%s\"", mw_status_string(status), needle);
    } catch (const Error& e) {
        printf("  expected error: %s\n", e.what());
        if (e.status() != status || !std::strstr(e.what(), needle))
            fail_msg("got %s \"%s\"; expected %s with \"%s\"", mw_status_string(e.status()), e.what(),
                     mw_status_string(status), needle);
    }
}

std::shared_ptr<const Model> load(const std::string& path, const std::string& cache_dir) {
    ModelLoadOptions o;
    o.cache_dir = cache_dir;
    return Model::load(path, o);
}

// The two models tokenize `text` alike and give bit-identical logits for it.
void expect_same_model(const Model& a, const Model& b, const char* text) {
    assert_int_equal(a.config().n_vocab, b.config().n_vocab);
    assert_int_equal(a.config().n_layer, b.config().n_layer);
    const std::vector<int32_t> ta = a.tokenizer().encode(text, true, false);
    const std::vector<int32_t> tb = b.tokenizer().encode(text, true, false);
    assert_true(ta == tb);
    assert_true(ta.size() >= 3);
    test::ReferenceForward fa(a), fb(b);
    for (size_t i = 0; i < std::min<size_t>(ta.size(), 6); i++) {
        const std::vector<float> la = fa.step(ta[i]), lb = fb.step(tb[i]);
        assert_int_equal(la.size(), lb.size());
        assert_memory_equal(la.data(), lb.data(), la.size() * sizeof(float));
    }
}

test::SyntheticSpec spec_with_seed(uint32_t seed) {
    test::SyntheticSpec s;
    s.seed = seed;
    return s;
}

// A synthetic model of a few MiB (for the full-disk limit).
test::SyntheticSpec medium_spec() {
    test::SyntheticSpec s;
    s.n_embd = 128;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.n_ff = 512;
    return s;
}

// ---- round trip and reuse ---------------------------------------------------

void test_roundtrip_and_reuse(void**) {
    TempDir d;
    const Bytes gguf = test::synthetic_model(spec_with_seed(1));
    write_file(d / "m.gguf", gguf);
    write_file(d / "m.gguf.zst", compress(gguf));
    const std::string cache = d / "cache/sub";  // created on demand, with its parent

    const uint64_t before = gguf::compressed_model_decompressions();
    auto plain = load(d / "m.gguf", cache);
    struct stat st;
    assert_int_not_equal(stat((d / "cache").c_str(), &st), 0);  // a plain file needs no cache
    auto z = load(d / "m.gguf.zst", cache);
    assert_int_equal(gguf::compressed_model_decompressions(), before + 1);
    expect_same_model(*plain, *z, " the cat sat");

    // One entry, named by content, holding the GGUF bytes then the trailer; no temporaries.
    const std::vector<std::string> names = list_dir(cache);
    assert_int_equal(names.size(), 1);
    assert_true(names[0].rfind("zst-", 0) == 0 && names[0].size() == 4 + 32 + 5);
    const std::string entry = cache + "/" + names[0];
    assert_string_equal(z->file().path().c_str(), entry.c_str());
    const Bytes cached = read_file(entry);
    assert_int_equal(cached.size(), gguf.size() + kTrailer);
    assert_memory_equal(cached.data(), gguf.data(), gguf.size());
    assert_int_equal(stat(cache.c_str(), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    // A second open maps the same entry without decompressing again.
    const ino_t ino = inode_of(entry);
    auto z2 = load(d / "m.gguf.zst", cache);
    assert_int_equal(gguf::compressed_model_decompressions(), before + 1);
    assert_string_equal(z2->file().path().c_str(), entry.c_str());
    assert_int_equal(inode_of(entry), ino);
    expect_same_model(*plain, *z2, " a cat");
}

void test_content_addressing(void**) {
    TempDir d;
    const Bytes a = compress(test::synthetic_model(spec_with_seed(1)));
    const Bytes b = compress(test::synthetic_model(spec_with_seed(2)));
    write_file(d / "a.gguf.zst", a);
    write_file(d / "copy-of-a.gguf.zst", a);
    write_file(d / "b.gguf.zst", b);
    const std::string cache = d / "cache";
    const uint64_t before = gguf::compressed_model_decompressions();
    const std::string ea = gguf::resolve_compressed_model(d / "a.gguf.zst", cache);
    // The same bytes under another name: the same entry, no decompression.
    assert_string_equal(gguf::resolve_compressed_model(d / "copy-of-a.gguf.zst", cache).c_str(), ea.c_str());
    assert_int_equal(gguf::compressed_model_decompressions(), before + 1);
    // Other content: another entry.
    const std::string eb = gguf::resolve_compressed_model(d / "b.gguf.zst", cache);
    assert_int_equal(gguf::compressed_model_decompressions(), before + 2);
    assert_string_not_equal(ea.c_str(), eb.c_str());
    // Same size, one byte different (a different compression level of the same model).
    const Bytes a1 = compress(test::synthetic_model(spec_with_seed(1)), 1);
    assert_true(a1 != a);
    write_file(d / "a1.gguf.zst", a1);
    const std::string ea1 = gguf::resolve_compressed_model(d / "a1.gguf.zst", cache);
    assert_string_not_equal(ea1.c_str(), ea.c_str());
    assert_int_equal(list_dir(cache).size(), 3);
    // Not .zst: the path itself, nothing touched.
    assert_string_equal(gguf::resolve_compressed_model(d / "x.gguf", cache).c_str(), (d / "x.gguf").c_str());
}

void test_stories260k(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    TempDir d;
    const Bytes gguf = read_file(path);
    write_file(d / "stories.gguf.zst", compress(gguf, 9));
    const uint64_t before = gguf::compressed_model_decompressions();
    auto plain = Model::load(path);
    auto z = load(d / "stories.gguf.zst", d / "cache");
    auto z2 = load(d / "stories.gguf.zst", d / "cache");
    assert_int_equal(gguf::compressed_model_decompressions(), before + 1);
    expect_same_model(*plain, *z, "Once upon a time, there was a little girl");
    expect_same_model(*plain, *z2, "The cat sat on the mat.");
}

// A file with the entry's name that memwise did not complete for this source
// is never used: the source is decompressed again and the entry replaced.
void test_stale_or_foreign_entry(void**) {
    TempDir d;
    const Bytes gguf = test::synthetic_model(spec_with_seed(3));
    write_file(d / "m.gguf.zst", compress(gguf));
    write_file(d / "other.gguf.zst", compress(test::synthetic_model(spec_with_seed(4))));
    const std::string cache = d / "cache";
    const std::string entry = gguf::resolve_compressed_model(d / "m.gguf.zst", cache);
    const Bytes good = read_file(entry);
    const std::string other_entry = gguf::resolve_compressed_model(d / "other.gguf.zst", cache);

    const std::vector<Bytes> impostors = {
        Bytes(good.begin(), good.end() - kTrailer),             // the GGUF without its trailer
        Bytes(good.begin(), good.begin() + good.size() / 2),    // a truncated copy
        Bytes(good.size(), 0x5A),                               // same size, foreign content
        read_file(other_entry),                                 // a complete entry of another source
        [&] { Bytes b = good; b[b.size() - 16]++; return b; }(), // its own trailer, decompressed size off by one
    };
    for (const Bytes& fake : impostors) {
        write_file(entry, fake);
        const uint64_t before = gguf::compressed_model_decompressions();
        assert_string_equal(gguf::resolve_compressed_model(d / "m.gguf.zst", cache).c_str(), entry.c_str());
        assert_int_equal(gguf::compressed_model_decompressions(), before + 1);
        assert_true(read_file(entry) == good);
    }
    // A symbolic link with the entry's name (even to a good entry) is replaced too.
    unlink(entry.c_str());
    write_file(d / "elsewhere.gguf", good);
    assert_int_equal(symlink((d / "elsewhere.gguf").c_str(), entry.c_str()), 0);
    const uint64_t before = gguf::compressed_model_decompressions();
    gguf::resolve_compressed_model(d / "m.gguf.zst", cache);
    assert_int_equal(gguf::compressed_model_decompressions(), before + 1);
    struct stat st;
    assert_int_equal(lstat(entry.c_str(), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(list_dir(cache).size(), 2);
}

// ---- bad input --------------------------------------------------------------

void test_truncated_and_corrupt(void**) {
    TempDir d;
    const Bytes z = compress(test::synthetic_model(spec_with_seed(5)));
    const std::string cache = d / "cache";
    assert_true(z.size() > 4096);

    write_file(d / "half.gguf.zst", Bytes(z.begin(), z.begin() + z.size() / 2));
    expect_error([&] { load(d / "half.gguf.zst", cache); }, MW_ERR_FORMAT, "truncated");
    write_file(d / "short.gguf.zst", Bytes(z.begin(), z.end() - 1));  // only the checksum's last byte missing
    expect_error([&] { load(d / "short.gguf.zst", cache); }, MW_ERR_FORMAT, "truncated");
    write_file(d / "header.gguf.zst", Bytes(z.begin(), z.begin() + 6));
    expect_error([&] { load(d / "header.gguf.zst", cache); }, MW_ERR_FORMAT, "truncated");

    Bytes bad = z;
    for (size_t i = bad.size() / 2; i < bad.size() / 2 + 16; i++) bad[i] ^= 0xA5;
    write_file(d / "corrupt.gguf.zst", bad);
    expect_error([&] { load(d / "corrupt.gguf.zst", cache); }, MW_ERR_FORMAT, "corrupt zstd data");
    Bytes one = z;
    one[one.size() / 3] ^= 0x01;  // a single bit: caught by the decoder or the frame checksum
    write_file(d / "bit.gguf.zst", one);
    expect_error([&] { load(d / "bit.gguf.zst", cache); }, MW_ERR_FORMAT, "bit.gguf.zst");

    write_file(d / "plain.gguf.zst", test::synthetic_model(spec_with_seed(5)));  // not compressed at all
    expect_error([&] { load(d / "plain.gguf.zst", cache); }, MW_ERR_FORMAT, "corrupt zstd data in the frame at compressed byte 0");
    write_file(d / "empty.gguf.zst", Bytes());
    expect_error([&] { load(d / "empty.gguf.zst", cache); }, MW_ERR_FORMAT, "empty");
    expect_error([&] { load(d / "missing.gguf.zst", cache); }, MW_ERR_IO, "missing.gguf.zst");

    // Nothing was left in the cache by any of the failures.
    assert_true(list_dir(cache).empty());

    // Valid zstd of something that is not a GGUF: the normal reader rejects it.
    Bytes garbage(100000);
    for (size_t i = 0; i < garbage.size(); i++) garbage[i] = (uint8_t)(i * 2654435761u >> 13);
    write_file(d / "garbage.gguf.zst", compress(garbage));
    expect_error([&] { load(d / "garbage.gguf.zst", cache); }, MW_ERR_FORMAT, "magic");
}

// ---- write failures ---------------------------------------------------------

// Runs fn in a child process; returns its exit status (0: fn returned true).
template <class Fn>
int in_child(Fn fn) {
    fflush(stdout);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        bool ok = false;
        try {
            ok = fn();
        } catch (...) {
        }
        fflush(stdout);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

// Expects resolve to fail with MW_ERR_IO (in a child, after `setup`).
template <class Setup>
void expect_io_error_in_child(const std::string& src, const std::string& cache, Setup setup, const char* needle) {
    const int rc = in_child([&] {
        setup();
        try {
            gguf::resolve_compressed_model(src, cache);
            printf("  no error\n");
            return false;
        } catch (const Error& e) {
            printf("  expected error: %s\n", e.what());
            return e.status() == MW_ERR_IO && std::strstr(e.what(), needle) != nullptr;
        }
    });
    assert_int_equal(rc, 0);
}

void test_full_disk(void**) {
    TempDir d;
    const Bytes gguf = test::synthetic_model(medium_spec());
    assert_true(gguf.size() > (2u << 20));
    write_file(d / "m.gguf.zst", compress(gguf));
    const std::string cache = d / "cache";
    // Files may grow to 1 MiB: writing the entry fails with EFBIG part way, as on a full disk.
    expect_io_error_in_child(d / "m.gguf.zst", cache, [] {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1u << 20, 1u << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
    }, "File too large");
    assert_true(list_dir(cache).empty());  // the temporary is gone, no entry appeared
    // With room, the same source decompresses fine.
    const std::string entry = gguf::resolve_compressed_model(d / "m.gguf.zst", cache);
    assert_int_equal(read_file(entry).size(), gguf.size() + kTrailer);
}

void test_unwritable_cache_dir(void**) {
    TempDir d;
    const Bytes gguf = test::synthetic_model(spec_with_seed(6));
    write_file(d / "m.gguf.zst", compress(gguf));
    write_file(d / "file", Bytes{1, 2, 3});
    expect_error([&] { gguf::resolve_compressed_model(d / "m.gguf.zst", d / "file"); }, MW_ERR_IO, "not a directory");
    expect_error([&] { gguf::resolve_compressed_model(d / "m.gguf.zst", d / "file/sub"); }, MW_ERR_IO,
                 "cannot create cache directory");

    // A read-only directory (for root, the child drops to an unprivileged user first).
    chmod(d.path.c_str(), 0755);
    chmod((d / "m.gguf.zst").c_str(), 0644);
    const std::string ro = d / "ro";
    assert_int_equal(mkdir(ro.c_str(), 0555), 0);
    auto drop_root = [] {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    };
    expect_io_error_in_child(d / "m.gguf.zst", ro, drop_root, "cannot create a temporary file");
    assert_true(list_dir(ro).empty());

    // An entry already there is used from a read-only directory (nothing to write).
    chmod(ro.c_str(), 0755);
    const std::string entry = gguf::resolve_compressed_model(d / "m.gguf.zst", ro);
    chmod(ro.c_str(), 0555);
    const int rc = in_child([&] {
        drop_root();
        const uint64_t before = gguf::compressed_model_decompressions();
        return gguf::resolve_compressed_model(d / "m.gguf.zst", ro) == entry &&
               gguf::compressed_model_decompressions() == before;
    });
    assert_int_equal(rc, 0);
}

// ---- memory -----------------------------------------------------------------

uint64_t anonymous_bytes() {
    std::ifstream f("/proc/self/smaps_rollup");
    std::string key;
    uint64_t kb = 0;
    while (f >> key) {
        if (key == "Anonymous:") {
            f >> kb;
            return kb * 1024;
        }
        f.ignore(1 << 10, '\n');
    }
    return 0;
}

void test_bounded_memory(void**) {
    if (anonymous_bytes() == 0) {
        printf("SKIP: /proc/self/smaps_rollup not readable\n");
        skip();
    }
    TempDir d;
    uint64_t model_bytes = 0;
    {
        test::SyntheticSpec s;  // about 40 MB of F32 weights
        s.n_embd = 512;
        s.n_head = 8;
        s.n_head_kv = 4;
        s.n_ff = 1536;
        s.n_layer = 3;
        const Bytes gguf = test::synthetic_model(s);
        model_bytes = gguf.size();
        write_file(d / "big.gguf.zst", compress(gguf, 1));
    }  // the test's own copies are freed before measuring
    assert_true(model_bytes > (32u << 20));

    // Freed heap memory stays resident until trimmed, and a new buffer could reuse
    // it unseen: return it to the kernel so that any new buffer shows as growth.
    malloc_trim(0);
    const uint64_t base = anonymous_bytes();
    uint64_t peak = base, samples = 0;
    gguf::set_decompress_observer([&](uint64_t) {
        peak = std::max(peak, anonymous_bytes());
        samples++;
    });
    const std::string entry = gguf::resolve_compressed_model(d / "big.gguf.zst", d / "cache");
    gguf::set_decompress_observer(nullptr);
    const uint64_t growth = peak - base;
    printf("  model %.1f MiB, anonymous memory grew by at most %.2f MiB (%llu samples)\n", model_bytes / 1048576.0,
           growth / 1048576.0, (unsigned long long)samples);
    assert_true(samples >= 16);
    assert_true(growth < model_bytes / 8);
    assert_int_equal(read_file(entry).size(), model_bytes + kTrailer);

    // The measurement itself sees a buffer of half the model once it is touched.
    malloc_trim(0);
    const uint64_t before = anonymous_bytes();
    Bytes touched(model_bytes / 2, 1);
    const uint64_t seen = anonymous_bytes() - before;
    assert_true(touched[touched.size() - 1] == 1 && seen > model_bytes / 2 * 9 / 10);
}

// ---- through the C API ------------------------------------------------------

void test_c_api(void**) {
    TempDir d;
    const Bytes gguf = test::synthetic_model(spec_with_seed(7));
    write_file(d / "m.gguf", gguf);
    write_file(d / "m.gguf.zst", compress(gguf));
    const std::string cache = d / "api-cache";
    mw_model_options o;
    mw_model_options_init(&o);
    o.cache_dir = cache.c_str();

    mw_model *plain = nullptr, *z = nullptr, *z2 = nullptr;
    assert_int_equal(mw_model_open((d / "m.gguf").c_str(), &o, &plain), MW_OK);
    assert_int_equal(mw_model_open((d / "m.gguf.zst").c_str(), &o, &z), MW_OK);
    const std::vector<std::string> names = list_dir(cache);
    assert_int_equal(names.size(), 1);
    const ino_t ino = inode_of(cache + "/" + names[0]);
    assert_int_equal(mw_model_open((d / "m.gguf.zst").c_str(), &o, &z2), MW_OK);
    assert_int_equal(inode_of(cache + "/" + names[0]), ino);  // reused, not rewritten

    mw_model_info a, b;
    a.struct_size = b.struct_size = sizeof a;
    assert_int_equal(mw_model_info_get(plain, &a), MW_OK);
    assert_int_equal(mw_model_info_get(z2, &b), MW_OK);
    assert_int_equal(a.n_vocab, b.n_vocab);
    assert_int_equal(a.weight_bytes, b.weight_bytes);
    int32_t ta[32], tb[32];
    size_t na = 0, nb = 0;
    const char* text = " the cat sat";
    assert_int_equal(mw_tokenize(plain, text, strlen(text), 1, 0, ta, 32, &na), MW_OK);
    assert_int_equal(mw_tokenize(z, text, strlen(text), 1, 0, tb, 32, &nb), MW_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na * sizeof(int32_t));
    mw_model_close(plain);
    mw_model_close(z);
    mw_model_close(z2);

    // The default cache directory: $XDG_CACHE_HOME/memwise.
    const char* old_xdg = getenv("XDG_CACHE_HOME");
    const std::string saved = old_xdg ? old_xdg : "";
    setenv("XDG_CACHE_HOME", (d / "xdg").c_str(), 1);
    mw_model* zd = nullptr;
    const mw_status st = mw_model_open((d / "m.gguf.zst").c_str(), nullptr, &zd);
    if (old_xdg) setenv("XDG_CACHE_HOME", saved.c_str(), 1);
    else unsetenv("XDG_CACHE_HOME");
    assert_int_equal(st, MW_OK);
    mw_model_close(zd);
    assert_true(list_dir(d / "xdg/memwise") == names);

    // Failures carry their status and a message.
    const Bytes z_bytes = read_file(d / "m.gguf.zst");
    write_file(d / "t.gguf.zst", Bytes(z_bytes.begin(), z_bytes.begin() + 100));
    mw_model* bad = nullptr;
    assert_int_equal(mw_model_open((d / "t.gguf.zst").c_str(), &o, &bad), MW_ERR_FORMAT);
    assert_non_null(strstr(mw_last_error(), "truncated"));
    assert_null(bad);
    write_file(d / "file", Bytes{1});
    const std::string file_dir = d / "file";
    o.cache_dir = file_dir.c_str();
    assert_int_equal(mw_model_open((d / "m.gguf.zst").c_str(), &o, &bad), MW_ERR_IO);
    assert_non_null(strstr(mw_last_error(), "not a directory"));
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_reuse),
        cmocka_unit_test(test_content_addressing),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_stale_or_foreign_entry),
        cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_full_disk),
        cmocka_unit_test(test_unwritable_cache_dir),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_c_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
