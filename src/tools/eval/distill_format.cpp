#include "tools/eval/distill_format.h"

#include "base/error.h"

#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <unistd.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the export format is little-endian; add byte swapping");

namespace mw::eval {

namespace {

constexpr char kMagic[4] = {'M', 'W', 'D', 'X'};
constexpr char kTrailer[8] = {'M', 'W', 'D', 'X', 'E', 'N', 'D', '1'};
constexpr size_t kChecksumOffset = 248;

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

template <class T>
void put(uint8_t* b, size_t off, T v) { std::memcpy(b + off, &v, sizeof v); }
template <class T>
T get(const uint8_t* b, size_t off) {
    T v;
    std::memcpy(&v, b + off, sizeof v);
    return v;
}
void put_str(uint8_t* b, size_t off, size_t cap, const std::string& s) {
    std::memset(b + off, 0, cap);
    std::memcpy(b + off, s.data(), std::min(cap - 1, s.size()));
}
std::string get_str(const uint8_t* b, size_t off, size_t cap) {
    const char* s = reinterpret_cast<const char*>(b + off);
    return std::string(s, strnlen(s, cap - 1));
}

// Header layout: see docs/COMPRESSION.md.
void encode_header(const ExportHeader& h, uint8_t* b) {
    std::memset(b, 0, kExportHeaderBytes);
    std::memcpy(b, kMagic, 4);
    put<uint32_t>(b, 4, h.version);
    put<uint32_t>(b, 8, kExportHeaderBytes);
    put<uint32_t>(b, 12, h.n_vocab);
    put<uint32_t>(b, 16, h.top_k);
    put<uint32_t>(b, 20, h.n_ctx);
    put<uint32_t>(b, 24, h.first);
    put<uint32_t>(b, 28, h.n_scored);
    put<uint64_t>(b, 32, h.n_windows);
    put<uint64_t>(b, 40, h.n_text_tokens);
    put<uint64_t>(b, 48, h.vocab_hash);
    put<int32_t>(b, 56, h.bos);
    put<uint32_t>(b, 60, 0);  // flags, none defined
    put_str(b, 64, 32, h.arch);
    put_str(b, 96, 96, h.model_name);
    put_str(b, 192, 16, h.tokenizer_model);
    put_str(b, 208, 32, h.tokenizer_pre);
    put<uint64_t>(b, kChecksumOffset, fnv1a(b, kChecksumOffset));
}

}  // namespace

uint64_t vocab_identity(const Tokenizer& t) {
    const int32_t n = t.n_vocab();
    uint64_t h = fnv1a(&n, sizeof n);
    for (int32_t id = 0; id < n; id++) {
        const std::string_view piece = t.piece_view(id, true);
        const uint32_t len = (uint32_t)piece.size();
        const int32_t attr = (int32_t)t.attr(id);
        h = fnv1a(&len, sizeof len, h);
        h = fnv1a(piece.data(), piece.size(), h);
        h = fnv1a(&attr, sizeof attr, h);
    }
    return h;
}

// ---- writer ----

ExportWriter::ExportWriter(const std::string& path, const ExportHeader& header, int compression_level)
    : path_(path), header_(header), level_(compression_level) {
    if (header_.window_bytes() > kExportMaxWindowBytes)
        fail(MW_ERR_INVALID_ARGUMENT, "a window of " + std::to_string(header_.n_ctx) + " tokens with top-k " +
                                          std::to_string(header_.top_k) + " needs " +
                                          std::to_string(header_.window_bytes()) + " bytes (limit 1 GiB); use a "
                                          "smaller --ctx or --top-k");
    tmp_ = path + ".tmp-XXXXXX";
    const int fd = mkstemp(&tmp_[0]);
    if (fd < 0) fail(MW_ERR_IO, "cannot create a temporary file next to " + path + ": " + std::strerror(errno));
    f_ = fdopen(fd, "wb");
    if (!f_) {
        ::close(fd);
        ::unlink(tmp_.c_str());
        fail(MW_ERR_IO, "cannot open " + tmp_ + ": " + std::strerror(errno));
    }
    buf_.assign(header_.window_bytes(), 0);
    out_.resize(ZSTD_compressBound(buf_.size()));
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    cctx_ = cctx;
    if (!cctx) fail(MW_ERR_OUT_OF_MEMORY, "cannot create a zstd context");
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level_);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
    // The header is rewritten with the final counts by finish().
    uint8_t h[kExportHeaderBytes];
    encode_header(header_, h);
    if (std::fwrite(h, 1, sizeof h, f_) != sizeof h) fail(MW_ERR_IO, "write " + tmp_ + ": " + std::strerror(errno));
}

ExportWriter::~ExportWriter() {
    ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
    if (f_) std::fclose(f_);
    if (!done_) ::unlink(tmp_.c_str());
}

void ExportWriter::write_window() {
    const size_t n = ZSTD_compress2(static_cast<ZSTD_CCtx*>(cctx_), out_.data(), out_.size(), buf_.data(), buf_.size());
    if (ZSTD_isError(n)) fail(MW_ERR_INTERNAL, std::string("zstd: ") + ZSTD_getErrorName(n));
    const uint64_t size = n;
    if (std::fwrite(&size, 1, sizeof size, f_) != sizeof size || std::fwrite(out_.data(), 1, n, f_) != n)
        fail(MW_ERR_IO, "write " + tmp_ + ": " + std::strerror(errno));
    n_written_++;
}

void ExportWriter::finish() {
    header_.n_windows = n_written_;
    const uint64_t count = n_written_;
    uint8_t h[kExportHeaderBytes];
    encode_header(header_, h);
    bool ok = std::fwrite(kTrailer, 1, sizeof kTrailer, f_) == sizeof kTrailer &&
              std::fwrite(&count, 1, sizeof count, f_) == sizeof count && std::fflush(f_) == 0 &&
              std::fseek(f_, 0, SEEK_SET) == 0 && std::fwrite(h, 1, sizeof h, f_) == sizeof h &&
              std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
    ok = (std::fclose(f_) == 0) && ok;
    f_ = nullptr;
    if (!ok) fail(MW_ERR_IO, "write " + tmp_ + ": " + std::strerror(errno));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
        fail(MW_ERR_IO, "rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno));
    done_ = true;
}

// ---- reader ----

ExportReader::ExportReader(const std::string& path) : path_(path) {
    f_ = std::fopen(path.c_str(), "rb");
    if (!f_) fail(MW_ERR_IO, "cannot open " + path + ": " + std::strerror(errno));
    uint8_t b[kExportHeaderBytes];
    const size_t got = std::fread(b, 1, sizeof b, f_);
    if (got < 4 || std::memcmp(b, kMagic, 4) != 0) corrupt("not a memwise distillation export (magic MWDX missing)");
    if (got < sizeof b) corrupt("truncated header (" + std::to_string(got) + " of 256 bytes)");
    ExportHeader& h = header_;
    h.version = get<uint32_t>(b, 4);
    if (h.version != kExportVersion)
        fail(MW_ERR_FORMAT, path + ": export format version " + std::to_string(h.version) + " is not supported (this "
                                                                                            "build reads version 1)");
    if (get<uint32_t>(b, 8) != kExportHeaderBytes) corrupt("header size field is not 256");
    if (get<uint64_t>(b, kChecksumOffset) != fnv1a(b, kChecksumOffset)) corrupt("header checksum mismatch");
    h.n_vocab = get<uint32_t>(b, 12);
    h.top_k = get<uint32_t>(b, 16);
    h.n_ctx = get<uint32_t>(b, 20);
    h.first = get<uint32_t>(b, 24);
    h.n_scored = get<uint32_t>(b, 28);
    h.n_windows = get<uint64_t>(b, 32);
    h.n_text_tokens = get<uint64_t>(b, 40);
    h.vocab_hash = get<uint64_t>(b, 48);
    h.bos = get<int32_t>(b, 56);
    h.arch = get_str(b, 64, 32);
    h.model_name = get_str(b, 96, 96);
    h.tokenizer_model = get_str(b, 192, 16);
    h.tokenizer_pre = get_str(b, 208, 32);
    // Fields a writer of this version always sets consistently.
    if (h.n_vocab == 0 || h.n_vocab > (1u << 24)) corrupt("vocabulary size " + std::to_string(h.n_vocab));
    if (h.top_k == 0 || h.top_k > (uint32_t)kExportMaxTopK || h.top_k > h.n_vocab)
        corrupt("top_k " + std::to_string(h.top_k));
    if (h.n_ctx < 4 || h.n_ctx > (1u << 20)) corrupt("n_ctx " + std::to_string(h.n_ctx));
    if (h.first != h.n_ctx / 2 || h.n_scored != h.n_ctx - 1 - h.first) corrupt("scored positions do not match n_ctx");
    if (h.bos >= (int32_t)h.n_vocab) corrupt("BOS id outside the vocabulary");
    if (h.window_bytes() > kExportMaxWindowBytes) corrupt("window of " + std::to_string(h.window_bytes()) + " bytes");
    buf_.resize(h.window_bytes());
    in_.resize(ZSTD_compressBound(buf_.size()));
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    if (!dctx) fail(MW_ERR_OUT_OF_MEMORY, "cannot create a zstd context");
    dctx_ = dctx;
}

ExportReader::~ExportReader() {
    ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
    if (f_) std::fclose(f_);
}

void ExportReader::corrupt(const std::string& what) const {
    fail(MW_ERR_FORMAT, path_ + ": " + what + " (corrupt or truncated distillation export)");
}

bool ExportReader::next_window() {
    if (at_end_) return false;
    if (n_read_ == header_.n_windows) {
        uint8_t t[16];
        if (std::fread(t, 1, sizeof t, f_) != sizeof t || std::memcmp(t, kTrailer, 8) != 0)
            corrupt("trailer missing after window " + std::to_string(n_read_));
        if (get<uint64_t>(t, 8) != header_.n_windows) corrupt("trailer window count differs from the header");
        if (std::fgetc(f_) != EOF) corrupt("bytes after the trailer");
        at_end_ = true;
        return false;
    }
    uint64_t size = 0;
    if (std::fread(&size, 1, sizeof size, f_) != sizeof size)
        corrupt("ends after " + std::to_string(n_read_) + " of " + std::to_string(header_.n_windows) + " windows");
    if (size == 0 || size > in_.size()) corrupt("window " + std::to_string(n_read_) + ": bad frame size");
    if (std::fread(in_.data(), 1, (size_t)size, f_) != size)
        corrupt("window " + std::to_string(n_read_) + " is cut short");
    const size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), buf_.data(), buf_.size(), in_.data(),
                                         (size_t)size);
    if (ZSTD_isError(n)) corrupt("window " + std::to_string(n_read_) + ": zstd: " + ZSTD_getErrorName(n));
    if (n != buf_.size()) corrupt("window " + std::to_string(n_read_) + " has the wrong size");
    window_ = get<uint32_t>(buf_.data(), 0);
    if (window_ != n_read_) corrupt("window " + std::to_string(n_read_) + " is numbered " + std::to_string(window_));
    // Every id must be a vocabulary index before anyone uses it as one.
    const int32_t* toks = window_tokens();
    for (uint32_t i = 0; i < header_.n_ctx; i++)
        if (toks[i] < 0 || (uint32_t)toks[i] >= header_.n_vocab) corrupt("token id out of range");
    for (uint32_t r = 0; r < header_.n_scored; r++) {
        const ExportRecord rec = record(r);
        if (rec.token != toks[header_.first + r + 1]) corrupt("record's next token differs from the window's tokens");
        if (!(rec.rest_mass >= 0 && rec.rest_mass <= 1.0001f)) corrupt("remaining mass outside [0, 1]");
        for (uint32_t j = 0; j < header_.top_k; j++) {
            if (rec.ids[j] < 0 || (uint32_t)rec.ids[j] >= header_.n_vocab) corrupt("top-K id out of range");
            if (!(rec.logprobs[j] <= 0.0001f) || std::isnan(rec.logprobs[j])) corrupt("log-probability above 0");
        }
    }
    n_read_++;
    return true;
}

ExportRecord ExportReader::record(uint32_t r) const {
    const uint8_t* p = buf_.data() + 4 + 4 * (size_t)header_.n_ctx + (size_t)r * header_.record_bytes();
    ExportRecord rec;
    rec.token = get<int32_t>(p, 0);
    rec.token_logprob = get<float>(p, 4);
    rec.rest_mass = get<float>(p, 8);
    rec.ids = reinterpret_cast<const int32_t*>(p + 12);
    rec.logprobs = reinterpret_cast<const float*>(p + 12 + 4 * (size_t)header_.top_k);
    return rec;
}

}  // namespace mw::eval
