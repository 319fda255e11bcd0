// Distillation export file (".mwdx"): a teacher's top-K next-token
// distribution at every position of a corpus's token stream, for an external
// student trainer and for `eval --ref-export`. Specified in
// docs/COMPRESSION.md ("Distillation export format"); summary of version 2:
//
//   header   256 bytes, fixed layout (ExportHeader), FNV-1a 64 checksum at 248
//   window*  u64 compressed size, then one zstd frame (content size and
//            content checksum set) holding one window, uncompressed:
//              u32 window index, u64 start (stream offset of token 0),
//              u32 n_tokens, u32 first scored position, u32 n_scored
//              i32 tokens[n_tokens]        the tokens fed (BOS already in place)
//              n_scored records of 12 + 8K bytes:
//                i32 next token, f32 its teacher log-prob, f32 remaining mass
//                (probability outside the top K), i32 ids[K], f32 log-probs[K]
//                (descending). Record r is window position first + r.
//   trailer  "MWDXEND2", u64 number of windows
// The windows (windows.h, plan_export_windows) overlap; together they score
// every stream position 0 .. n_text_tokens-2 exactly once, in order. All
// integers and floats little-endian. Files are written to a temporary name
// and renamed, so a file under the final name is always complete; a reader
// still rejects truncation and corruption with MW_ERR_FORMAT.
//
// The reader also reads version 1 (fixed windows of n_ctx tokens starting at
// w * n_ctx, scoring n_ctx/2 .. n_ctx-2; window = u32 index, tokens, records;
// trailer "MWDXEND1") and presents its windows the same way.
#pragma once

#include "model/model.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace mw::eval {

constexpr uint32_t kExportVersion = 2;
constexpr uint32_t kExportHeaderBytes = 256;
constexpr int32_t kExportMaxTopK = 4096;
constexpr uint32_t kExportMaxCtx = 1u << 20;
// Largest uncompressed window (at n_ctx tokens) a writer makes or a reader accepts.
constexpr uint64_t kExportMaxWindowBytes = 1ull << 30;

struct ExportHeader {
    uint32_t version = kExportVersion;
    uint32_t n_vocab = 0;
    uint32_t top_k = 0;
    uint32_t n_ctx = 0;         // window length: no window holds more tokens
    uint32_t stride = 0;        // version 2: n_ctx / 2 (start step); version 1: n_ctx
    uint64_t n_windows = 0;
    uint64_t n_records = 0;     // scored positions in the file (n_text_tokens - 1 unless cut by max_windows)
    uint64_t n_text_tokens = 0; // tokens of the whole text (with BOS)
    uint64_t vocab_hash = 0;    // vocab_identity() of the teacher's tokenizer
    int32_t bos = -1;           // the BOS put at each window's start, -1 for none
    std::string arch;           // teacher's architecture (up to 31 bytes)
    std::string model_name;     // teacher's general.name (up to 95 bytes)
    std::string tokenizer_model;// "gpt2" / "llama" (up to 15 bytes)
    std::string tokenizer_pre;  // BPE pre-tokenizer name (up to 31 bytes)
    uint32_t v1_first = 0;      // version 1 only: first scored position (n_ctx / 2)
    uint32_t v1_n_scored = 0;   // version 1 only: scored positions per window

    size_t record_bytes() const { return 12 + 8 * (size_t)top_k; }
    // Uncompressed bytes of a version 2 window.
    static uint64_t window_bytes(uint64_t n_tokens, uint64_t n_scored, uint64_t record_bytes) {
        return 24 + 4 * n_tokens + n_scored * record_bytes;
    }
    // The largest version 2 window: n_ctx tokens, n_ctx - 1 scored.
    uint64_t max_window_bytes() const { return window_bytes(n_ctx, n_ctx ? n_ctx - 1 : 0, record_bytes()); }
};

// 64-bit FNV-1a over the vocabulary: size, then every token's bytes (special
// tokens rendered) and attribute, in id order. Equal for models that share a
// tokenizer vocabulary.
uint64_t vocab_identity(const Tokenizer& t);

// Where a window sits in the token stream and what it scores.
struct ExportWindow {
    uint64_t start = 0;     // stream offset of the window's token 0
    uint32_t n_tokens = 0;
    uint32_t first = 0;     // first scored window position
    uint32_t n_scored = 0;
};

// One scored position of a window, pointing into the reader's window buffer.
struct ExportRecord {
    int32_t token = 0;          // the actual next token
    float token_logprob = 0;    // its teacher log-probability
    float rest_mass = 0;        // teacher probability outside the top K
    const int32_t* ids = nullptr;       // top_k ids
    const float* logprobs = nullptr;    // top_k log-probabilities, descending
};

class ExportWriter {
public:
    // Creates a temporary file next to path; writes version 2. Throws
    // MW_ERR_IO, MW_ERR_INVALID_ARGUMENT (a window of n_ctx tokens too large).
    ExportWriter(const std::string& path, const ExportHeader& header, int compression_level = 3);
    ~ExportWriter();  // removes the temporary file unless finish() succeeded
    ExportWriter(const ExportWriter&) = delete;
    ExportWriter& operator=(const ExportWriter&) = delete;

    // Starts the next window: lays out its header and tokens and returns its
    // n_scored records (record_bytes() each) to fill before write_window().
    // The window must score the next unscored stream position
    // (start + first = records written so far) and fit the header.
    uint8_t* begin_window(const ExportWindow& w, const int32_t* tokens);
    // Compresses and appends the window begun last.
    void write_window();
    // Writes the trailer and final header, fsyncs and renames to the final path.
    void finish();

private:
    std::string path_, tmp_;
    ExportHeader header_;
    int level_;
    FILE* f_ = nullptr;
    std::vector<uint8_t> buf_, out_;
    uint64_t n_written_ = 0, n_records_ = 0;
    bool begun_ = false, done_ = false;
    void* cctx_ = nullptr;
};

class ExportReader {
public:
    // Opens and validates the header. Throws MW_ERR_IO (cannot open),
    // MW_ERR_FORMAT (not an export, other version, bad checksum or fields).
    explicit ExportReader(const std::string& path);
    ~ExportReader();
    ExportReader(const ExportReader&) = delete;
    ExportReader& operator=(const ExportReader&) = delete;

    const ExportHeader& header() const { return header_; }
    // Reads the next window; false after the last one (the trailer checked).
    // Throws MW_ERR_FORMAT for a truncated or corrupt file. Pointers into the
    // previous window become invalid.
    bool next_window();
    uint64_t window_index() const { return window_; }
    const ExportWindow& window() const { return win_; }
    const int32_t* window_tokens() const { return reinterpret_cast<const int32_t*>(buf_.data() + tokens_off_); }
    // Record r (0 .. window().n_scored - 1): window position window().first + r.
    ExportRecord record(uint32_t r) const;

private:
    [[noreturn]] void corrupt(const std::string& what) const;
    void read_frame(uint64_t size);
    std::string path_;
    ExportHeader header_;
    FILE* f_ = nullptr;
    uint64_t file_bytes_ = 0, offset_ = 0;
    std::vector<uint8_t> buf_, in_;
    size_t tokens_off_ = 0, records_off_ = 0;
    ExportWindow win_;
    uint64_t window_ = 0, n_read_ = 0, n_records_ = 0;
    bool at_end_ = false;
    void* dctx_ = nullptr;
};

}  // namespace mw::eval
