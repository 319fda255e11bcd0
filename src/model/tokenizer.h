// Tokenizer: text <-> token ids, built from GGUF tokenizer metadata.
//
// Two models: byte-level BPE (tokenizer.ggml.model = "gpt2"), with the
// pre-tokenizer regex chosen by tokenizer.ggml.pre and run with PCRE2 in UTF
// mode; and SentencePiece-style (tokenizer.ggml.model = "llama"): scores,
// byte fallback (<0xXX> tokens), space prefix. Special/control tokens are
// matched in text when parse_special is set. Behaviour matches llama.cpp's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mw::gguf { class File; }

namespace mw {

// GGUF tokenizer.ggml.token_type values
enum class TokenAttr : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

class Tokenizer {
public:
    // Reads tokenizer.ggml.* from the file. Throws mw::Error: MW_ERR_FORMAT for
    // inconsistent metadata, MW_ERR_UNSUPPORTED for an unknown model or pre-tokenizer.
    // The tokenizer keeps views into the file's mapping: the file must outlive it.
    static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
    virtual ~Tokenizer() = default;

    // add_special: prepend BOS / append EOS as the metadata's add_bos/add_eos say.
    // parse_special: text spelled like a special or control token becomes that token.
    virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const = 0;

    // The bytes of one token (SentencePiece: '▁' -> ' ', <0xXX> -> the byte;
    // BPE: byte-level unicode mapped back to bytes). Control/unknown tokens give
    // their text when render_special, else ""; user-defined tokens always give
    // theirs (as in llama.cpp). id must be valid (checked by callers).
    virtual std::string piece(int32_t id, bool render_special) const = 0;
    // The same bytes without allocating: a view into a table built at load,
    // valid as long as the Tokenizer (for the streaming hot path).
    virtual std::string_view piece_view(int32_t id, bool render_special) const = 0;
    // Concatenated pieces. Where the vocabulary adds a space prefix
    // (SentencePiece) the leading space of the first text piece comes off: the
    // first token's, or the one after a leading BOS that renders as nothing,
    // so decode(encode(text)) == text with or without BOS. BPE vocabularies
    // whose pre-tokenizer asks for it (gpt2, llama3) get llama.cpp's clean-up
    // of " ." " ," " 's" etc.
    virtual std::string decode(const std::vector<int32_t>& ids, bool render_special) const = 0;
    // Heap bytes the tokenizer holds (its tables; the vocabulary text stays in
    // the file mapping). For the memory report.
    virtual size_t memory_bytes() const = 0;

    int32_t n_vocab() const { return n_vocab_; }
    int32_t bos() const { return bos_; }      // -1 if none
    int32_t eos() const { return eos_; }      // -1 if none
    int32_t eot() const { return eot_; }      // end of turn (<|im_end|>, <|eot_id|>), -1 if none
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }
    // End of generation: eos, eot, or another token the vocabulary marks as ending a turn.
    bool is_eog(int32_t id) const;
    TokenAttr attr(int32_t id) const;
    const std::string& model_name() const { return model_; }  // "gpt2" or "llama"
    const std::string& pre_name() const { return pre_; }

protected:
    std::string model_, pre_;
    int32_t n_vocab_ = 0;
    int32_t bos_ = -1, eos_ = -1, eot_ = -1;
    bool add_bos_ = false, add_eos_ = false;
    std::vector<int32_t> eog_ids_;
    std::vector<TokenAttr> attrs_;
};

}  // namespace mw
