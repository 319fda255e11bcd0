// TextStream: turns a request's generated token pieces into the bytes that can
// be released to the caller. Holds bytes back while they end in an incomplete
// UTF-8 sequence, or while they could be the start of a stop string; reports a
// stop string as soon as it completes (the stop string and what follows are
// never emitted). The output does not depend on how the text is split into
// pieces: when stop strings overlap, the one that completes first wins.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mw {

class TextStream {
public:
    // Empty stop strings are ignored (they would match before any text).
    explicit TextStream(std::vector<std::string> stop_strings);

    // Adds a token's bytes. Appends the newly releasable bytes to *out.
    // Returns true when a stop string completed (then *out holds the text
    // before it that was still held back). Once stopped, every later push
    // returns true and releases nothing.
    bool push(std::string_view piece, std::string* out);
    // End of generation: releases whatever is still held (an incomplete UTF-8
    // tail is released as is; it is the model's output). Nothing after a stop.
    void flush(std::string* out);

    bool stopped() const { return stopped_; }

private:
    std::vector<std::string> stops_;
    std::string held_;
    bool stopped_ = false;
};

// Length of the longest prefix of s that ends on a complete UTF-8 character
// boundary (an incomplete trailing sequence is excluded; invalid bytes count
// as complete single bytes).
size_t utf8_complete_prefix(std::string_view s);

}  // namespace mw
