#include "model/tokenizer_unicode.h"

#include <array>

namespace mw::tok {

size_t utf8_len(uint8_t lead) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[lead >> 4];
}

namespace {

bool is_cont(const uint8_t* p) { return (*p & 0xC0) == 0x80; }

// One code point at text[pos], or -1 when the sequence is malformed. The
// checks are llama.cpp's: lead-byte shape and continuation bytes only.
int64_t decode_one(std::string_view text, size_t pos, size_t& len) {
    const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + pos;
    const size_t avail = text.size() - pos;
    const uint8_t b = p[0];
    if (!(b & 0x80)) { len = 1; return b; }
    if (!(b & 0x40)) return -1;
    if (!(b & 0x20)) {
        if (avail < 2 || !is_cont(p + 1)) return -1;
        len = 2;
        return ((b & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if (!(b & 0x10)) {
        if (avail < 3 || !is_cont(p + 1) || !is_cont(p + 2)) return -1;
        len = 3;
        return ((b & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    if (!(b & 0x08)) {
        if (avail < 4 || !is_cont(p + 1) || !is_cont(p + 2) || !is_cont(p + 3)) return -1;
        len = 4;
        return ((b & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    }
    return -1;
}

struct ByteMap {
    std::array<std::string, 256> to_unicode;
    std::array<int16_t, 512> from_cpt;  // every mapped code point is below U+0200

    ByteMap() {
        from_cpt.fill(-1);
        auto keeps_itself = [](int b) {
            return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        };
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            const uint32_t cpt = keeps_itself(b) ? uint32_t(b) : uint32_t(256 + n++);
            append_utf8(to_unicode[b], cpt);
            from_cpt[cpt] = int16_t(b);
        }
    }
};

const ByteMap& byte_map() {
    static const ByteMap map;
    return map;
}

}  // namespace

std::vector<uint32_t> utf8_to_cpts(std::string_view text) {
    std::vector<uint32_t> out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
        size_t len = 1;
        const int64_t cpt = decode_one(text, pos, len);
        if (cpt < 0) {
            out.push_back(0xFFFD);
            pos += 1;
        } else {
            out.push_back(uint32_t(cpt));
            pos += len;
        }
    }
    return out;
}

void append_utf8(std::string& out, uint32_t cpt) {
    if (cpt <= 0x7F) {
        out.push_back(char(cpt));
    } else if (cpt <= 0x7FF) {
        out.push_back(char(0xC0 | (cpt >> 6)));
        out.push_back(char(0x80 | (cpt & 0x3F)));
    } else if (cpt <= 0xFFFF) {
        out.push_back(char(0xE0 | (cpt >> 12)));
        out.push_back(char(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cpt & 0x3F)));
    } else if (cpt <= 0x10FFFF) {
        out.push_back(char(0xF0 | (cpt >> 18)));
        out.push_back(char(0x80 | ((cpt >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cpt & 0x3F)));
    } else {
        append_utf8(out, 0xFFFD);
    }
}

const std::string& byte_to_unicode(uint8_t byte) { return byte_map().to_unicode[byte]; }

int unicode_to_byte(uint32_t cpt) { return cpt < 512 ? byte_map().from_cpt[cpt] : -1; }

}  // namespace mw::tok
