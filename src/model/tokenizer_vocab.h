// Private to the tokenizer: the vocabulary shared by the BPE and SentencePiece
// tokenizers, and the common half of encode/decode (special-token splitting,
// BOS/EOS, detokenizer clean-up). Mirrors llama.cpp's llama-vocab.cpp so that
// token ids match it exactly.
#pragma once

#include "gguf/gguf_file.h"
#include "model/tokenizer.h"

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mw::tok {

// llama.cpp's per-token attribute bits (llama_token_attr). A token can carry
// several: e.g. an end-of-turn token whose type said Normal is forced Control.
enum AttrBits : uint32_t {
    kAttrUndefined = 0,
    kAttrUnknown = 1u << 0,
    kAttrUnused = 1u << 1,
    kAttrNormal = 1u << 2,
    kAttrControl = 1u << 3,
    kAttrUserDefined = 1u << 4,
    kAttrByte = 1u << 5,
};

struct Vocab {
    // id -> token text, read in place from the GGUF mapping (which outlives
    // the tokenizer) so the vocabulary costs no anonymous memory; the rare
    // empty tokens are renamed as llama.cpp does and kept in `renamed`.
    const gguf::Value* tokens = nullptr;
    int32_t n = 0;
    std::vector<std::pair<int32_t, std::string>> renamed;  // sorted by id
    std::string_view text(int32_t id) const {
        const std::string_view s = tokens->str_at((uint64_t)id);
        if (!s.empty() || renamed.empty()) return s;
        for (const auto& r : renamed)
            if (r.first == id) return r.second;
        return s;
    }
    std::vector<float> score;
    std::vector<uint32_t> attr;      // AttrBits
    // text -> id: open addressing over ids (-1 = empty), a power-of-two size
    // at least 4/3 of the vocabulary; 4 bytes a slot instead of a node per token.
    std::vector<int32_t> slots;
    int32_t unk = -1;
    bool add_space_prefix = false;
    bool clean_spaces = false;       // llama.cpp's detokenizer clean-up passes
    // Control, user-defined and unknown tokens, longest text first: the order
    // in which llama.cpp splits them out of the input.
    std::vector<int32_t> special_by_length;

    static uint64_t hash(std::string_view s) {
        uint64_t h = 1469598103934665603ull;  // FNV-1a
        for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
        return h;
    }
    int32_t find(std::string_view s) const {
        if (slots.empty()) return -1;
        const size_t mask = slots.size() - 1;
        for (size_t i = (size_t)hash(s) & mask;; i = (i + 1) & mask) {
            const int32_t id = slots[i];
            if (id < 0) return -1;
            if (text(id) == s) return id;
        }
    }
    // Builds the index; returns -1, or the first id of a duplicate pair (*dup_of = its twin).
    int32_t build_index(int32_t* dup_of) {
        size_t cap = 16;
        while (3 * cap < 4 * (size_t)n) cap *= 2;
        slots.assign(cap, -1);
        for (int32_t id = 0; id < n; id++) {
            const std::string_view t = text(id);
            size_t i = (size_t)hash(t) & (cap - 1);
            while (slots[i] >= 0) {
                if (text(slots[i]) == t) {
                    *dup_of = slots[i];
                    return (int32_t)id;
                }
                i = (i + 1) & (cap - 1);
            }
            slots[i] = (int32_t)id;
        }
        return -1;
    }
};

// Common machinery; BpeTokenizer and SpmTokenizer fill in the per-fragment
// encoder and the piece of a normal token.
class VocabTokenizer : public Tokenizer {
public:
    VocabTokenizer() = default;
    VocabTokenizer(const VocabTokenizer&) = delete;  // Vocab::to_id views into Vocab::text
    VocabTokenizer& operator=(const VocabTokenizer&) = delete;

    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override;
    std::string piece(int32_t id, bool render_special) const override;
    std::string_view piece_view(int32_t id, bool render_special) const override;
    std::string decode(const std::vector<int32_t>& ids, bool render_special) const override;
    size_t memory_bytes() const override;

    Vocab& vocab() { return vocab_; }
    const Vocab& vocab() const { return vocab_; }
    // from_gguf fills the fields Tokenizer keeps for its callers.
    void set_identity(std::string model, std::string pre) { model_ = std::move(model); pre_ = std::move(pre); }
    void set_special(int32_t bos, int32_t eos, int32_t eot, std::vector<int32_t> eog, bool add_bos, bool add_eos);
    // Reads what only this kind of tokenizer needs (BPE: the merges) once the
    // vocabulary is loaded, and prepares for encoding.
    virtual void load_extra(const gguf::File& file) = 0;
    // Heap bytes of what load_extra built (BPE merges).
    virtual size_t extra_bytes() const { return 0; }
    // Computes every token's piece once (after attributes are final).
    void build_piece_cache();

protected:
    // One piece of raw text between special tokens. prev_special: the fragment
    // follows a special token or starts the input (SentencePiece adds its space
    // prefix there).
    virtual void encode_fragment(std::string_view text, bool prev_special, std::vector<int32_t>& out) const = 0;
    // The bytes of a Normal token.
    virtual std::string normal_piece(int32_t id) const = 0;
    // The byte a <0xXX> token stands for, or -1.
    int byte_of_token(int32_t id) const;

    Vocab vocab_;

private:
    std::string piece_uncached(int32_t id) const;  // as rendered with specials
    void clean_spaces(std::string& text) const;

    std::string piece_bytes_;             // all pieces, concatenated
    std::vector<uint32_t> piece_offset_;  // n_vocab + 1 offsets into piece_bytes_
};

// Defaults llama.cpp applies per pre-tokenizer before the file's own flags.
struct BpeDefaults {
    bool add_bos = false;
    bool clean_spaces = true;
};

// Throws mw::Error(MW_ERR_UNSUPPORTED) for a pre-tokenizer memwise does not know.
std::unique_ptr<VocabTokenizer> make_bpe_tokenizer(const std::string& pre, BpeDefaults& defaults);
std::unique_ptr<VocabTokenizer> make_spm_tokenizer();

// For tests: the pieces (UTF-8, before byte encoding) the BPE pre-tokenizer
// `pre` cuts text into. Throws MW_ERR_UNSUPPORTED like make_bpe_tokenizer.
std::vector<std::string> bpe_pretokenize(const std::string& pre, std::string_view text);

}  // namespace mw::tok
