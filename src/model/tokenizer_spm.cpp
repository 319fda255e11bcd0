// SentencePiece-style BPE (tokenizer.ggml.model = "llama"), as llama.cpp runs
// it: spaces become U+2581 ("▁"), a space is put in front of text that starts
// the input or follows a special token (add_space_prefix), then adjacent
// symbols merge, highest token score first (leftmost on ties), as long as the
// merged text is a token. Symbols left that are no token become byte tokens
// <0xXX>.
#include "base/error.h"
#include "gguf/gguf_file.h"
#include "model/tokenizer_unicode.h"
#include "model/tokenizer_vocab.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>

namespace mw::tok {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581

class SpmTokenizer final : public VocabTokenizer {
public:
    void load_extra(const gguf::File&) override {
        for (int b = 0; b < 256; ++b) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "<0x%02X>", b);
            int32_t id = vocab_.find(hex);
            if (id < 0) id = vocab_.find(std::string(1, char(b)));  // llama.cpp's second choice
            byte_token_[size_t(b)] = id;
        }
    }

protected:
    void encode_fragment(std::string_view text, bool prev_special, std::vector<int32_t>& out) const override;

    std::string normal_piece(int32_t id) const override {
        const std::string_view t = vocab_.text(id);
        std::string out;
        out.reserve(t.size());
        for (size_t i = 0; i < t.size();) {
            if (t.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
                out += ' ';
                i += kSpaceMark.size();
            } else {
                out += t[i++];
            }
        }
        return out;
    }

private:
    struct Symbol {
        int32_t prev, next;
        uint32_t off, len;
    };
    struct Bigram {
        int32_t left, right;
        float score;
        uint32_t size;
    };
    // Top of the queue: highest score, then leftmost.
    struct BigramOrder {
        bool operator()(const Bigram& l, const Bigram& r) const {
            return l.score < r.score || (l.score == r.score && l.left > r.left);
        }
    };

    std::array<int32_t, 256> byte_token_{};
};

void SpmTokenizer::encode_fragment(std::string_view text, bool prev_special, std::vector<int32_t>& out) const {
    std::string s;
    s.reserve(text.size() + 8);
    if (vocab_.add_space_prefix && prev_special) s += kSpaceMark;
    for (char c : text) {
        if (c == ' ') s += kSpaceMark;
        else s += c;
    }
    if (s.empty()) return;

    std::vector<Symbol> sym;
    sym.reserve(s.size());
    for (size_t off = 0; off < s.size();) {
        const size_t len = std::min(utf8_len(uint8_t(s[off])), s.size() - off);
        const int32_t idx = int32_t(sym.size());
        sym.push_back({idx - 1, off + len == s.size() ? -1 : idx + 1, uint32_t(off), uint32_t(len)});
        off += len;
    }

    const std::string_view sv(s);
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    auto add = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        const uint32_t size = sym[size_t(l)].len + sym[size_t(r)].len;
        const int32_t id = vocab_.find(sv.substr(sym[size_t(l)].off, size));
        if (id < 0) return;
        queue.push({l, r, vocab_.score[size_t(id)], size});
    };
    for (int32_t i = 1; i < int32_t(sym.size()); ++i) add(i - 1, i);

    while (!queue.empty()) {
        const Bigram bg = queue.top();
        queue.pop();
        Symbol& l = sym[size_t(bg.left)];
        Symbol& r = sym[size_t(bg.right)];
        if (l.len == 0 || r.len == 0 || l.len + r.len != bg.size) continue;  // stale
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) sym[size_t(r.next)].prev = bg.left;
        add(l.prev, bg.left);
        add(bg.left, l.next);
    }

    for (int32_t i = 0; i != -1; i = sym[size_t(i)].next) {
        const Symbol& x = sym[size_t(i)];
        const int32_t id = vocab_.find(sv.substr(x.off, x.len));
        if (id >= 0) {
            out.push_back(id);
            continue;
        }
        // Byte fallback. A vocabulary without byte tokens gets <unk> (llama.cpp
        // throws here).
        for (uint32_t j = 0; j < x.len; ++j) {
            const int32_t b = byte_token_[uint8_t(s[x.off + j])];
            if (b >= 0) out.push_back(b);
            else if (vocab_.unk >= 0) out.push_back(vocab_.unk);
        }
    }
}

}  // namespace

std::unique_ptr<VocabTokenizer> make_spm_tokenizer() { return std::make_unique<SpmTokenizer>(); }

}  // namespace mw::tok
