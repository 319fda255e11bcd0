// Shared by the fuzz targets: a tiny synthetic model (the project's own
// writer), written once per process to a temporary file, and a byte reader
// that turns fuzz input into numbers and slices.
#pragma once

#include "model/synthetic_model.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace mw::fuzz {

// A private scratch directory per process, named after the target (for
// example "/tmp/mw_fuzz_zst_XXXXXX"), removed at exit.
inline const std::filesystem::path& scratch_dir(const char* pattern) {
    static const std::filesystem::path d = [pattern] {
        std::string t = pattern;
        if (!mkdtemp(t.data())) std::abort();
        static struct Remove {
            std::filesystem::path p;
            ~Remove() { std::error_code ec; std::filesystem::remove_all(p, ec); }
        } remove{t};
        return std::filesystem::path(t);
    }();
    return d;
}

inline std::vector<uint8_t> tiny_model_bytes() {
    test::SyntheticSpec spec;
    spec.n_embd = 16;
    spec.n_layer = 1;
    spec.n_head = 2;
    spec.n_head_kv = 1;
    spec.n_ff = 32;
    spec.n_ctx = 64;
    return test::synthetic_model(spec);
}

// Path of the tiny model, written on first use (removed at exit).
inline const std::string& tiny_model_path() {
    static const std::string path = [] {
        char p[] = "/tmp/mw_fuzz_model_XXXXXX";
        const int fd = mkstemp(p);
        if (fd < 0) std::abort();
        const std::vector<uint8_t> bytes = tiny_model_bytes();
        if (write(fd, bytes.data(), bytes.size()) != (ssize_t)bytes.size()) std::abort();
        close(fd);
        static struct Remove {
            std::string p;
            ~Remove() { unlink(p.c_str()); }
        } remove{p};
        return std::string(p);
    }();
    return path;
}

// Consumes fuzz input front to back; past the end it yields zeros / empty.
class Bytes {
public:
    Bytes(const uint8_t* d, size_t n) : d_(d), n_(n) {}
    template <class T> T take() {
        T v{};
        const size_t k = n_ < sizeof(T) ? n_ : sizeof(T);
        std::memcpy(&v, d_, k);
        d_ += k;
        n_ -= k;
        return v;
    }
    // Up to max bytes, length chosen by the input.
    std::string_view slice(size_t max) {
        size_t len = take<uint8_t>();
        if (len > max) len = max;
        if (len > n_) len = n_;
        std::string_view s((const char*)d_, len);
        d_ += len;
        n_ -= len;
        return s;
    }
    std::string_view rest() const { return std::string_view((const char*)d_, n_); }
    size_t left() const { return n_; }

private:
    const uint8_t* d_;
    size_t n_;
};

}  // namespace mw::fuzz
