// Private to the tokenizer: UTF-8 handling exactly as llama.cpp's unicode.cpp
// does it (so malformed input tokenizes the same way), and GPT-2's byte-level
// mapping between the 256 byte values and printable code points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mw::tok {

// Length of a UTF-8 sequence from its first byte (continuation bytes count as 1).
size_t utf8_len(uint8_t lead);

// Decodes like llama.cpp: a malformed sequence becomes U+FFFD and decoding
// resumes one byte later. Overlong forms are accepted as llama.cpp accepts them.
std::vector<uint32_t> utf8_to_cpts(std::string_view text);

// Appends the UTF-8 form of a code point (values past U+10FFFF become U+FFFD).
void append_utf8(std::string& out, uint32_t cpt);

// GPT-2 byte-level BPE: each byte is shown as a printable code point
// ('!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves; the rest map to U+0100..).
const std::string& byte_to_unicode(uint8_t byte);  // UTF-8 of that code point
int unicode_to_byte(uint32_t cpt);                  // -1 if cpt stands for no byte

}  // namespace mw::tok
