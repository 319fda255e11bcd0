#include "tools/eval/distill_format.h"

#include "base/error.h"

#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the export format is little-endian; add byte swapping");

namespace mw::eval {

namespace {

constexpr char kMagic[4] = {'M', 'W', 'D', 'X'};
constexpr char kTrailerV1[8] = {'M', 'W', 'D', 'X', 'E', 'N', 'D', '1'};
constexpr char kTrailerV2[8] = {'M', 'W', 'D', 'X', 'E', 'N', 'D', '2'};
constexpr size_t kWindowHeaderBytes = 24;  // version 2: index, start, n_tokens, first, n_scored
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

// Header layout (version 2): see docs/COMPRESSION.md.
void encode_header(const ExportHeader& h, uint8_t* b) {
    std::memset(b, 0, kExportHeaderBytes);
    std::memcpy(b, kMagic, 4);
    put<uint32_t>(b, 4, kExportVersion);
    put<uint32_t>(b, 8, kExportHeaderBytes);
    put<uint32_t>(b, 12, h.n_vocab);
    put<uint32_t>(b, 16, h.top_k);
    put<uint32_t>(b, 20, h.n_ctx);
    put<uint32_t>(b, 24, h.stride);
    put<uint32_t>(b, 28, 0);  // reserved (version 1: scored positions per window)
    put<uint64_t>(b, 32, h.n_windows);
    put<uint64_t>(b, 40, h.n_text_tokens);
    put<uint64_t>(b, 48, h.vocab_hash);
    put<int32_t>(b, 56, h.bos);
    put<uint32_t>(b, 60, 0);  // flags, none defined
    put_str(b, 64, 32, h.arch);
    put_str(b, 96, 96, h.model_name);
    put_str(b, 192, 16, h.tokenizer_model);
    put_str(b, 208, 32, h.tokenizer_pre);
    put<uint64_t>(b, 240, h.n_records);
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
    header_.version = kExportVersion;
    header_.stride = header_.n_ctx / 2;
    if (header_.n_ctx < 4 || header_.n_ctx > kExportMaxCtx)
        fail(MW_ERR_INVALID_ARGUMENT, "context " + std::to_string(header_.n_ctx) + " is out of range [4, " +
                                          std::to_string(kExportMaxCtx) + "]");
    if (header_.top_k < 1 || header_.top_k > (uint32_t)kExportMaxTopK || header_.top_k > header_.n_vocab)
        fail(MW_ERR_INVALID_ARGUMENT, "top-k " + std::to_string(header_.top_k) + " is out of range");
    if (header_.max_window_bytes() > kExportMaxWindowBytes)
        fail(MW_ERR_INVALID_ARGUMENT, "a window of " + std::to_string(header_.n_ctx) + " tokens with top-k " +
                                          std::to_string(header_.top_k) + " needs " +
                                          std::to_string(header_.max_window_bytes()) + " bytes (limit 1 GiB); use a "
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

uint8_t* ExportWriter::begin_window(const ExportWindow& w, const int32_t* tokens) {
    const std::string what = "export window " + std::to_string(n_written_);
    if (w.n_tokens < 2 || w.n_tokens > header_.n_ctx || w.n_scored < 1 ||
        (uint64_t)w.first + w.n_scored > (uint64_t)w.n_tokens - 1)
        fail(MW_ERR_INTERNAL, what + ": " + std::to_string(w.n_tokens) + " tokens cannot score " +
                                  std::to_string(w.n_scored) + " from " + std::to_string(w.first));
    if (w.start > header_.n_text_tokens || w.n_tokens > header_.n_text_tokens - w.start)
        fail(MW_ERR_INTERNAL, what + " runs past the text");
    if (w.start + w.first != n_records_)
        fail(MW_ERR_INTERNAL, what + " scores from stream position " + std::to_string(w.start + w.first) +
                                  ", not the next unscored one (" + std::to_string(n_records_) + ")");
    buf_.assign(ExportHeader::window_bytes(w.n_tokens, w.n_scored, header_.record_bytes()), 0);
    put<uint32_t>(buf_.data(), 0, (uint32_t)n_written_);
    put<uint64_t>(buf_.data(), 4, w.start);
    put<uint32_t>(buf_.data(), 12, w.n_tokens);
    put<uint32_t>(buf_.data(), 16, w.first);
    put<uint32_t>(buf_.data(), 20, w.n_scored);
    std::memcpy(buf_.data() + kWindowHeaderBytes, tokens, 4 * (size_t)w.n_tokens);
    n_records_ += w.n_scored;
    begun_ = true;
    return buf_.data() + kWindowHeaderBytes + 4 * (size_t)w.n_tokens;
}

void ExportWriter::write_window() {
    if (!begun_) fail(MW_ERR_INTERNAL, "write_window without begin_window");
    out_.resize(ZSTD_compressBound(buf_.size()));
    const size_t n = ZSTD_compress2(static_cast<ZSTD_CCtx*>(cctx_), out_.data(), out_.size(), buf_.data(), buf_.size());
    if (ZSTD_isError(n)) fail(MW_ERR_INTERNAL, std::string("zstd: ") + ZSTD_getErrorName(n));
    const uint64_t size = n;
    if (std::fwrite(&size, 1, sizeof size, f_) != sizeof size || std::fwrite(out_.data(), 1, n, f_) != n)
        fail(MW_ERR_IO, "write " + tmp_ + ": " + std::strerror(errno));
    n_written_++;
    begun_ = false;
}

void ExportWriter::finish() {
    if (begun_) fail(MW_ERR_INTERNAL, "finish with a window begun and not written");
    header_.n_windows = n_written_;
    header_.n_records = n_records_;
    const uint64_t count = n_written_;
    uint8_t h[kExportHeaderBytes];
    encode_header(header_, h);
    bool ok = std::fwrite(kTrailerV2, 1, sizeof kTrailerV2, f_) == sizeof kTrailerV2 &&
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
    struct stat st;
    if (::fstat(fileno(f_), &st) != 0 || !S_ISREG(st.st_mode)) fail(MW_ERR_IO, path + " is not a regular file");
    file_bytes_ = (uint64_t)st.st_size;
    uint8_t b[kExportHeaderBytes];
    const size_t got = std::fread(b, 1, sizeof b, f_);
    offset_ = got;
    if (got < 4 || std::memcmp(b, kMagic, 4) != 0) corrupt("not a memwise distillation export (magic MWDX missing)");
    if (got < sizeof b) corrupt("truncated header (" + std::to_string(got) + " of 256 bytes)");
    ExportHeader& h = header_;
    h.version = get<uint32_t>(b, 4);
    if (h.version != 1 && h.version != 2)
        fail(MW_ERR_FORMAT, path + ": export format version " + std::to_string(h.version) +
                                " is not supported (this build reads versions 1 and 2)");
    if (get<uint32_t>(b, 8) != kExportHeaderBytes) corrupt("header size field is not 256");
    if (get<uint64_t>(b, kChecksumOffset) != fnv1a(b, kChecksumOffset)) corrupt("header checksum mismatch");
    h.n_vocab = get<uint32_t>(b, 12);
    h.top_k = get<uint32_t>(b, 16);
    h.n_ctx = get<uint32_t>(b, 20);
    h.n_windows = get<uint64_t>(b, 32);
    h.n_text_tokens = get<uint64_t>(b, 40);
    h.vocab_hash = get<uint64_t>(b, 48);
    h.bos = get<int32_t>(b, 56);
    h.arch = get_str(b, 64, 32);
    h.model_name = get_str(b, 96, 96);
    h.tokenizer_model = get_str(b, 192, 16);
    h.tokenizer_pre = get_str(b, 208, 32);
    // Fields a writer always sets consistently.
    if (h.n_vocab == 0 || h.n_vocab > (1u << 24)) corrupt("vocabulary size " + std::to_string(h.n_vocab));
    if (h.top_k == 0 || h.top_k > (uint32_t)kExportMaxTopK || h.top_k > h.n_vocab)
        corrupt("top_k " + std::to_string(h.top_k));
    if (h.n_ctx < 4 || h.n_ctx > kExportMaxCtx) corrupt("n_ctx " + std::to_string(h.n_ctx));
    if (h.bos < -1 || h.bos >= (int32_t)h.n_vocab) corrupt("BOS id outside the vocabulary");
    if (get<uint32_t>(b, 60) != 0) corrupt("unknown flags");
    if (h.n_windows < 1) corrupt("no windows");
    if (h.version == 1) {
        h.stride = h.n_ctx;
        h.v1_first = get<uint32_t>(b, 24);
        h.v1_n_scored = get<uint32_t>(b, 28);
        if (h.v1_first != h.n_ctx / 2 || h.v1_n_scored != h.n_ctx - 1 - h.v1_first)
            corrupt("scored positions do not match n_ctx");
        // Version 1 windows cover n_windows * n_ctx tokens of the text.
        if (h.n_windows > h.n_text_tokens / h.n_ctx) corrupt("more windows than the text has tokens for");
        h.n_records = h.n_windows * h.v1_n_scored;
        if (4 + 4 * (uint64_t)h.n_ctx + h.v1_n_scored * (uint64_t)h.record_bytes() > kExportMaxWindowBytes)
            corrupt("windows larger than 1 GiB");
    } else {
        h.stride = get<uint32_t>(b, 24);
        h.n_records = get<uint64_t>(b, 240);
        if (h.stride != h.n_ctx / 2) corrupt("stride is not n_ctx / 2");
        if (get<uint32_t>(b, 28) != 0) corrupt("reserved field is not 0");
        if (h.n_text_tokens < 2 || h.n_records > h.n_text_tokens - 1)
            corrupt(std::to_string(h.n_records) + " positions in a text of " + std::to_string(h.n_text_tokens) +
                    " tokens");
        if (h.n_windows > h.n_records) corrupt("more windows than positions");
        if (h.max_window_bytes() > kExportMaxWindowBytes) corrupt("windows larger than 1 GiB");
    }
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    if (!dctx) fail(MW_ERR_OUT_OF_MEMORY, "cannot create a zstd context");
    dctx_ = dctx;
    // Writers use levels 1 .. 19 (window log at most 23): refuse frames that
    // would make zstd allocate a larger window.
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 23);
}

ExportReader::~ExportReader() {
    ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
    if (f_) std::fclose(f_);
}

void ExportReader::corrupt(const std::string& what) const {
    fail(MW_ERR_FORMAT, path_ + ": " + what + " (corrupt or truncated distillation export)");
}

// Reads one frame of `size` bytes and decompresses it into buf_. Memory grows
// with the bytes actually produced, never with a size the file only claims.
void ExportReader::read_frame(uint64_t size) {
    const std::string w = "window " + std::to_string(n_read_);
    if (size == 0 || size > file_bytes_ - offset_)
        corrupt(w + ": frame of " + std::to_string(size) + " bytes with " + std::to_string(file_bytes_ - offset_) +
                " left in the file");
    in_.resize((size_t)size);
    if (std::fread(in_.data(), 1, (size_t)size, f_) != size) corrupt(w + " is cut short");
    offset_ += size;
    const uint64_t max_bytes = header_.version == 1
                                   ? 4 + 4 * (uint64_t)header_.n_ctx + header_.v1_n_scored * (uint64_t)header_.record_bytes()
                                   : header_.max_window_bytes();
    const unsigned long long declared = ZSTD_getFrameContentSize(in_.data(), (size_t)size);
    if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN)
        corrupt(w + ": not a zstd frame with its content size");
    if (declared > max_bytes)
        corrupt(w + ": " + std::to_string(declared) + " bytes, more than a window can hold (" +
                std::to_string(max_bytes) + ")");
    ZSTD_DCtx* dctx = static_cast<ZSTD_DCtx*>(dctx_);
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer in{in_.data(), (size_t)size, 0};
    size_t produced = 0;
    buf_.clear();
    for (;;) {
        if (produced == buf_.size()) {
            if (buf_.size() >= declared) corrupt(w + ": more bytes than its declared size");
            buf_.resize((size_t)std::min<uint64_t>(declared, std::max<uint64_t>(65536, 2 * (uint64_t)buf_.size())));
        }
        ZSTD_outBuffer out{buf_.data(), buf_.size(), produced};
        const size_t in_before = in.pos;
        const size_t ret = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(ret)) corrupt(w + ": zstd: " + ZSTD_getErrorName(ret));
        const bool progress = out.pos != produced || in.pos != in_before;
        produced = out.pos;
        if (ret == 0) break;  // frame complete, checksum verified
        if (in.pos == in.size && out.pos < out.size) corrupt(w + ": zstd frame cut short");
        if (!progress && out.pos < out.size) corrupt(w + ": zstd made no progress");
    }
    if (in.pos != in.size) corrupt(w + ": bytes after the zstd frame");
    if (produced != declared) corrupt(w + " has the wrong size");
    buf_.resize(produced);
}

bool ExportReader::next_window() {
    if (at_end_) return false;
    const ExportHeader& h = header_;
    if (n_read_ == h.n_windows) {
        uint8_t t[16];
        if (std::fread(t, 1, sizeof t, f_) != sizeof t ||
            std::memcmp(t, h.version == 1 ? kTrailerV1 : kTrailerV2, 8) != 0)
            corrupt("trailer missing after window " + std::to_string(n_read_));
        if (get<uint64_t>(t, 8) != h.n_windows) corrupt("trailer window count differs from the header");
        if (std::fgetc(f_) != EOF) corrupt("bytes after the trailer");
        if (n_records_ != h.n_records)
            corrupt(std::to_string(n_records_) + " positions, the header says " + std::to_string(h.n_records));
        at_end_ = true;
        return false;
    }
    uint64_t size = 0;
    if (std::fread(&size, 1, sizeof size, f_) != sizeof size)
        corrupt("ends after " + std::to_string(n_read_) + " of " + std::to_string(h.n_windows) + " windows");
    offset_ += sizeof size;
    read_frame(size);
    const std::string w = "window " + std::to_string(n_read_);
    const uint64_t rec_bytes = h.record_bytes();
    if (h.version == 1) {
        if (buf_.size() != 4 + 4 * (uint64_t)h.n_ctx + h.v1_n_scored * rec_bytes) corrupt(w + " has the wrong size");
        window_ = get<uint32_t>(buf_.data(), 0);
        win_.start = n_read_ * h.n_ctx;
        win_.n_tokens = h.n_ctx;
        win_.first = h.v1_first;
        win_.n_scored = h.v1_n_scored;
        tokens_off_ = 4;
    } else {
        if (buf_.size() < kWindowHeaderBytes) corrupt(w + " is too short for its header");
        window_ = get<uint32_t>(buf_.data(), 0);
        win_.start = get<uint64_t>(buf_.data(), 4);
        win_.n_tokens = get<uint32_t>(buf_.data(), 12);
        win_.first = get<uint32_t>(buf_.data(), 16);
        win_.n_scored = get<uint32_t>(buf_.data(), 20);
        tokens_off_ = kWindowHeaderBytes;
        if (win_.n_tokens < 2 || win_.n_tokens > h.n_ctx) corrupt(w + ": " + std::to_string(win_.n_tokens) + " tokens");
        if (win_.n_scored < 1 || (uint64_t)win_.first + win_.n_scored > (uint64_t)win_.n_tokens - 1)
            corrupt(w + ": scored range outside its tokens");
        if (win_.start > h.n_text_tokens || win_.n_tokens > h.n_text_tokens - win_.start)
            corrupt(w + " runs past the text");
        // Windows score the stream in order, each position once.
        if (win_.start + win_.first != n_records_)
            corrupt(w + " scores from stream position " + std::to_string(win_.start + win_.first) + ", expected " +
                    std::to_string(n_records_));
        if (win_.n_scored > h.n_records - n_records_) corrupt(w + ": more positions than the header says");
        if (buf_.size() != ExportHeader::window_bytes(win_.n_tokens, win_.n_scored, rec_bytes))
            corrupt(w + " has the wrong size");
    }
    if (window_ != n_read_) corrupt(w + " is numbered " + std::to_string(window_));
    records_off_ = tokens_off_ + 4 * (size_t)win_.n_tokens;
    // Every id must be a vocabulary index before anyone uses it as one.
    const int32_t* toks = window_tokens();
    for (uint32_t i = 0; i < win_.n_tokens; i++)
        if (toks[i] < 0 || (uint32_t)toks[i] >= h.n_vocab) corrupt("token id out of range");
    for (uint32_t r = 0; r < win_.n_scored; r++) {
        const ExportRecord rec = record(r);
        if (rec.token != toks[win_.first + r + 1]) corrupt("record's next token differs from the window's tokens");
        if (!(rec.rest_mass >= 0 && rec.rest_mass <= 1.0001f)) corrupt("remaining mass outside [0, 1]");
        if (!(rec.token_logprob <= 0.0001f)) corrupt("next token's log-probability above 0");
        for (uint32_t j = 0; j < h.top_k; j++) {
            if (rec.ids[j] < 0 || (uint32_t)rec.ids[j] >= h.n_vocab) corrupt("top-K id out of range");
            if (!(rec.logprobs[j] <= 0.0001f)) corrupt("log-probability above 0");
        }
    }
    n_records_ += win_.n_scored;
    n_read_++;
    return true;
}

ExportRecord ExportReader::record(uint32_t r) const {
    const uint8_t* p = buf_.data() + records_off_ + (size_t)r * header_.record_bytes();
    ExportRecord rec;
    rec.token = get<int32_t>(p, 0);
    rec.token_logprob = get<float>(p, 4);
    rec.rest_mass = get<float>(p, 8);
    rec.ids = reinterpret_cast<const int32_t*>(p + 12);
    rec.logprobs = reinterpret_cast<const float*>(p + 12 + 4 * (size_t)header_.top_k);
    return rec;
}

}  // namespace mw::eval
