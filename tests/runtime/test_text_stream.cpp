// TextStream and utf8_complete_prefix tests: UTF-8 tails held until complete,
// stop strings across pieces, false starts released intact, nothing after a
// stop, several stop strings, and byte-level edge cases.
// Engine headers come first: cmocka defines a fail() macro that would clash
// with mw::fail. cmocka.h has no extern "C" of its own.
#include "runtime/text_stream.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "test_util.h"

#include <algorithm>
#include <string>
#include <vector>

using mw::TextStream;
using mw::utf8_complete_prefix;

// Pushes pieces one by one; checks what each push releases and returns.
struct Step {
    const char* piece;
    const char* released;
    bool stops;
};

static void run_steps(TextStream& ts, const std::vector<Step>& steps) {
    for (size_t i = 0; i < steps.size(); i++) {
        std::string out;
        bool stop = ts.push(steps[i].piece, &out);
        if (out != steps[i].released || stop != steps[i].stops)
            fail_msg("step %zu (piece \"%s\"): released \"%s\" stop %d, want \"%s\" stop %d", i, steps[i].piece,
                     out.c_str(), (int)stop, steps[i].released, (int)steps[i].stops);
    }
}

static void test_emoji_split_in_four(void** state) {
    (void)state;
    TextStream ts({});
    // U+1F600 is F0 9F 98 80.
    run_steps(ts, {{"a\xF0", "a", false}, {"\x9F", "", false}, {"\x98", "", false}, {"\x80!", "\xF0\x9F\x98\x80!", false}});
    std::string out;
    ts.flush(&out);
    assert_string_equal(out.c_str(), "");
}

static void test_incomplete_tail_flushed(void** state) {
    (void)state;
    TextStream ts({});
    run_steps(ts, {{"ok\xE2\x82", "ok", false}});
    std::string out;
    ts.flush(&out);
    assert_string_equal(out.c_str(), "\xE2\x82");
}

static void test_stop_spanning_pieces(void** state) {
    (void)state;
    TextStream ts({"<|end|>"});
    run_steps(ts, {{"Hello <", "Hello ", false}, {"|en", "", false}, {"d|", "", false}, {">tail", "", true}});
    assert_true(ts.stopped());
    // Nothing after the stop, from later pushes or flush.
    run_steps(ts, {{"more", "", true}});
    std::string out;
    ts.flush(&out);
    assert_string_equal(out.c_str(), "");
}

static void test_stop_in_middle_of_piece(void** state) {
    (void)state;
    TextStream ts({"STOP"});
    run_steps(ts, {{"abc", "abc", false}, {"deSTOPxyz", "de", true}});
    // A stop whose start was held back in an earlier piece.
    TextStream ts2({"STOP"});
    run_steps(ts2, {{"abST", "ab", false}, {"OPcd", "", true}});
    // Held text before the stop is released with the stop.
    TextStream ts3({"\n\nUser:"});
    run_steps(ts3, {{"answer\n", "answer", false}, {"\nUs", "", false}, {"er: hi", "", true}});
}

static void test_false_start_released(void** state) {
    (void)state;
    // "Hel" could start "Hello"; "p" proves it does not: "Help" comes out whole.
    TextStream ts({"Hello"});
    run_steps(ts, {{"Hel", "", false}, {"p", "Help", false}, {" me", " me", false}});
    // The same pieces do complete a stop string "Help".
    TextStream ts2({"Help"});
    run_steps(ts2, {{"Hel", "", false}, {"p", "", true}});
    // A held prefix that turns out to overlap a later real start.
    TextStream ts3({"aab"});
    run_steps(ts3, {{"xa", "x", false}, {"a", "", false}, {"a", "a", false}, {"b!", "", true}});
    // A false start at the very end is released by flush.
    TextStream ts4({"Help"});
    run_steps(ts4, {{"say Hel", "say ", false}});
    std::string out;
    ts4.flush(&out);
    assert_string_equal(out.c_str(), "Hel");
}

static void test_multiple_stop_strings(void** state) {
    (void)state;
    TextStream ts({"###", "\nQ:", "</s>"});
    run_steps(ts, {{"one\n", "one", false}, {"two #", "\ntwo ", false}, {"# x", "## x", false}, {" </", " ", false},
                   {"s>", "", true}});
    // The stop that completes first wins when two complete in one piece, just
    // as when the bytes arrive one at a time.
    TextStream ts2({"bb", "ab"});
    run_steps(ts2, {{"xabb", "x", true}});
    TextStream ts2b({"abcd", "bc"});
    run_steps(ts2b, {{"abcd", "a", true}});
    TextStream ts2c({"abcd", "bc"});
    run_steps(ts2c, {{"ab", "", false}, {"cd", "a", true}});
    // Same end: the longer one.
    TextStream ts2d({"ab", "xab"});
    run_steps(ts2d, {{"1xab", "1", true}});
    // Stops of different lengths: hold the longest matching prefix.
    TextStream ts3({"ab", "abcd"});
    run_steps(ts3, {{"zab", "z", true}});
    TextStream ts4({"xyz", "yq"});
    run_steps(ts4, {{"1xy", "1", false}, {"q", "x", true}});
}

static void test_no_stop_strings(void** state) {
    (void)state;
    TextStream ts({});
    run_steps(ts, {{"Hello", "Hello", false}, {", world", ", world", false}, {"", "", false}});
    // Empty stop strings are ignored.
    TextStream ts2({"", ""});
    run_steps(ts2, {{"abc", "abc", false}});
    std::string out;
    ts2.flush(&out);
    assert_string_equal(out.c_str(), "");
}

static void test_stop_with_utf8(void** state) {
    (void)state;
    // A multi-byte stop string whose bytes arrive one at a time.
    TextStream ts({"\xC3\xA9t\xC3\xA9"});  // "été"
    run_steps(ts, {{"l\xC3", "l", false}, {"\xA9", "", false}, {"t", "", false}, {"\xC3", "", false}, {"\xA9", "", true}});
    // An incomplete tail next to a held stop prefix: release neither early.
    TextStream ts2({"<e>"});
    run_steps(ts2, {{"\xE2\x82", "", false}, {"\xAC<", "\xE2\x82\xAC", false}, {"x", "<x", false}});
}

static void test_utf8_complete_prefix(void** state) {
    (void)state;
    struct Case {
        std::string s;
        size_t want;
    };
    const std::vector<Case> cases = {
        {"", 0},
        {"abc", 3},
        {"\xC3", 0},                  // truncated 2-byte
        {"a\xC3", 1},
        {"\xC3\xA9", 2},              // complete 2-byte
        {"\xE2", 0},                  // truncated 3-byte, 1 of 3
        {"x\xE2\x82", 1},             // truncated 3-byte, 2 of 3
        {"\xE2\x82\xAC", 3},          // complete 3-byte
        {"\xF0", 0},                  // truncated 4-byte, 1 of 4
        {"\xF0\x9F", 0},              // 2 of 4
        {"ab\xF0\x9F\x98", 2},        // 3 of 4
        {"\xF0\x9F\x98\x80", 4},      // complete 4-byte
        {"\x80", 1},                  // lone continuation: invalid, complete
        {"a\x80\x80\x80\x80", 5},     // run of continuations
        {"\xC3\xA9\xA9", 3},          // extra continuation after a complete char
        {"\xF0\x9F\x98\x80\x80", 5},
        {"a\xFF", 2},                 // never valid in UTF-8
        {"a\xC0", 2},                 // C0/C1 only make overlong forms
        {"a\xC1", 2},
        {"a\xF5", 2},                 // above U+10FFFF
        {"a\xF8", 2},
        {"\xE0\x80", 2},              // overlong 3-byte: can never complete
        {"\xE0\xA0", 0},              // valid start of U+0800
        {"\xED\xA0", 2},              // surrogate
        {"\xF4\x90", 2},              // above U+10FFFF
        {"\xF4\x8F\xBF", 0},          // U+10FFFF, 3 of 4
        {"\xF0\x80", 2},              // overlong 4-byte
        {"\xC3" "a", 2},              // lead followed by ASCII: invalid, complete
        {"\xE2\x82" "a", 3},
    };
    for (size_t i = 0; i < cases.size(); i++) {
        size_t got = utf8_complete_prefix(cases[i].s);
        if (got != cases[i].want) fail_msg("case %zu: got %zu, want %zu", i, got, cases[i].want);
    }
}

// What the stream must produce for a whole text: feed it byte by byte in
// thought; at the first byte where some stop string ends, cut before the
// longest one ending there.
static std::string reference(const std::string& text, const std::vector<std::string>& stops, bool* stopped) {
    for (size_t e = 1; e <= text.size(); e++) {
        size_t longest = 0;
        for (const std::string& s : stops)
            if (!s.empty() && s.size() <= e && text.compare(e - s.size(), s.size(), s) == 0)
                longest = std::max(longest, s.size());
        if (longest > 0) {
            *stopped = true;
            return text.substr(0, e - longest);
        }
    }
    *stopped = false;
    return text;
}

static void test_random_splits(void** state) {
    (void)state;
    // Random texts over a small alphabet (so stop strings overlap and recur),
    // split at random byte offsets (so pieces cut UTF-8 characters), against
    // the byte-by-byte reference. Fixed seed: the same cases every run.
    const char* alphabet[] = {"a", "b", "c", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"};
    const std::vector<std::vector<std::string>> stop_sets = {
        {}, {"ab"}, {"abc", "bca"}, {"a\xC3\xA9" "b"}, {"\xE2\x82\xAC\xE2\x82\xAC"}, {"aab", "ab", "cc"},
        {"\xF0\x9F\x98\x80" "c", "ba"}, {"abcabc"}};
    uint32_t x = 12345;
    auto rnd = [&](uint32_t n) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return x % n;
    };
    for (int iter = 0; iter < 3000; iter++) {
        const std::vector<std::string>& stops = stop_sets[iter % stop_sets.size()];
        std::string text;
        size_t n_chars = rnd(24);
        for (size_t i = 0; i < n_chars; i++) text += alphabet[rnd(6)];
        bool want_stop = false;
        const std::string want = reference(text, stops, &want_stop);

        size_t max_stop = 0;
        for (const std::string& s : stops) max_stop = std::max(max_stop, s.size());
        TextStream ts(stops);
        std::string got;
        bool stopped = false;
        size_t fed = 0;
        while (fed < text.size() && !stopped) {
            size_t len = std::min(text.size() - fed, (size_t)rnd(6));
            stopped = ts.push(std::string_view(text).substr(fed, len), &got);
            fed += len;
            // Released text is final: a prefix of the answer, never cut inside
            // a character, and nothing is held longer than it must be.
            if (want.compare(0, got.size(), got) != 0 || got.size() > want.size())
                fail_msg("iter %d: released \"%s\" is not a prefix of \"%s\"", iter, got.c_str(), want.c_str());
            if (!stopped) {
                assert_int_equal(utf8_complete_prefix(got), got.size());
                assert_true(fed - got.size() <= (max_stop > 0 ? max_stop - 1 : 0) + 3);
            }
        }
        if (!stopped) ts.flush(&got);
        if (got != want || stopped != want_stop)
            fail_msg("iter %d: got \"%s\" stop %d, want \"%s\" stop %d", iter, got.c_str(), (int)stopped, want.c_str(),
                     (int)want_stop);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emoji_split_in_four),
        cmocka_unit_test(test_incomplete_tail_flushed),
        cmocka_unit_test(test_stop_spanning_pieces),
        cmocka_unit_test(test_stop_in_middle_of_piece),
        cmocka_unit_test(test_false_start_released),
        cmocka_unit_test(test_multiple_stop_strings),
        cmocka_unit_test(test_no_stop_strings),
        cmocka_unit_test(test_stop_with_utf8),
        cmocka_unit_test(test_utf8_complete_prefix),
        cmocka_unit_test(test_random_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
