// Byte-level BPE (tokenizer.ggml.model = "gpt2"), as llama.cpp runs it:
//  1. pre-tokenize: the pre-tokenizer's regexes (PCRE2, UTF + UCP) split the
//     text in turn, each one within the pieces the previous one left; text
//     between matches stays a piece of its own;
//  2. each piece's UTF-8 bytes become GPT-2's printable byte characters;
//  3. merges apply lowest rank first (leftmost on ties) until none applies;
//  4. each resulting symbol is a token (or, failing that, single-byte tokens).
#include "base/error.h"
#include "gguf/gguf_file.h"
#include "model/tokenizer_unicode.h"
#include "model/tokenizer_vocab.h"

#include <pcre2.h>

#include <algorithm>
#include <cstdio>
#include <queue>

namespace mw::tok {

namespace {

// llama.cpp's pre-tokenizer regexes, verbatim (llama-vocab.cpp).
constexpr const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct RegexSpec {
    const char* pattern;
    // llama.cpp runs the GPT-2 and Llama-3 patterns with hand-written
    // splitters that emit unmatched text one code point at a time; other
    // patterns go through std::regex, which keeps unmatched text whole.
    bool split_gaps;
};

struct PreConfig {
    std::vector<RegexSpec> regexes;
    bool ignore_merges = false;  // a whole piece that is a token skips the merges
    bool add_bos = false;
    bool clean_spaces = true;
};

bool pre_config(const std::string& pre, PreConfig& c) {
    if (pre.empty() || pre == "default") {
        c.regexes = {{"[\\p{P}\\$\\+<=>\\^~\\|]+", false}, {kGpt2, true}, {"\\p{N}+", false}, {"[0-9][0-9][0-9]", false}};
    } else if (pre == "gpt2" || pre == "gpt-2" || pre == "phi-2") {
        c.regexes = {{kGpt2, true}};
    } else if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3") {
        c.regexes = {{kLlama3, true}};
        c.ignore_merges = true;
        c.add_bos = true;
    } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell") {
        c.regexes = {{"\\p{N}", false}, {kGpt2, true}};
        c.clean_spaces = pre != "smollm";
    } else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2") {
        c.regexes = {{kQwen2, false}};
        c.clean_spaces = pre == "stablelm2";
    } else {
        return false;
    }
    return true;
}

// PCRE2 10.42's \s in UCP mode also takes U+180E; llama.cpp's whitespace is
// Unicode's White_Space set. Spell \s and \S out as that set.
constexpr const char* kWhiteSpace =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

std::string expand_whitespace(const char* pattern) {
    std::string out;
    bool in_class = false;
    for (const char* p = pattern; *p; ++p) {
        if (*p == '\\' && p[1]) {
            if (p[1] == 's') {
                out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
            } else if (p[1] == 'S' && !in_class) {
                out += "[^" + std::string(kWhiteSpace) + "]";
            } else {
                out += p[0];
                out += p[1];
            }
            ++p;
            continue;
        }
        if (*p == '[' && !in_class) in_class = true;
        else if (*p == ']' && in_class) in_class = false;
        out += *p;
    }
    return out;
}

class Regex {
public:
    Regex(const char* pattern, bool split_gaps) : split_gaps_(split_gaps) {
        const std::string expanded = expand_whitespace(pattern);
        int err = 0;
        PCRE2_SIZE err_off = 0;
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(expanded.c_str()), expanded.size(), PCRE2_UTF | PCRE2_UCP,
                              &err, &err_off, nullptr);
        if (!code_) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            fail(MW_ERR_INTERNAL, "pre-tokenizer regex does not compile at " + std::to_string(err_off) + ": " +
                                      reinterpret_cast<const char*>(msg));
        }
        pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is the fallback
    }
    ~Regex() { pcre2_code_free(code_); }
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    const pcre2_code* code() const { return code_; }
    bool split_gaps() const { return split_gaps_; }

private:
    pcre2_code* code_ = nullptr;
    bool split_gaps_;
};

struct MatchData {
    explicit MatchData(const pcre2_code* code) : md(pcre2_match_data_create_from_pattern(code, nullptr)) {
        if (!md) fail(MW_ERR_OUT_OF_MEMORY, "pcre2 match data");
    }
    ~MatchData() { pcre2_match_data_free(md); }
    MatchData(const MatchData&) = delete;
    MatchData& operator=(const MatchData&) = delete;
    pcre2_match_data* md;
};

class BpeTokenizer final : public VocabTokenizer {
public:
    explicit BpeTokenizer(PreConfig cfg) : cfg_(std::move(cfg)) {}

    void load_extra(const gguf::File& file) override {
        const gguf::Value* m = file.find("tokenizer.ggml.merges");
        if (!m) fail(MW_ERR_FORMAT, "missing metadata key tokenizer.ggml.merges");
        if (!m->is_array() || m->elem_type != gguf::ValueType::STRING)
            fail(MW_ERR_FORMAT, "tokenizer.ggml.merges: expected an array of strings");
        if (m->count > uint64_t(INT32_MAX)) fail(MW_ERR_FORMAT, "tokenizer.ggml.merges: too many merges");
        for (uint64_t i = 0; i < m->count; ++i) {
            const std::string_view s = m->str_at(i);
            // Split at the first space after the first byte, as llama.cpp does.
            const size_t sp = s.size() > 1 ? s.find(' ', 1) : std::string_view::npos;
            std::string_view a, b;
            if (sp != std::string_view::npos) {
                a = s.substr(0, sp);
                b = s.substr(sp + 1);
            }
            const int32_t ia = vocab_.find(a), ib = vocab_.find(b);
            if (ia >= 0 && ib >= 0) {
                id_ranks_.push_back({pair_key(ia, ib), int32_t(i)});
            } else {
                std::string key(a);
                key += ' ';
                key += b;
                text_ranks_.emplace(std::move(key), int32_t(i));  // keeps the first (lowest) rank
            }
        }
        // Sorted by pair, lowest rank first among duplicates: lookups take the first.
        std::stable_sort(id_ranks_.begin(), id_ranks_.end(),
                         [](const IdRank& x, const IdRank& y) { return x.key < y.key; });
        id_ranks_.shrink_to_fit();
        for (const RegexSpec& r : cfg_.regexes) regexes_.push_back(std::make_unique<Regex>(r.pattern, r.split_gaps));
    }

    // Pre-tokenization alone, for tests (compiles the regexes if needed).
    void split_for_test(const std::vector<uint32_t>& cpts, std::vector<std::pair<uint32_t, uint32_t>>& pieces) {
        if (regexes_.empty() && !cfg_.regexes.empty())
            for (const RegexSpec& r : cfg_.regexes) regexes_.push_back(std::make_unique<Regex>(r.pattern, r.split_gaps));
        split(cpts, pieces);
    }

protected:
    void encode_fragment(std::string_view text, bool, std::vector<int32_t>& out) const override;
    std::string normal_piece(int32_t id) const override;

private:
    struct IdRank {
        uint64_t key;
        int32_t rank;
    };
    struct Symbol {
        int32_t prev, next;
        uint32_t off, len;  // bytes of the word
        int32_t id;         // token with this text, or -1
    };
    struct Bigram {
        int32_t left, right;
        int32_t rank;
        uint32_t size;
    };
    // Top of the queue: lowest rank, then leftmost.
    struct BigramOrder {
        bool operator()(const Bigram& l, const Bigram& r) const {
            return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
        }
    };

    static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

    int32_t rank_of(const std::string& word, const Symbol& l, const Symbol& r, std::string& buf) const {
        if (l.id >= 0 && r.id >= 0) {
            const uint64_t key = pair_key(l.id, r.id);
            auto it = std::lower_bound(id_ranks_.begin(), id_ranks_.end(), key,
                                       [](const IdRank& x, uint64_t k) { return x.key < k; });
            return it != id_ranks_.end() && it->key == key ? it->rank : -1;
        }
        if (text_ranks_.empty()) return -1;
        buf.assign(word, l.off, l.len);
        buf += ' ';
        buf.append(word, r.off, r.len);
        auto it = text_ranks_.find(buf);
        return it == text_ranks_.end() ? -1 : it->second;
    }

    void split(const std::vector<uint32_t>& cpts, std::vector<std::pair<uint32_t, uint32_t>>& pieces) const;
    void merge_word(const std::string& word, std::vector<int32_t>& out) const;

    PreConfig cfg_;
    std::vector<std::unique_ptr<Regex>> regexes_;
    std::vector<IdRank> id_ranks_;                        // merges of two tokens
public:
    size_t extra_bytes() const override {
        size_t n = id_ranks_.capacity() * sizeof(IdRank);
        for (const auto& [k, v] : text_ranks_) n += k.capacity() + sizeof(k) + sizeof(v) + 2 * sizeof(void*);
        return n;  // the compiled regexes are PCRE2's and not counted
    }
private:
    std::unordered_map<std::string, int32_t> text_ranks_;  // merges with a part that is no token (rare)
};

// Splits cpts into pieces [begin, end) of code point indices.
void BpeTokenizer::split(const std::vector<uint32_t>& cpts, std::vector<std::pair<uint32_t, uint32_t>>& pieces) const {
    // PCRE2 needs valid UTF-8; llama.cpp's decoder lets surrogates (and code
    // points past U+10FFFF) through. They are neither letters, digits nor
    // spaces, and so is U+E000, which stands in for them here.
    const size_t n = cpts.size();
    std::string subject;
    subject.reserve(n + n / 2);
    std::vector<uint32_t> byte_of(n + 1);
    for (size_t i = 0; i < n; ++i) {
        byte_of[i] = uint32_t(subject.size());
        uint32_t c = cpts[i];
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) c = 0xE000;
        append_utf8(subject, c);
    }
    byte_of[n] = uint32_t(subject.size());
    std::vector<uint32_t> cpt_at(subject.size() + 1, 0);
    for (size_t i = 0; i <= n; ++i) cpt_at[byte_of[i]] = uint32_t(i);

    pieces.assign(1, {0, uint32_t(n)});
    if (n == 0) pieces.clear();
    std::vector<std::pair<uint32_t, uint32_t>> next;
    for (const auto& re : regexes_) {
        MatchData md(re->code());
        next.clear();
        auto gap = [&](uint32_t b, uint32_t e) {
            if (b >= e) return;
            if (!re->split_gaps()) {
                next.push_back({b, e});
            } else {
                for (uint32_t i = b; i < e; ++i) next.push_back({i, i + 1});
            }
        };
        for (const auto& pc : pieces) {
            const uint32_t base = byte_of[pc.first];
            const auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data() + base);
            const size_t len = byte_of[pc.second] - base;
            size_t start = 0, last = 0;
            while (start <= len) {
                const int rc = pcre2_match(re->code(), subj, len, start, PCRE2_NO_UTF_CHECK, md.md, nullptr);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) fail(MW_ERR_INTERNAL, "pre-tokenizer regex failed with PCRE2 error " + std::to_string(rc));
                const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.md);
                const size_t ms = ov[0], me = ov[1];
                if (me == ms) {  // an empty match makes no piece; step over one character
                    if (ms >= len) break;
                    start = ms + std::min(utf8_len(uint8_t(subject[base + ms])), len - ms);
                    continue;
                }
                gap(cpt_at[base + last], cpt_at[base + ms]);
                next.push_back({cpt_at[base + ms], cpt_at[base + me]});
                last = start = me;
            }
            gap(cpt_at[base + last], pc.second);
        }
        pieces.swap(next);
    }
}

void BpeTokenizer::merge_word(const std::string& word, std::vector<int32_t>& out) const {
    if (cfg_.ignore_merges) {
        const int32_t id = vocab_.find(word);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    std::vector<Symbol> sym;
    sym.reserve(word.size());
    for (size_t off = 0; off < word.size();) {
        const size_t len = std::min(utf8_len(uint8_t(word[off])), word.size() - off);
        const int32_t idx = int32_t(sym.size());
        sym.push_back({idx - 1, off + len == word.size() ? -1 : idx + 1, uint32_t(off), uint32_t(len),
                       vocab_.find(std::string_view(word).substr(off, len))});
        off += len;
    }

    std::string buf;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto add = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        const int32_t rank = rank_of(word, sym[size_t(l)], sym[size_t(r)], buf);
        if (rank >= 0) queue.push({l, r, rank, sym[size_t(l)].len + sym[size_t(r)].len});
    };
    for (int32_t i = 1; i < int32_t(sym.size()); ++i) add(i - 1, i);

    while (!queue.empty()) {
        const Bigram bg = queue.top();
        queue.pop();
        Symbol& l = sym[size_t(bg.left)];
        Symbol& r = sym[size_t(bg.right)];
        // Stale entry: one side was merged away or grew since it was queued
        // (the left symbol's start never moves, so equal sizes mean equal text).
        if (l.len == 0 || r.len == 0 || l.len + r.len != bg.size) continue;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[size_t(r.next)].prev = bg.left;
        l.id = vocab_.find(std::string_view(word).substr(l.off, l.len));
        add(l.prev, bg.left);
        add(bg.left, l.next);
    }

    for (int32_t i = sym.empty() ? -1 : 0; i != -1; i = sym[size_t(i)].next) {
        const Symbol& s = sym[size_t(i)];
        if (s.len == 0) continue;
        if (s.id >= 0) {
            out.push_back(s.id);
            continue;
        }
        // Not a token: llama.cpp falls back to tokens made of single bytes of
        // the (byte-encoded) text, skipping bytes that are no token.
        for (uint32_t j = 0; j < s.len; ++j) {
            const int32_t id = vocab_.find(std::string_view(word).substr(s.off + j, 1));
            if (id >= 0) out.push_back(id);
        }
    }
}

void BpeTokenizer::encode_fragment(std::string_view text, bool, std::vector<int32_t>& out) const {
    const std::vector<uint32_t> cpts = utf8_to_cpts(text);
    std::vector<std::pair<uint32_t, uint32_t>> pieces;
    split(cpts, pieces);
    std::string utf8, word;
    for (const auto& pc : pieces) {
        utf8.clear();
        for (uint32_t i = pc.first; i < pc.second; ++i) append_utf8(utf8, cpts[i]);
        word.clear();
        for (char c : utf8) word += byte_to_unicode(uint8_t(c));
        merge_word(word, out);
    }
}

std::string BpeTokenizer::normal_piece(int32_t id) const {
    const std::string_view text = vocab_.text(id);
    std::string out;
    for (uint32_t cpt : utf8_to_cpts(text)) {
        const int b = unicode_to_byte(cpt);
        if (b >= 0) {
            out += char(b);
            continue;
        }
        // A character outside the byte alphabet: llama.cpp writes this marker.
        std::string u;
        append_utf8(u, cpt);
        out += "[UNK_BYTE_0x";
        for (char c : u) {
            char hex[3];
            std::snprintf(hex, sizeof hex, "%02x", unsigned(uint8_t(c)));
            out += hex;
        }
        out += text;
        out += "]";
    }
    return out;
}

}  // namespace

std::vector<std::string> bpe_pretokenize(const std::string& pre, std::string_view text) {
    BpeDefaults d;
    auto t = make_bpe_tokenizer(pre, d);
    const std::vector<uint32_t> cpts = utf8_to_cpts(text);
    std::vector<std::pair<uint32_t, uint32_t>> pieces;
    static_cast<BpeTokenizer&>(*t).split_for_test(cpts, pieces);
    std::vector<std::string> out;
    for (const auto& pc : pieces) {
        out.emplace_back();
        for (uint32_t i = pc.first; i < pc.second; ++i) append_utf8(out.back(), cpts[i]);
    }
    return out;
}

std::unique_ptr<VocabTokenizer> make_bpe_tokenizer(const std::string& pre, BpeDefaults& defaults) {
    PreConfig cfg;
    if (!pre_config(pre, cfg))
        fail(MW_ERR_UNSUPPORTED, "tokenizer.ggml.pre '" + pre +
                                     "' is not supported (default, gpt2, llama3/llama-bpe, smollm, qwen2 and a few "
                                     "aliases are)");
    defaults.add_bos = cfg.add_bos;
    defaults.clean_spaces = cfg.clean_spaces;
    return std::make_unique<BpeTokenizer>(std::move(cfg));
}

}  // namespace mw::tok
