// Distillation export file (".mwdx"): a teacher's top-K next-token
// distribution at every scored position of a corpus, for an external student
// trainer and for `eval --ref-export`. Specified in docs/COMPRESSION.md
// ("Distillation export format"); summary:
//
//   header   256 bytes, fixed layout (ExportHeader), FNV-1a 64 checksum at 248
//   window*  u64 compressed size, then one zstd frame (content size and
//            content checksum set) holding one window, uncompressed:
//              u32 window index
//              i32 tokens[n_ctx]           the tokens fed (BOS already in place)
//              n_scored records of 12 + 8K bytes:
//                i32 next token, f32 its teacher log-prob, f32 remaining mass
//                (probability outside the top K), i32 ids[K], f32 log-probs[K]
//                (descending). Record r is position first + r of the window.
//   trailer  "MWDXEND1", u64 number of windows
// All integers and floats little-endian. Files are written to a temporary
// name and renamed, so a file under the final name is always complete; a
// reader still rejects truncation and corruption with MW_ERR_FORMAT.
#pragma once

#include "model/model.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace mw::eval {

constexpr uint32_t kExportVersion = 1;
constexpr uint32_t kExportHeaderBytes = 256;
constexpr int32_t kExportMaxTopK = 4096;
// Largest uncompressed window a writer makes or a reader accepts.
constexpr uint64_t kExportMaxWindowBytes = 1ull << 30;

struct ExportHeader {
    uint32_t version = kExportVersion;
    uint32_t n_vocab = 0;
    uint32_t top_k = 0;
    uint32_t n_ctx = 0;
    uint32_t first = 0;         // first scored position of a window (n_ctx / 2)
    uint32_t n_scored = 0;      // scored positions per window (n_ctx - 1 - first)
    uint64_t n_windows = 0;
    uint64_t n_text_tokens = 0; // tokens of the whole text (with BOS)
    uint64_t vocab_hash = 0;    // vocab_identity() of the teacher's tokenizer
    int32_t bos = -1;           // the BOS put at each window's start, -1 for none
    std::string arch;           // teacher's architecture (up to 31 bytes)
    std::string model_name;     // teacher's general.name (up to 95 bytes)
    std::string tokenizer_model;// "gpt2" / "llama" (up to 15 bytes)
    std::string tokenizer_pre;  // BPE pre-tokenizer name (up to 31 bytes)

    size_t record_bytes() const { return 12 + 8 * (size_t)top_k; }
    size_t window_bytes() const { return 4 + 4 * (size_t)n_ctx + (size_t)n_scored * record_bytes(); }
};

// 64-bit FNV-1a over the vocabulary: size, then every token's bytes (special
// tokens rendered) and attribute, in id order. Equal for models that share a
// tokenizer vocabulary.
uint64_t vocab_identity(const Tokenizer& t);

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
    // Creates a temporary file next to path. Throws MW_ERR_IO.
    ExportWriter(const std::string& path, const ExportHeader& header, int compression_level = 3);
    ~ExportWriter();  // removes the temporary file unless finish() succeeded
    ExportWriter(const ExportWriter&) = delete;
    ExportWriter& operator=(const ExportWriter&) = delete;

    // Buffer of the next window to fill: window_bytes() bytes, laid out as above.
    uint8_t* window_buffer() { return buf_.data(); }
    // Compresses and appends the window in window_buffer().
    void write_window();
    // Writes the trailer and final header, fsyncs and renames to the final path.
    void finish();

private:
    std::string path_, tmp_;
    ExportHeader header_;
    int level_;
    FILE* f_ = nullptr;
    std::vector<uint8_t> buf_, out_;
    uint64_t n_written_ = 0;
    bool done_ = false;
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
    // Throws MW_ERR_FORMAT for a truncated or corrupt file.
    bool next_window();
    uint64_t window_index() const { return window_; }
    const int32_t* window_tokens() const { return reinterpret_cast<const int32_t*>(buf_.data() + 4); }
    ExportRecord record(uint32_t r) const;

private:
    [[noreturn]] void corrupt(const std::string& what) const;
    std::string path_;
    ExportHeader header_;
    FILE* f_ = nullptr;
    std::vector<uint8_t> buf_, in_;
    uint64_t window_ = 0, n_read_ = 0;
    bool at_end_ = false;
    void* dctx_ = nullptr;
};

}  // namespace mw::eval
