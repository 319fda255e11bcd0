// Tokenizer::from_gguf and the half of encode/decode that BPE and
// SentencePiece share. The order of operations follows llama.cpp's
// llama_vocab::impl::load / tokenize / detokenize so that ids match.
#include "model/tokenizer.h"

#include "base/error.h"
#include "gguf/gguf_file.h"
#include "model/tokenizer_vocab.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>

namespace mw {

bool Tokenizer::is_eog(int32_t id) const {
    return id >= 0 && std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

TokenAttr Tokenizer::attr(int32_t id) const {
    if (id < 0 || id >= n_vocab_) return TokenAttr::Undefined;
    return attrs_[size_t(id)];
}

namespace tok {

namespace {

constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTypes = "tokenizer.ggml.token_type";

uint32_t attr_from_type(int64_t type) {
    switch (type) {
        case 1: return kAttrNormal;
        case 2: return kAttrUnknown;
        case 3: return kAttrControl;
        case 4: return kAttrUserDefined;
        case 5: return kAttrUnused;
        case 6: return kAttrByte;
        default: return kAttrUndefined;
    }
}

// The public, single-valued view of a token's attribute bits.
TokenAttr public_attr(uint32_t bits) {
    if (bits & kAttrControl) return TokenAttr::Control;
    if (bits & kAttrUserDefined) return TokenAttr::UserDefined;
    if (bits & kAttrUnknown) return TokenAttr::Unknown;
    if (bits & kAttrByte) return TokenAttr::Byte;
    if (bits & kAttrNormal) return TokenAttr::Normal;
    if (bits & kAttrUnused) return TokenAttr::Unused;
    return TokenAttr::Undefined;
}

const gguf::Value* find_array(const gguf::File& f, const char* key, std::initializer_list<gguf::ValueType> elems) {
    const gguf::Value* v = f.find(key);
    if (!v) return nullptr;
    if (!v->is_array()) fail(MW_ERR_FORMAT, std::string(key) + ": expected an array, found " + gguf::value_type_name(v->type));
    for (auto t : elems)
        if (v->elem_type == t) return v;
    fail(MW_ERR_FORMAT, std::string(key) + ": unexpected element type " + gguf::value_type_name(v->elem_type));
}

void load_vocab(const gguf::File& f, Vocab& v) {
    const gguf::Value* tokens = find_array(f, kTokens, {gguf::ValueType::STRING});
    if (!tokens) fail(MW_ERR_FORMAT, std::string("missing metadata key ") + kTokens);
    const uint64_t n = tokens->count;
    if (n == 0) fail(MW_ERR_FORMAT, std::string(kTokens) + " is empty");
    if (n > uint64_t(INT32_MAX)) fail(MW_ERR_FORMAT, std::string(kTokens) + ": " + std::to_string(n) + " tokens is too many");

    const gguf::Value* scores = find_array(f, kScores, {gguf::ValueType::FLOAT32, gguf::ValueType::INT32});
    const gguf::Value* types = find_array(f, kTypes, {gguf::ValueType::INT32});
    if (scores && scores->count != n)
        fail(MW_ERR_FORMAT, std::string(kScores) + " has " + std::to_string(scores->count) + " entries, " + kTokens +
                                " has " + std::to_string(n));
    if (types && types->count != n)
        fail(MW_ERR_FORMAT, std::string(kTypes) + " has " + std::to_string(types->count) + " entries, " + kTokens +
                                " has " + std::to_string(n));

    v.tokens = tokens;
    v.n = int32_t(n);
    v.score.assign(n, 0.0f);
    v.attr.assign(n, kAttrNormal);
    for (uint64_t i = 0; i < n; ++i) {
        std::string_view s = tokens->str_at(i);
        // llama.cpp renames empty tokens so that every text stays unique.
        if (s.empty()) v.renamed.emplace_back(int32_t(i), "[EMPTY_" + std::to_string(i) + "]");
        if (scores)
            v.score[i] = scores->elem_type == gguf::ValueType::FLOAT32 ? float(scores->float_at(i))
                                                                        : float(scores->int_at(i));
        if (types) v.attr[i] = attr_from_type(types->int_at(i));
    }
    int32_t twin = -1;
    const int32_t dup = v.build_index(&twin);
    if (dup >= 0)
        fail(MW_ERR_FORMAT, std::string(kTokens) + ": duplicate token '" + std::string(v.text(dup)) +
                                "' at ids " + std::to_string(twin) + " and " + std::to_string(dup));
}

// A special-token id key: absent -> keep `id`; 0xFFFFFFFF / -1 (how converters
// write "none") -> keep `id` as llama.cpp does; any other value must be a
// valid token id.
void read_special_id(const gguf::File& f, const char* key, int32_t n_vocab, int32_t& id) {
    const gguf::Value* v = f.find(key);
    if (!v) return;
    if (!v->is_integer()) fail(MW_ERR_FORMAT, std::string(key) + ": expected an integer, found " + gguf::value_type_name(v->type));
    const bool is_signed = v->type == gguf::ValueType::INT8 || v->type == gguf::ValueType::INT16 ||
                           v->type == gguf::ValueType::INT32 || v->type == gguf::ValueType::INT64;
    if ((is_signed && v->i == -1) || (!is_signed && v->u == 0xFFFFFFFFu)) return;
    if ((is_signed && (v->i < 0 || v->i >= n_vocab)) || (!is_signed && v->u >= uint64_t(n_vocab)))
        fail(MW_ERR_FORMAT, std::string(key) + " = " + (is_signed ? std::to_string(v->i) : std::to_string(v->u)) +
                                " is outside the vocabulary of " + std::to_string(n_vocab) + " tokens");
    id = int32_t(is_signed ? v->i : int64_t(v->u));
}

// The first of `texts` (in order) present in the vocabulary, or -1.
int32_t first_present(const Vocab& v, std::initializer_list<const char*> texts) {
    for (const char* t : texts) {
        int32_t id = v.find(t);
        if (id >= 0) return id;
    }
    return -1;
}

}  // namespace

// ---------------------------------------------------------------- encode

void VocabTokenizer::set_special(int32_t bos, int32_t eos, int32_t eot, std::vector<int32_t> eog, bool add_bos,
                                 bool add_eos) {
    bos_ = bos;
    eos_ = eos;
    eot_ = eot;
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
    eog_ids_ = std::move(eog);
    add_bos_ = add_bos;
    add_eos_ = add_eos;
}

std::vector<int32_t> VocabTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    // Split out special tokens first, longest first, each occurrence left to
    // right. Control and unknown tokens only when parse_special; user-defined
    // tokens always (llama.cpp / HF tokenizers do the same).
    struct Fragment {
        int32_t token;  // -1: raw text
        size_t off, len;
    };
    std::vector<Fragment> frags, next;
    if (!text.empty()) frags.push_back({-1, 0, text.size()});
    for (int32_t id : vocab_.special_by_length) {
        const uint32_t a = vocab_.attr[size_t(id)];
        if (!parse_special && (a & (kAttrControl | kAttrUnknown))) continue;
        const std::string_view st = vocab_.text(id);
        if (text.find(st) == std::string_view::npos) continue;  // cheap common case
        next.clear();
        for (const Fragment& f : frags) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            const size_t end = f.off + f.len;
            const std::string_view window = text.substr(0, end);
            size_t pos = f.off;
            for (;;) {
                const size_t m = window.find(st, pos);
                if (m == std::string_view::npos) break;
                if (m > pos) next.push_back({-1, pos, m - pos});
                next.push_back({id, 0, 0});
                pos = m + st.size();
            }
            if (pos < end) next.push_back({-1, pos, end - pos});
        }
        frags.swap(next);
    }

    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    if (add_special && add_bos_) out.push_back(bos_);
    bool prev_special = true;
    for (const Fragment& f : frags) {
        if (f.token >= 0) {
            out.push_back(f.token);
            prev_special = true;
        } else {
            encode_fragment(text.substr(f.off, f.len), prev_special, out);
            prev_special = false;
        }
    }
    if (add_special && add_eos_) out.push_back(eos_);
    return out;
}

// ---------------------------------------------------------------- pieces

int VocabTokenizer::byte_of_token(int32_t id) const {
    const std::string_view t = vocab_.text(id);
    // llama.cpp reads the two characters after "<0x" as hex.
    if (t.size() < 5) return -1;
    char hex[3] = {t[3], t[4], 0};
    char* end = nullptr;
    const long b = std::strtol(hex, &end, 16);
    return end == hex ? 0 : int(b & 0xFF);
}

std::string VocabTokenizer::piece_uncached(int32_t id) const {
    const uint32_t a = vocab_.attr[size_t(id)];
    if (a & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return std::string(vocab_.text(id));
    if (a & kAttrNormal) return normal_piece(id);
    if (a & kAttrByte) {
        const int b = byte_of_token(id);
        return b < 0 ? std::string() : std::string(1, char(b));
    }
    return std::string();  // undefined / unused tokens have no text
}

void VocabTokenizer::build_piece_cache() {
    piece_bytes_.clear();
    piece_offset_.assign(1, 0);
    piece_offset_.reserve(size_t(n_vocab_) + 1);
    for (int32_t id = 0; id < n_vocab_; ++id) {
        piece_bytes_ += piece_uncached(id);
        if (piece_bytes_.size() > UINT32_MAX) fail(MW_ERR_FORMAT, "tokenizer: token texts too large");
        piece_offset_.push_back(uint32_t(piece_bytes_.size()));
    }
    piece_bytes_.shrink_to_fit();
}

std::string_view VocabTokenizer::piece_view(int32_t id, bool render_special) const {
    if (id < 0 || id >= n_vocab_) return {};
    if (!render_special && (vocab_.attr[size_t(id)] & (kAttrUnknown | kAttrControl))) return {};
    const uint32_t b = piece_offset_[size_t(id)], e = piece_offset_[size_t(id) + 1];
    return std::string_view(piece_bytes_).substr(b, e - b);
}

std::string VocabTokenizer::piece(int32_t id, bool render_special) const {
    return std::string(piece_view(id, render_special));
}

// llama.cpp's clean_up_tokenization_spaces passes, in place, in its order:
// " ?" " !" " ." " ," lose the space; a lone " ' " loses both spaces; " 's",
// " 'm", " 're", " 've" lose the space.
void VocabTokenizer::clean_spaces(std::string& t) const {
    if (t.empty()) return;
    size_t n = t.size(), w = 1;
    for (size_t i = 1; i < n; ++i) {
        const char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            --w;
        t[w++] = x;
    }
    n = w;
    w = 1;
    for (size_t i = 1; i < n; ++i) {
        const char x = t[i];
        if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
            --w;           // the space before
            t[++i] = '\0';  // the space after is skipped (and no longer reads as a space)
        }
        t[w++] = x;
    }
    n = w;
    w = 1;
    for (size_t i = 1; i < n; ++i) {
        const char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            const char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm') {
                --w;
            } else if (i + 2 < n) {
                const char x2 = t[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --w;
            }
        }
        t[w++] = x;
    }
    t.resize(w);
}

size_t VocabTokenizer::memory_bytes() const {
    const Vocab& v = vocab_;
    size_t n = v.score.capacity() * sizeof(float) + v.attr.capacity() * sizeof(uint32_t) +
               v.slots.capacity() * sizeof(int32_t) + v.special_by_length.capacity() * sizeof(int32_t);
    for (const auto& r : v.renamed) n += sizeof(r) + r.second.capacity();
    n += piece_bytes_.capacity() + piece_offset_.capacity() * sizeof(uint32_t);
    n += attrs_.capacity() * sizeof(TokenAttr) + eog_ids_.capacity() * sizeof(int32_t);
    return n + extra_bytes();
}

std::string VocabTokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
    std::string out;
    // The space SentencePiece put in front of the text comes off again: from
    // the first piece, or from the one after a leading BOS that renders as
    // nothing (so decode(encode(text)) == text with or without BOS).
    size_t strip_at = vocab_.add_space_prefix ? 0 : ids.size();
    if (strip_at == 0 && !ids.empty() && ids[0] == bos_ && bos_ >= 0)
        strip_at = piece_view(ids[0], render_special).empty() ? 1 : ids.size();
    for (size_t i = 0; i < ids.size(); ++i) {
        std::string_view p = piece_view(ids[i], render_special);
        if (i == strip_at && !p.empty() && p[0] == ' ') p.remove_prefix(1);
        out.append(p);
    }
    if (vocab_.clean_spaces) clean_spaces(out);
    return out;
}

}  // namespace tok

// ---------------------------------------------------------------- loading

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
    using namespace tok;
    if (!file.find("tokenizer.ggml.model")) fail(MW_ERR_FORMAT, "missing metadata key tokenizer.ggml.model");
    const std::string model(file.get_string("tokenizer.ggml.model"));
    const std::string pre(file.get_string("tokenizer.ggml.pre"));

    std::unique_ptr<VocabTokenizer> t;
    int32_t bos = -1, eos = -1, unk = -1;
    bool add_bos = false, add_space_prefix = false, clean = false;
    if (model == "gpt2") {
        BpeDefaults d;
        t = make_bpe_tokenizer(pre, d);
        bos = 11;  // llama.cpp's defaults for BPE vocabularies
        eos = 11;
        add_bos = d.add_bos;
        clean = d.clean_spaces;
    } else if (model == "llama") {
        t = make_spm_tokenizer();
        bos = 1;
        eos = 2;
        unk = 0;
        add_bos = true;
        add_space_prefix = true;
    } else {
        fail(MW_ERR_UNSUPPORTED, "tokenizer.ggml.model '" + model + "' is not supported (gpt2 and llama are)");
    }
    t->set_identity(model, pre);
    Vocab& v = t->vocab();
    load_vocab(file, v);
    const int32_t n = v.n;
    t->n_vocab_ = n;
    v.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix", add_space_prefix);
    v.clean_spaces = clean;

    // Default ids that fall outside the vocabulary are dropped, as llama.cpp does.
    for (int32_t* id : {&bos, &eos, &unk})
        if (*id >= n) *id = -1;
    int32_t eot = -1, eom = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
    read_special_id(file, "tokenizer.ggml.bos_token_id", n, bos);
    read_special_id(file, "tokenizer.ggml.eos_token_id", n, eos);
    read_special_id(file, "tokenizer.ggml.eot_token_id", n, eot);
    read_special_id(file, "tokenizer.ggml.eom_token_id", n, eom);
    read_special_id(file, "tokenizer.ggml.unknown_token_id", n, unk);
    read_special_id(file, "tokenizer.ggml.fim_pad_token_id", n, fim_pad);
    read_special_id(file, "tokenizer.ggml.fim_rep_token_id", n, fim_rep);
    read_special_id(file, "tokenizer.ggml.fim_sep_token_id", n, fim_sep);
    v.unk = unk;

    add_bos = file.get_bool("tokenizer.ggml.add_bos_token", add_bos);
    const bool add_eos = file.get_bool("tokenizer.ggml.add_eos_token", false);
    if (add_bos && bos < 0) fail(MW_ERR_FORMAT, "tokenizer.ggml.add_bos_token is true, but there is no BOS token");
    if (add_eos && eos < 0) fail(MW_ERR_FORMAT, "tokenizer.ggml.add_eos_token is true, but there is no EOS token");

    // Special tokens the converters do not always label, found by their text.
    // A token found this way that is not typed Control becomes Control.
    auto force_control = [&](int32_t id) {
        if (id >= 0) v.attr[size_t(id)] |= kAttrControl;
    };
    if (eot < 0) {
        eot = first_present(v, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
                                "<end_of_utterance>"});
        force_control(eot);
    }
    if (eom < 0) {
        eom = first_present(v, {"<|eom_id|>"});
        force_control(eom);
    }
    if (fim_pad < 0) {
        fim_pad = first_present(v, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
        force_control(fim_pad);
    }
    if (fim_rep < 0) {
        fim_rep = first_present(v, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
        force_control(fim_rep);
    }
    if (fim_sep < 0) {
        fim_sep = first_present(v, {"<|file_sep|>"});
        force_control(fim_sep);
    }
    // Control tokens named "unused" are unused.
    for (int32_t id = 0; id < n; ++id)
        if ((v.attr[size_t(id)] & kAttrControl) && v.text(id).find("unused") != std::string::npos)
            v.attr[size_t(id)] |= kAttrUnused;

    // End-of-generation set: FIM pad/repo/sep, every token spelled like an end
    // of turn or text, and eos / eot / eom.
    std::vector<int32_t> eog;
    for (int32_t id : {fim_pad, fim_rep, fim_sep})
        if (id >= 0) eog.push_back(id);
    static const char* const kEogTexts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
        "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
        "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~["};
    for (const char* text : kEogTexts) {
        const int32_t id = v.find(text);
        if (id < 0) continue;
        eog.push_back(id);
        force_control(id);
    }
    // gpt-oss: these are always rendered, never treated as control.
    for (const char* text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
        const int32_t id = v.find(text);
        if (id >= 0) v.attr[size_t(id)] = kAttrUserDefined;
    }
    for (int32_t id : {eos, eot, eom})
        if (id >= 0) eog.push_back(id);
    auto contains = [&](int32_t id) { return id >= 0 && std::find(eog.begin(), eog.end(), id) != eog.end(); };
    auto erase_id = [&](int32_t id) { eog.erase(std::remove(eog.begin(), eog.end(), id), eog.end()); };
    // o200k_harmony / solar-open: <|end|> ends a message, not the generation.
    {
        const int32_t ret = v.find("<|return|>"), call = v.find("<|call|>"), calls = v.find("<|calls|>"),
                      flush = v.find("<|flush|>"), end = v.find("<|end|>");
        const bool has_call = contains(call) || contains(calls);
        if (contains(end) && ((contains(ret) && has_call) || (has_call && contains(flush)))) {
            erase_id(end);
            v.attr[size_t(end)] = kAttrUserDefined;
        }
    }
    // gemma4 / paddleocr: </s> is not an end of generation there.
    {
        const int32_t tool = v.find("<|tool_response>"), s = v.find("</s>");
        if (contains(tool) && contains(s)) {
            erase_id(s);
            v.attr[size_t(s)] = kAttrNormal;
        }
    }

    // Tokens split out of the input before the model's own algorithm runs.
    for (int32_t id = 0; id < n; ++id)
        if (v.attr[size_t(id)] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v.special_by_length.push_back(id);
    std::stable_sort(v.special_by_length.begin(), v.special_by_length.end(), [&](int32_t a, int32_t b) {
        return v.text(a).size() > v.text(b).size();
    });

    t->attrs_.resize(size_t(n));
    for (int32_t id = 0; id < n; ++id) t->attrs_[size_t(id)] = public_attr(v.attr[size_t(id)]);
    t->set_special(bos, eos, eot, std::move(eog), add_bos, add_eos);
    t->load_extra(file);
    t->build_piece_cache();
    return t;
}

}  // namespace mw
