// TextStream implementation. held_ is every byte not yet released. Invariant
// after each push: no stop string occurs in held_, and the released text
// before it cannot be the start of one, because we hold back the longest
// suffix of held_ that is a prefix of some stop string. So a stop string can
// only ever begin inside held_, and searching held_ alone finds it.
#include "runtime/text_stream.h"

#include <algorithm>

namespace mw {

TextStream::TextStream(std::vector<std::string> stop_strings) {
    for (std::string& s : stop_strings)
        if (!s.empty()) stops_.push_back(std::move(s));
}

namespace {

// Length of the longest suffix of text that is a proper prefix of stop.
size_t stop_prefix_suffix(std::string_view text, std::string_view stop) {
    size_t max_len = std::min(text.size(), stop.size() - 1);
    for (size_t len = max_len; len > 0; len--)
        if (text.compare(text.size() - len, len, stop, 0, len) == 0) return len;
    return 0;
}

}  // namespace

bool TextStream::push(std::string_view piece, std::string* out) {
    if (stopped_) return true;
    held_.append(piece.data(), piece.size());

    // The stop string that completes first wins (the earliest end, as if the
    // bytes came one at a time; on a tie the longer one), so the result does
    // not depend on how the text was split into pieces.
    size_t stop_at = std::string::npos, stop_end = std::string::npos;
    for (const std::string& s : stops_) {
        size_t at = held_.find(s);
        if (at == std::string::npos) continue;
        size_t end = at + s.size();
        if (end < stop_end || (end == stop_end && at < stop_at)) {
            stop_at = at;
            stop_end = end;
        }
    }
    if (stop_at != std::string::npos) {
        out->append(held_, 0, stop_at);
        held_.clear();
        stopped_ = true;
        return true;
    }

    size_t hold = 0;
    for (const std::string& s : stops_) hold = std::max(hold, stop_prefix_suffix(held_, s));
    size_t release = std::min(held_.size() - hold, utf8_complete_prefix(held_));
    out->append(held_, 0, release);
    held_.erase(0, release);
    return false;
}

void TextStream::flush(std::string* out) {
    if (!stopped_) out->append(held_);
    held_.clear();
}

namespace {

// Byte count of the sequence a lead byte starts, or 0 when it cannot start one
// (ASCII is 1; continuation bytes, C0, C1 and F5..FF are invalid leads).
size_t utf8_seq_len(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

// Whether b may follow lead as the second byte (excludes overlong forms,
// UTF-16 surrogates and code points above U+10FFFF).
bool utf8_second_ok(unsigned char lead, unsigned char b) {
    switch (lead) {
        case 0xE0: return b >= 0xA0 && b <= 0xBF;
        case 0xED: return b >= 0x80 && b <= 0x9F;
        case 0xF0: return b >= 0x90 && b <= 0xBF;
        case 0xF4: return b >= 0x80 && b <= 0x8F;
        default: return (b & 0xC0) == 0x80;
    }
}

}  // namespace

size_t utf8_complete_prefix(std::string_view s) {
    const size_t n = s.size();
    // Walk back over at most 3 continuation bytes to the byte that would lead
    // the last sequence.
    size_t j = n;
    size_t cont = 0;
    while (j > 0 && cont < 3 && ((unsigned char)s[j - 1] & 0xC0) == 0x80) {
        j--;
        cont++;
    }
    if (j == 0) return n;  // only continuation bytes: invalid, so complete
    const size_t lead_pos = j - 1;
    const unsigned char lead = (unsigned char)s[lead_pos];
    const size_t need = utf8_seq_len(lead);
    const size_t have = n - lead_pos;
    if (need <= 1 || have >= need) return n;  // invalid lead, ASCII or complete
    // A truncated sequence is held only if what is there can still become valid.
    if (have >= 2 && !utf8_second_ok(lead, (unsigned char)s[lead_pos + 1])) return n;
    return lead_pos;
}

}  // namespace mw
