#include "gguf/compressed_model.h"

#include "base/error.h"

#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>
#include <utility>
#include <vector>

namespace mw::gguf {

namespace {

constexpr size_t kChunk = 1u << 20;  // read and write buffers: 1 MiB each, whatever the model size
constexpr uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL, P3 = 0x165667B19E3779F9ULL;

std::atomic<uint64_t> g_decompressions{0};
std::function<void(uint64_t)> g_observer;

std::string num(uint64_t v) { return std::to_string(v); }
std::string errno_text(int e) { return std::strerror(e); }

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
uint64_t load64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];  // little-endian on every host: keys are portable
    return v;
}
void store64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
uint64_t fmix(uint64_t x) {  // a 64-bit avalanche finalizer (every input bit flips about half the output bits)
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    x ^= x >> 33;
    return x;
}

// A streaming 128-bit non-cryptographic hash: four independent multiply-rotate
// lanes over 32-byte stripes (fast enough to hash a compressed model on every
// open), finished with the total length so inputs of different sizes differ.
class Hash128 {
public:
    void update(const uint8_t* p, size_t n) {
        total_ += n;
        if (buf_n_ > 0) {
            const size_t take = std::min(n, sizeof buf_ - buf_n_);
            std::memcpy(buf_ + buf_n_, p, take);
            buf_n_ += take;
            p += take;
            n -= take;
            if (buf_n_ < sizeof buf_) return;
            stripe(lane_, buf_);
            buf_n_ = 0;
        }
        for (; n >= 32; p += 32, n -= 32) stripe(lane_, p);
        std::memcpy(buf_, p, n);
        buf_n_ = n;
    }
    // {high, low}
    std::pair<uint64_t, uint64_t> finish() const {
        uint64_t l[4] = {lane_[0], lane_[1], lane_[2], lane_[3]};
        if (buf_n_ > 0) {
            uint8_t last[32] = {0};
            std::memcpy(last, buf_, buf_n_);
            stripe(l, last);
        }
        const uint64_t lo = fmix(l[0] ^ rotl(l[1], 21) ^ rotl(l[2], 42) ^ rotl(l[3], 53) ^ total_);
        const uint64_t hi = fmix(l[3] + rotl(l[0], 17) * P3 + rotl(l[1], 29) + (l[2] ^ (total_ * P2)));
        return {hi, lo};
    }

private:
    static void stripe(uint64_t* l, const uint8_t* p) {
        for (int i = 0; i < 4; i++) l[i] = rotl(l[i] + load64(p + 8 * i) * P2, 31) * P1;
    }
    uint64_t lane_[4] = {P1, P2, P3, P1 ^ P3};
    uint8_t buf_[32] = {0};
    size_t buf_n_ = 0;
    uint64_t total_ = 0;
};

struct Key {
    uint64_t hi = 0, lo = 0;
    uint64_t compressed_bytes = 0;
    bool operator==(const Key& o) const { return hi == o.hi && lo == o.lo && compressed_bytes == o.compressed_bytes; }
    std::string hex() const {
        char s[33];
        std::snprintf(s, sizeof s, "%016llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
        return s;
    }
};

// The record after the decompressed GGUF: proves the entry is one memwise
// completed for exactly this source (a GGUF reader ignores bytes past its data).
constexpr size_t kTrailerBytes = 48;
constexpr char kTrailerMagic[8] = {'M', 'W', 'Z', 'S', 'T', 'C', '0', '1'};

uint64_t trailer_check(const Key& k, uint64_t decompressed) {
    return fmix(k.hi ^ rotl(k.lo, 19) ^ (k.compressed_bytes * P1) ^ (decompressed * P3));
}

void encode_trailer(uint8_t* t, const Key& k, uint64_t decompressed) {
    std::memcpy(t, kTrailerMagic, 8);
    store64(t + 8, k.hi);
    store64(t + 16, k.lo);
    store64(t + 24, k.compressed_bytes);
    store64(t + 32, decompressed);
    store64(t + 40, trailer_check(k, decompressed));
}

// Closes a descriptor on every path out of a scope.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

int open_source(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(MW_ERR_IO, "cannot open '" + path + "': " + errno_text(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int e = errno;
        ::close(fd);
        fail(MW_ERR_IO, "'" + path + "' is not a regular file" + (e ? std::string(": ") + errno_text(e) : ""));
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return fd;
}

// Reads up to n bytes; 0 at the end of the file.
size_t read_some(int fd, uint8_t* buf, size_t n, const std::string& path) {
    for (;;) {
        const ssize_t r = ::read(fd, buf, n);
        if (r >= 0) return (size_t)r;
        if (errno != EINTR) fail(MW_ERR_IO, "cannot read '" + path + "': " + errno_text(errno));
    }
}

void write_all(int fd, const uint8_t* p, size_t n, const std::string& path) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fail(MW_ERR_IO, "cannot write '" + path + "': " + errno_text(w < 0 ? errno : EIO));
        p += w;
        n -= (size_t)w;
    }
}

Key hash_source(const std::string& path) {
    Fd fd(open_source(path));
    std::vector<uint8_t> buf(kChunk);
    Hash128 h;
    Key k;
    for (size_t n; (n = read_some(fd.fd, buf.data(), buf.size(), path)) > 0;) {
        h.update(buf.data(), n);
        k.compressed_bytes += n;
    }
    std::tie(k.hi, k.lo) = h.finish();
    return k;
}

void make_dirs(const std::string& dir) {
    // Each missing component is created 0700, as the XDG base directory spec asks.
    for (size_t pos = 1; pos <= dir.size(); pos++) {
        if (pos < dir.size() && dir[pos] != '/') continue;
        const std::string part = dir.substr(0, pos);
        if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
            fail(MW_ERR_IO, "cannot create cache directory '" + part + "': " + errno_text(errno));
    }
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0)
        fail(MW_ERR_IO, "cannot use cache directory '" + dir + "': " + errno_text(errno));
    if (!S_ISDIR(st.st_mode)) fail(MW_ERR_IO, "cache directory '" + dir + "' is not a directory");
}

// True when `entry` is a regular file whose trailer matches `k` and its size.
bool entry_is_complete(const std::string& entry, const Key& k) {
    Fd fd(::open(entry.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.fd < 0) return false;
    struct stat st;
    if (fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < kTrailerBytes) return false;
    uint8_t t[kTrailerBytes];
    if (pread(fd.fd, t, sizeof t, st.st_size - (off_t)kTrailerBytes) != (ssize_t)sizeof t) return false;
    const uint64_t decompressed = (uint64_t)st.st_size - kTrailerBytes;
    uint8_t want[kTrailerBytes];
    encode_trailer(want, k, decompressed);
    return std::memcmp(t, want, sizeof t) == 0;
}

// zstd reports no exact position: name the frame, how far the input was read
// and how much output was complete.
[[noreturn]] void zstd_fail(size_t code, const std::string& path, uint64_t frame, uint64_t read, uint64_t out) {
    const std::string where = "'" + path + "': corrupt zstd data in the frame at compressed byte " + num(frame) +
                              " (input read to byte " + num(read) + ", " + num(out) +
                              " bytes decompressed): " + ZSTD_getErrorName(code);
    switch (ZSTD_getErrorCode(code)) {
        case ZSTD_error_memory_allocation: fail(MW_ERR_OUT_OF_MEMORY, where);
        case ZSTD_error_frameParameter_windowTooLarge:
            fail(MW_ERR_UNSUPPORTED, where + " (the frame needs a larger window than zstd's default limit)");
        default: fail(MW_ERR_FORMAT, where);
    }
}

// Removes a temporary file unless it was committed.
struct TempFile {
    std::string path;
    bool keep = false;
    ~TempFile() {
        if (!path.empty() && !keep) ::unlink(path.c_str());
    }
};

// Decompresses `src` into a new entry in `dir`; returns the entry's path. The
// key is computed again from the bytes actually decompressed, so the entry's
// name always matches its content even if the source changed since it was hashed.
std::string decompress(const std::string& src, const std::string& dir, const Key& expected) {
    g_decompressions++;
    Fd in(open_source(src));
    TempFile tmp;
    std::string tmpl = dir + "/.zst-" + expected.hex() + ".gguf.tmp-XXXXXX";
    Fd out(mkostemp(&tmpl[0], O_CLOEXEC));
    if (out.fd < 0)
        fail(MW_ERR_IO, "cannot create a temporary file in cache directory '" + dir + "': " + errno_text(errno));
    tmp.path = tmpl;
    fchmod(out.fd, 0644);

    std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    if (!dctx) fail(MW_ERR_OUT_OF_MEMORY, "cannot create a zstd decompression context");
    std::vector<uint8_t> ibuf(kChunk), obuf(kChunk);
    Hash128 h;
    Key k;
    uint64_t produced = 0;
    size_t pending = 0;  // ZSTD_decompressStream's last result: 0 exactly when a frame is complete
    uint64_t frame_start = 0;
    for (size_t n; (n = read_some(in.fd, ibuf.data(), ibuf.size(), src)) > 0;) {
        h.update(ibuf.data(), n);
        ZSTD_inBuffer zin{ibuf.data(), n, 0};
        ZSTD_outBuffer zout{};
        do {  // until the input is used and zstd holds no more output
            zout = ZSTD_outBuffer{obuf.data(), obuf.size(), 0};
            pending = ZSTD_decompressStream(dctx.get(), &zout, &zin);
            if (ZSTD_isError(pending)) zstd_fail(pending, src, frame_start, k.compressed_bytes + n, produced);
            if (pending == 0) frame_start = k.compressed_bytes + zin.pos;
            write_all(out.fd, obuf.data(), zout.pos, tmp.path);
            produced += zout.pos;
            if (g_observer && zout.pos > 0) g_observer(produced);
        } while (zin.pos < zin.size || zout.pos == zout.size);
        k.compressed_bytes += n;
    }
    if (k.compressed_bytes == 0) fail(MW_ERR_FORMAT, "'" + src + "': empty file, not zstd data");
    if (pending != 0)
        fail(MW_ERR_FORMAT, "'" + src + "': truncated zstd data: the file ends inside a frame (after " +
                                num(k.compressed_bytes) + " compressed bytes, " + num(produced) + " decompressed)");
    std::tie(k.hi, k.lo) = h.finish();

    uint8_t trailer[kTrailerBytes];
    encode_trailer(trailer, k, produced);
    write_all(out.fd, trailer, sizeof trailer, tmp.path);
    if (fsync(out.fd) != 0) fail(MW_ERR_IO, "cannot sync '" + tmp.path + "': " + errno_text(errno));
    const int rc = ::close(out.fd);
    out.fd = -1;
    if (rc != 0) fail(MW_ERR_IO, "cannot close '" + tmp.path + "': " + errno_text(errno));
    const std::string entry = dir + "/zst-" + k.hex() + ".gguf";
    if (::rename(tmp.path.c_str(), entry.c_str()) != 0)
        fail(MW_ERR_IO, "cannot rename '" + tmp.path + "' to '" + entry + "': " + errno_text(errno));
    tmp.keep = true;
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.fd >= 0) fsync(d.fd);  // make the rename durable; the entry is complete either way
    return entry;
}

}  // namespace

bool is_compressed_model(const std::string& path) {
    return path.size() > 4 && path.compare(path.size() - 4, 4, ".zst") == 0;
}

std::string default_model_cache_dir() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') return std::string(xdg) + "/memwise";  // the spec ignores relative values
    const char* home = std::getenv("HOME");
    if (home && home[0]) return std::string(home) + "/.cache/memwise";
    fail(MW_ERR_IO, "no cache directory for a compressed model: set mw_model_options.cache_dir, "
                    "$XDG_CACHE_HOME or $HOME");
}

std::string resolve_compressed_model(const std::string& path, const std::string& cache_dir) {
    if (!is_compressed_model(path)) return path;
    std::string dir = cache_dir.empty() ? default_model_cache_dir() : cache_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    const Key k = hash_source(path);
    make_dirs(dir);
    const std::string entry = dir + "/zst-" + k.hex() + ".gguf";
    if (entry_is_complete(entry, k)) return entry;
    return decompress(path, dir, k);
}

uint64_t compressed_model_decompressions() { return g_decompressions; }

void set_decompress_observer(std::function<void(uint64_t)> observer) { g_observer = std::move(observer); }

}  // namespace mw::gguf
