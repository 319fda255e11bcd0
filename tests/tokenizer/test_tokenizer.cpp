// Tests of the tokenizer and the chat templates.
//  - llama.cpp oracle fixtures (tests/data/tokenizer_*.txt, chat_smollm2.txt,
//    made by tests/data/make_fixtures.py): exact token ids for every case,
//    decode round trips, and the SmolLM2 chat template as jinja2 renders it;
//  - small synthetic vocabularies (written with gguf::Writer) for the merge
//    order, special-token splitting, byte fallback and detokenizer clean-up;
//  - the pre-tokenizer regexes on known splits;
//  - malformed tokenizer metadata;
//  - chat template detection and formatting.
//
// Project headers come before cmocka.h: cmocka defines a fail() macro that
// would clash with mw::fail in base/error.h.
#include "base/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "model/tokenizer_unicode.h"
#include "model/tokenizer_vocab.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
}
#include "test_util.h"

using mw::ChatMessage;
using mw::ChatTemplateKind;
using mw::Tokenizer;
using mw::gguf::File;
using mw::gguf::Writer;
using Ids = std::vector<int32_t>;

namespace {

// ---- helpers ----------------------------------------------------------------

struct Outcome {
    bool threw = false;
    mw_status status = MW_OK;
    std::string message;
};

template <class F> Outcome attempt(F&& f) {
    Outcome o;
    try {
        f();
    } catch (const mw::Error& e) {
        o = {true, e.status(), e.what()};
    } catch (const std::exception& e) {
        o = {true, MW_ERR_INTERNAL, std::string("non-mw exception: ") + e.what()};
    }
    return o;
}

void expect_error(const Outcome& o, mw_status status, const char* needle) {
    if (!o.threw || o.status != status || o.message.find(needle) == std::string::npos)
        printf("expected status %d with '%s'; got threw=%d status=%d message='%s'\n", int(status), needle,
               int(o.threw), int(o.status), o.message.c_str());
    assert_true(o.threw);
    assert_int_equal(o.status, status);
    assert_true(o.message.find(needle) != std::string::npos);
}

std::string show_ids(const Ids& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s.empty() ? "-" : s;
}

std::string escaped(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += char(c);
        } else {
            char buf[8];
            snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

std::string unhex(const std::string& h) {
    if (h == "-") return std::string();
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out += char(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

Ids parse_ids(const std::string& s) {
    Ids ids;
    if (s == "-") return ids;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) ids.push_back(int32_t(std::stol(item)));
    return ids;
}

// Lines of a tests/data file that are not comments; false if it is absent.
bool read_data_lines(const char* name, std::vector<std::string>& lines) {
    const std::string path = std::string(mw_test_data_dir()) + "/" + name;
    std::ifstream in(path);
    if (!in) return false;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty() && line[0] != '#') lines.push_back(line);
    return true;
}

// An in-memory GGUF with tokenizer metadata, kept alive with its File.
struct Image {
    std::vector<uint8_t> bytes;
    std::unique_ptr<File> file;
};

Image make_image(const Writer& w) {
    Image img;
    img.bytes = w.serialize();
    img.file = File::from_memory(img.bytes.data(), img.bytes.size());
    return img;
}

// The 256 byte-level characters, then `extra` tokens.
std::vector<std::string> byte_level_tokens(const std::vector<std::string>& extra) {
    std::vector<std::string> t;
    for (int b = 0; b < 256; ++b) t.push_back(mw::tok::byte_to_unicode(uint8_t(b)));
    t.insert(t.end(), extra.begin(), extra.end());
    return t;
}

Writer bpe_writer(const std::string& pre, const std::vector<std::string>& tokens, const std::vector<std::string>& merges) {
    Writer w;
    w.set_string("general.architecture", "llama");
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", pre);
    w.set_array_string("tokenizer.ggml.tokens", tokens);
    w.set_array_string("tokenizer.ggml.merges", merges);
    return w;
}

// ---- llama.cpp fixtures -------------------------------------------------------

// Every case in the fixture must give exactly llama.cpp's ids; texts tokenized
// without parsing specials must decode back to themselves.
void check_fixture(const char* model_file, const char* fixture) {
    // skip() longjmps past destructors: decide before anything is allocated.
    MW_REQUIRE_MODEL(path, model_file);
    std::vector<std::string> lines;
    if (!read_data_lines(fixture, lines)) {
        printf("SKIP: fixture %s/%s not found (tests/data/make_fixtures.py makes it)\n", mw_test_data_dir(), fixture);
        skip();
    }
    auto file = File::open(path);
    auto tok = Tokenizer::from_gguf(*file);

    int failures = 0, round_trip_failures = 0, cases = 0;
    for (const std::string& line : lines) {
        std::istringstream ls(line);
        int add = 0, parse = 0;
        std::string hex, ids_text;
        ls >> add >> parse >> hex >> ids_text;
        const bool parsed = static_cast<bool>(ls);
        assert_true(parsed);
        const std::string text = unhex(hex);
        const Ids want = parse_ids(ids_text);
        const Ids got = tok->encode(text, add != 0, parse != 0);
        ++cases;
        if (got != want) {
            ++failures;
            printf("MISMATCH %s add=%d parse=%d text='%s'\n  want %s\n  got  %s\n", fixture, add, parse,
                   escaped(text).substr(0, 300).c_str(), show_ids(want).c_str(), show_ids(got).c_str());
        }
        if (!parse) {
            const std::string back = tok->decode(got, false);
            if (back != text) {
                ++round_trip_failures;
                printf("ROUND TRIP %s add=%d text='%s'\n  back='%s'\n", fixture, add, escaped(text).substr(0, 300).c_str(),
                       escaped(back).substr(0, 300).c_str());
            }
        }
    }
    printf("%s: %d cases, %d mismatches, %d round-trip failures\n", fixture, cases, failures, round_trip_failures);
    assert_true(cases >= 10);
    assert_int_equal(failures, 0);
    assert_int_equal(round_trip_failures, 0);
}

void test_fixture_smollm2(void**) { check_fixture(MW_SMOLLM_MODEL, "tokenizer_smollm2.txt"); }
void test_fixture_stories(void**) { check_fixture(MW_STORIES_MODEL, "tokenizer_stories260K.txt"); }

// ---- real models: metadata facts ---------------------------------------------

void test_smollm2_facts(void**) {
    MW_REQUIRE_MODEL(path, MW_SMOLLM_MODEL);
    auto file = File::open(path);
    auto tok = Tokenizer::from_gguf(*file);
    assert_string_equal(tok->model_name().c_str(), "gpt2");
    assert_string_equal(tok->pre_name().c_str(), "smollm");
    assert_int_equal(tok->n_vocab(), 49152);
    assert_int_equal(tok->bos(), 1);
    assert_int_equal(tok->eos(), 2);
    assert_int_equal(tok->eot(), 2);  // <|im_end|>
    assert_false(tok->add_bos());
    assert_false(tok->add_eos());
    assert_true(tok->is_eog(2));
    assert_true(tok->is_eog(0));  // <|endoftext|>
    assert_false(tok->is_eog(1));
    assert_false(tok->is_eog(-1));
    assert_int_equal(int(tok->attr(1)), int(mw::TokenAttr::Control));
    // Control tokens render only on request; ordinary pieces map back to bytes.
    assert_string_equal(tok->piece(2, true).c_str(), "<|im_end|>");
    assert_true(tok->piece(2, false).empty());
    const Ids hello = tok->encode("Hello world", false, false);
    assert_string_equal(tok->piece(hello[1], false).c_str(), " world");
    assert_true(tok->piece_view(hello[1], false) == " world");
    // Specials parsed only when asked.
    const Ids chat = tok->encode("<|im_start|>user\nhi<|im_end|>", false, true);
    assert_int_equal(chat.front(), 1);
    assert_int_equal(chat.back(), 2);
    assert_string_equal(tok->decode(chat, true).c_str(), "<|im_start|>user\nhi<|im_end|>");
    assert_string_equal(tok->decode(chat, false).c_str(), "user\nhi");
    const Ids plain = tok->encode("<|im_start|>", false, false);
    assert_true(plain.size() > 1);
}

void test_stories_facts(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto file = File::open(path);
    auto tok = Tokenizer::from_gguf(*file);
    assert_string_equal(tok->model_name().c_str(), "llama");
    assert_int_equal(tok->n_vocab(), 512);
    assert_int_equal(tok->bos(), 1);
    assert_int_equal(tok->eos(), 2);
    assert_true(tok->add_bos());
    assert_true(tok->is_eog(2));
    assert_false(tok->is_eog(1));
    assert_int_equal(int(tok->attr(0)), int(mw::TokenAttr::Unknown));
    assert_int_equal(int(tok->attr(3)), int(mw::TokenAttr::Byte));
    // <0x0A> is the byte 0x0A; <s> renders only on request.
    assert_string_equal(tok->piece(3 + 0x0A, false).c_str(), "\n");
    assert_string_equal(tok->piece(1, true).c_str(), "<s>");
    assert_true(tok->piece(1, false).empty());
    // The space prefix comes off in decode, with or without BOS; a rendered
    // BOS keeps it (as llama.cpp's detokenizer does).
    const Ids with_bos = tok->encode("Hello world", true, false);
    assert_int_equal(with_bos[0], 1);
    assert_string_equal(tok->decode(with_bos, false).c_str(), "Hello world");
    assert_string_equal(tok->decode(Ids(with_bos.begin() + 1, with_bos.end()), false).c_str(), "Hello world");
    assert_string_equal(tok->decode(with_bos, true).c_str(), "<s> Hello world");
    // The first piece keeps its space in piece(): streaming shows it.
    assert_int_equal(tok->piece(with_bos[1], false)[0], ' ');
}

// ---- synthetic vocabularies -------------------------------------------------

// Merges apply lowest rank first, whatever their position in the word.
void test_bpe_merge_order(void**) {
    const auto tokens = byte_level_tokens({"ab", "bc", "abc", "aa"});
    auto encode_with = [&](const std::vector<std::string>& merges, const std::string& text) {
        auto img = make_image(bpe_writer("gpt2", tokens, merges));
        return Tokenizer::from_gguf(*img.file)->encode(text, false, false);
    };
    const int32_t a = 'a', b = 'b', c = 'c';  // byte-level 'a' is token 97
    const int32_t ab = 256, bc = 257, abc = 258, aa = 259;
    assert_true(encode_with({"a b", "b c"}, "abc") == Ids({ab, c}));
    assert_true(encode_with({"b c", "a b"}, "abc") == Ids({a, bc}));
    assert_true(encode_with({"b c", "a b", "a bc"}, "abc") == Ids({abc}));
    assert_true(encode_with({"a b", "b c", "a bc"}, "abc") == Ids({ab, c}));
    // Equal ranks: leftmost first.
    assert_true(encode_with({"a a"}, "aaa") == Ids({aa, a}));
    assert_true(encode_with({"a a"}, "aaaa") == Ids({aa, aa}));
    // A merge whose result is no token leaves single-byte tokens.
    assert_true(encode_with({"c a"}, "ca") == Ids({c, a}));
    (void)b;
}

void test_bpe_specials_and_bytes(void**) {
    const auto tokens = byte_level_tokens({"<|c|>", "<u>", "<|c|><u>"});
    const int32_t ctl = 256, user = 257, longer = 258;
    Writer w = bpe_writer("gpt2", tokens, {});
    std::vector<int32_t> types(tokens.size(), 1);
    types[size_t(ctl)] = 3;
    types[size_t(user)] = 4;
    types[size_t(longer)] = 3;
    w.set_array_i32("tokenizer.ggml.token_type", types);
    w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(ctl));
    w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(ctl));
    auto img = make_image(w);
    auto tok = Tokenizer::from_gguf(*img.file);
    assert_false(tok->add_bos());
    // User-defined tokens are split out even without parse_special.
    assert_true(tok->encode("x<u>y", false, false) == Ids({'x', user, 'y'}));
    // Control tokens only with parse_special; the longest special wins.
    const Ids plain = tok->encode("<|c|>z", false, false);
    assert_int_equal(plain.size(), 6);
    assert_true(tok->encode("<|c|>z", false, true) == Ids({ctl, 'z'}));
    assert_true(tok->encode("<|c|><u>", false, true) == Ids({longer}));
    assert_true(tok->encode("<|c|><u>", false, false) == Ids({'<', '|', 'c', '|', '>', user}));
    // Bytes outside ASCII: each UTF-8 byte is a byte-level token.
    assert_true(tok->encode("\xC3\xA9", false, false) == Ids({0xC3, 0xA9}));
    assert_string_equal(tok->decode({0xC3, 0xA9}, false).c_str(), "\xC3\xA9");
    // Malformed UTF-8 becomes U+FFFD, as in llama.cpp.
    assert_true(tok->encode("\xFF", false, false) == Ids({0xEF, 0xBF, 0xBD}));
    // Truncated sequences and stray continuation bytes: one U+FFFD per bad
    // byte; a surrogate's bytes pass through unchanged (llama.cpp's decoder).
    assert_true(tok->encode("a\xE6\x97", false, false) == Ids({'a', 0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD}));
    assert_true(tok->encode("\xED\xA0\x80", false, false) == Ids({0xED, 0xA0, 0x80}));
    // User-defined tokens render even without render_special; control ones don't.
    assert_string_equal(tok->piece(user, false).c_str(), "<u>");
    assert_true(tok->piece(ctl, false).empty());
}

// llama.cpp's clean_up_tokenization_spaces, on for "gpt2", off for "smollm".
void test_bpe_clean_spaces(void**) {
    const auto tokens = byte_level_tokens({});
    auto round = [&](const char* pre, const std::string& text) {
        auto img = make_image(bpe_writer(pre, tokens, {}));
        auto tok = Tokenizer::from_gguf(*img.file);
        return tok->decode(tok->encode(text, false, false), false);
    };
    assert_string_equal(round("gpt2", "a . b , c ? d !").c_str(), "a. b, c? d!");
    assert_string_equal(round("gpt2", "it ' s").c_str(), "it's");
    assert_string_equal(round("gpt2", "we 're they 've I 'm he 's it 'll").c_str(), "we're they've I'm he's it 'll");
    assert_string_equal(round("smollm", "a . b ' c 're").c_str(), "a . b ' c 're");
}

Writer spm_writer(const std::vector<std::string>& extra, const std::vector<float>& extra_scores) {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        tokens.push_back(buf);
        scores.push_back(0);
        types.push_back(6);
    }
    for (size_t i = 0; i < extra.size(); ++i) {
        tokens.push_back(extra[i]);
        scores.push_back(extra_scores[i]);
        types.push_back(1);
    }
    Writer w;
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_array_string("tokenizer.ggml.tokens", tokens);
    w.set_array_f32("tokenizer.ggml.scores", scores);
    w.set_array_i32("tokenizer.ggml.token_type", types);
    return w;
}

void test_spm_synthetic(void**) {
    const std::string sp = "\xE2\x96\x81";
    const std::vector<std::string> extra = {sp, "a", "b", "c", sp + "a", "ab", "bc", sp + "ab", "abc"};
    // "▁ab" outscores "bc": "▁abc" -> ▁ab c.  With "bc" higher: ▁a bc.
    {
        auto img = make_image(spm_writer(extra, {-1, -1, -1, -1, -2, -3, -4, -1, -5}));
        auto tok = Tokenizer::from_gguf(*img.file);
        const int32_t base = 3 + 256;
        assert_true(tok->add_bos());
        assert_true(tok->encode("abc", true, false) == Ids({1, base + 7, base + 3}));
        assert_true(tok->encode("abc", false, false) == Ids({base + 7, base + 3}));
        // A space prefix after a special token too; spaces become ▁.
        assert_true(tok->encode("<s>a b", false, true) == Ids({1, base + 4, base + 0, base + 2}));
        // Unknown characters fall back to byte tokens.
        assert_true(tok->encode("\xC3\xA9", false, false) == Ids({base + 0, 3 + 0xC3, 3 + 0xA9}));
        assert_string_equal(tok->decode(tok->encode("ab \xC3\xA9", true, false), false).c_str(), "ab \xC3\xA9");
        assert_string_equal(tok->piece(base + 7, false).c_str(), " ab");
    }
    {
        auto img = make_image(spm_writer(extra, {-1, -1, -1, -1, -2, -3, -0.5f, -1, -5}));
        auto tok = Tokenizer::from_gguf(*img.file);
        const int32_t base = 3 + 256;
        assert_true(tok->encode("abc", false, false) == Ids({base + 4, base + 6}));
    }
    // add_space_prefix = false: no ▁ in front.
    {
        Writer w = spm_writer(extra, {-1, -1, -1, -1, -2, -3, -4, -1, -5});
        w.set_bool("tokenizer.ggml.add_space_prefix", false);
        auto img = make_image(w);
        auto tok = Tokenizer::from_gguf(*img.file);
        const int32_t base = 3 + 256;
        assert_true(tok->encode("abc", false, false) == Ids({base + 8}));
    }
}

// The tokenizer is shared by threads: concurrent encodes give the same ids.
void test_concurrent_encode(void**) {
    MW_REQUIRE_MODEL(path, MW_SMOLLM_MODEL);
    auto file = File::open(path);
    auto tok = Tokenizer::from_gguf(*file);
    std::string text;
    for (int i = 0; i < 200; ++i) text += "Thread " + std::to_string(i) + ": caf\xC3\xA9 <|im_end|> don't stop.\n";
    const Ids want = tok->encode(text, true, true);
    std::vector<Ids> got(4);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < got.size(); ++t)
        threads.emplace_back([&, t] {
            for (int rep = 0; rep < 5; ++rep) got[t] = tok->encode(text, true, true);
        });
    for (auto& th : threads) th.join();
    for (const Ids& g : got) assert_true(g == want);
}

// ---- pre-tokenizer regexes ----------------------------------------------------

void expect_split(const char* pre, const std::string& text, const std::vector<std::string>& want) {
    const auto got = mw::tok::bpe_pretokenize(pre, text);
    if (got != want) {
        printf("pre=%s text='%s'\n  got:", pre, escaped(text).c_str());
        for (const auto& p : got) printf(" [%s]", escaped(p).c_str());
        printf("\n");
    }
    assert_true(got == want);
}

void test_pretokenizers(void**) {
    expect_split("gpt2", "Hello world's  test 123\n", {"Hello", " world", "'s", " ", " test", " 123", "\n"});
    expect_split("gpt2", "I'LL", {"I", "'", "LL"});
    // SmolLM: digits one by one, then GPT-2's pattern within each piece.
    expect_split("smollm", "abc 12345 x", {"abc", " ", "1", "2", "3", "4", "5", " x"});
    expect_split("llama3", "Hello world  123456 I'LL\n\n  x",
                 {"Hello", " world", " ", " ", "123", "456", " I", "'LL", "\n\n", " ", " x"});
    expect_split("qwen2", "abc 12345", {"abc", " ", "1", "2", "3", "4", "5"});
    expect_split("default", "a+b=12345!", {"a", "+", "b", "=", "123", "45", "!"});
    // Unicode letters, digits and spaces (U+3000 is White_Space).
    expect_split("gpt2", "caf\xC3\xA9 \xE2\x85\xA7\xE3\x80\x80x", {"caf\xC3\xA9", " \xE2\x85\xA7", "\xE3\x80\x80", "x"});
    expect_split("gpt2", "", {});
    const Outcome o = attempt([] { mw::tok::bpe_pretokenize("nonesuch", "x"); });
    expect_error(o, MW_ERR_UNSUPPORTED, "nonesuch");
}

// ---- malformed metadata -----------------------------------------------------------

void test_malformed(void**) {
    const auto tokens = byte_level_tokens({});
    auto load = [](const Writer& w) {
        return attempt([&] {
            auto img = make_image(w);
            Tokenizer::from_gguf(*img.file);
        });
    };
    {
        Writer w;
        w.set_string("tokenizer.ggml.model", "gpt2");
        w.set_string("tokenizer.ggml.pre", "gpt2");
        w.set_array_string("tokenizer.ggml.merges", {});
        expect_error(load(w), MW_ERR_FORMAT, "tokenizer.ggml.tokens");
    }
    {
        Writer w;
        w.set_array_string("tokenizer.ggml.tokens", tokens);
        expect_error(load(w), MW_ERR_FORMAT, "tokenizer.ggml.model");
    }
    {
        Writer w = bpe_writer("gpt2", tokens, {});
        w.set_array_f32("tokenizer.ggml.scores", std::vector<float>(10, 0.0f));
        expect_error(load(w), MW_ERR_FORMAT, "tokenizer.ggml.scores");
    }
    {
        Writer w = bpe_writer("gpt2", tokens, {});
        w.set_array_f32("tokenizer.ggml.token_type", std::vector<float>(tokens.size(), 1.0f));
        expect_error(load(w), MW_ERR_FORMAT, "tokenizer.ggml.token_type");
    }
    {
        Writer w = bpe_writer("gpt2", tokens, {});
        w.set_array_i32("tokenizer.ggml.token_type", std::vector<int32_t>(3, 1));
        expect_error(load(w), MW_ERR_FORMAT, "tokenizer.ggml.token_type");
    }
    {
        auto dup = tokens;
        dup.push_back("a");
        expect_error(load(bpe_writer("gpt2", dup, {})), MW_ERR_FORMAT, "duplicate token");
    }
    {
        Writer w = bpe_writer("gpt2", tokens, {});
        w.set_u32("tokenizer.ggml.bos_token_id", 100000);
        expect_error(load(w), MW_ERR_FORMAT, "tokenizer.ggml.bos_token_id");
    }
    {
        Writer w = bpe_writer("gpt2", tokens, {});
        w.set_u32("tokenizer.ggml.eos_token_id", 0xFFFFFFFFu);  // "none": tolerated like llama.cpp
        assert_false(load(w).threw);
    }
    {
        Writer w;
        w.set_string("tokenizer.ggml.model", "gpt2");
        w.set_string("tokenizer.ggml.pre", "gpt2");
        w.set_array_string("tokenizer.ggml.tokens", {"a", "b", "c"});
        w.set_array_string("tokenizer.ggml.merges", {});
        w.set_bool("tokenizer.ggml.add_bos_token", true);  // the default BOS (11) is outside 3 tokens
        expect_error(load(w), MW_ERR_FORMAT, "add_bos_token");
    }
    {
        Writer w;
        w.set_string("tokenizer.ggml.model", "gpt2");
        w.set_string("tokenizer.ggml.pre", "gpt2");
        w.set_array_string("tokenizer.ggml.tokens", tokens);
        expect_error(load(w), MW_ERR_FORMAT, "tokenizer.ggml.merges");
    }
    {
        Writer w = bpe_writer("gpt2", tokens, {});
        w.set_u32("tokenizer.ggml.merges", 3);
        expect_error(load(w), MW_ERR_FORMAT, "tokenizer.ggml.merges");
    }
    {
        Writer w = bpe_writer("gpt2", tokens, {});
        w.set_string("tokenizer.ggml.model", "bert");
        expect_error(load(w), MW_ERR_UNSUPPORTED, "bert");
    }
    expect_error(load(bpe_writer("nonesuch-pre", tokens, {})), MW_ERR_UNSUPPORTED, "nonesuch-pre");
}

// ---- performance (printed, not asserted) --------------------------------------

void test_speed(void**) {
    std::string text;
    {
        std::vector<std::string> lines;
        read_data_lines("english.txt", lines);
        std::string para;
        for (const auto& l : lines) para += l + "\n";
        if (para.empty()) para = "The quick brown fox jumps over the lazy dog. 1234, caf\xC3\xA9!\n";
        while (text.size() < 100 * 1024) text += para;
    }
    const std::string one_word(100 * 1024, 'a');
    for (const char* name : {MW_SMOLLM_MODEL, MW_STORIES_MODEL}) {
        const char* path = mw_test_find_model(name);
        if (!path) {
            printf("speed: %s not found, skipped\n", name);
            continue;
        }
        auto file = File::open(path);
        auto tok = Tokenizer::from_gguf(*file);
        for (const std::string* t : {static_cast<const std::string*>(&text), &one_word}) {
            const auto t0 = std::chrono::steady_clock::now();
            const Ids ids = tok->encode(*t, true, false);
            const auto t1 = std::chrono::steady_clock::now();
            const std::string back = tok->decode(ids, false);
            const auto t2 = std::chrono::steady_clock::now();
            printf("speed: %s %s: %zu bytes -> %zu tokens, encode %.1f ms, decode %.1f ms\n", name,
                   t == &text ? "prose" : "one 100 KB word", t->size(), ids.size(),
                   std::chrono::duration<double, std::milli>(t1 - t0).count(),
                   std::chrono::duration<double, std::milli>(t2 - t1).count());
            assert_true(back == *t);
        }
    }
}

// ---- chat templates ----------------------------------------------------------------

const char* kSmolLM2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

const char* kQwenLikeTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
    "You are Qwen, created by Alibaba Cloud. You\\'re a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt "
    "%}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const char* kPlainChatML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const char* kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

const char* kLlama2Template =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
    "loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' "
    "+ message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' "
    "%}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + "
    "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const char* kMistralTemplate =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ "
    "raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if "
    "message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
    "'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are "
    "supported!') }}{% endif %}{% endfor %}";

void test_chat_detect(void**) {
    assert_int_equal(int(mw::detect_chat_template(kSmolLM2Template)), int(ChatTemplateKind::ChatML));
    assert_int_equal(int(mw::detect_chat_template(kQwenLikeTemplate)), int(ChatTemplateKind::ChatML));
    assert_int_equal(int(mw::detect_chat_template(kLlama3Template)), int(ChatTemplateKind::Llama3));
    assert_int_equal(int(mw::detect_chat_template(kLlama2Template)), int(ChatTemplateKind::Llama2));
    assert_int_equal(int(mw::detect_chat_template(kMistralTemplate)), int(ChatTemplateKind::Mistral));
    assert_int_equal(int(mw::detect_chat_template("")), int(ChatTemplateKind::Unknown));
    assert_int_equal(int(mw::detect_chat_template("{{ messages[0]['content'] }}")), int(ChatTemplateKind::Unknown));
    assert_string_equal(mw::chat_template_name(ChatTemplateKind::ChatML), "chatml");
    assert_string_equal(mw::chat_template_name(ChatTemplateKind::Mistral), "mistral");
}

void test_chat_default_system(void**) {
    assert_string_equal(mw::chat_template_default_system(kSmolLM2Template).c_str(),
                        "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    assert_string_equal(mw::chat_template_default_system(kQwenLikeTemplate).c_str(),
                        "You are Qwen, created by Alibaba Cloud. You're a helpful assistant.");
    assert_string_equal(mw::chat_template_default_system(kPlainChatML).c_str(), "");
    assert_string_equal(mw::chat_template_default_system(
                            "{{ '<|im_start|>system\\n' + system_message + '<|im_end|>\\n' }}").c_str(), "");
    assert_string_equal(mw::chat_template_default_system("").c_str(), "");
}

void test_chat_format(void**) {
    const std::vector<ChatMessage> conv = {
        {"system", "Be brief."}, {"user", " Hi there "}, {"assistant", "Hello!"}, {"user", "Bye"}};
    const std::vector<ChatMessage> no_sys(conv.begin() + 1, conv.end());

    assert_string_equal(mw::format_chat(ChatTemplateKind::ChatML, no_sys, true, "", "", "Default sys.").c_str(),
                        "<|im_start|>system\nDefault sys.<|im_end|>\n"
                        "<|im_start|>user\n Hi there <|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                        "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
    assert_string_equal(mw::format_chat(ChatTemplateKind::ChatML, conv, false, "", "", "Default sys.").c_str(),
                        "<|im_start|>system\nBe brief.<|im_end|>\n"
                        "<|im_start|>user\n Hi there <|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                        "<|im_start|>user\nBye<|im_end|>\n");
    assert_string_equal(mw::format_chat(ChatTemplateKind::Llama3, conv, true, "<|begin_of_text|>", "").c_str(),
                        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                        "<|start_header_id|>assistant<|end_header_id|>\n\n");
    assert_string_equal(mw::format_chat(ChatTemplateKind::Llama2, conv, true, "<s>", "</s>").c_str(),
                        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi there [/INST] Hello! </s><s>[INST] Bye [/INST]");
    assert_string_equal(mw::format_chat(ChatTemplateKind::Llama2, no_sys, true, "<s>", "</s>").c_str(),
                        "<s>[INST] Hi there [/INST] Hello! </s><s>[INST] Bye [/INST]");
    assert_string_equal(mw::format_chat(ChatTemplateKind::Mistral, no_sys, true, "<s>", "</s>").c_str(),
                        "<s>[INST]  Hi there  [/INST]Hello!</s>[INST] Bye [/INST]");
    assert_string_equal(mw::format_chat(ChatTemplateKind::Mistral, conv, true, "", "</s>").c_str(),
                        "[INST] Be brief.\n\n Hi there  [/INST]Hello!</s>[INST] Bye [/INST]");

    const std::vector<ChatMessage> bad = {{"user", "a"}, {"user", "b"}};
    expect_error(attempt([&] { mw::format_chat(ChatTemplateKind::Llama2, bad, true, "<s>", "</s>"); }),
                 MW_ERR_INVALID_ARGUMENT, "alternate");
    expect_error(attempt([&] { mw::format_chat(ChatTemplateKind::Mistral, {{"assistant", "x"}}, true, "", ""); }),
                 MW_ERR_INVALID_ARGUMENT, "alternate");
    expect_error(attempt([&] { mw::format_chat(ChatTemplateKind::Unknown, no_sys, true, "", ""); }),
                 MW_ERR_UNSUPPORTED, "chat template");
}

// Minimal JSON for the fixture: an array of {"role": "...", "content": "..."}.
struct Json {
    const std::string& s;
    size_t i = 0;
    void ws() {
        while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
    }
    bool eat(char c) {
        ws();
        if (i < s.size() && s[i] == c) {
            ++i;
            return true;
        }
        return false;
    }
    std::string str() {
        std::string out;
        if (!eat('"')) throw std::runtime_error("json: expected string");
        while (i < s.size() && s[i] != '"') {
            char c = s[i++];
            if (c != '\\') {
                out += c;
                continue;
            }
            c = s[i++];
            switch (c) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': {
                    uint32_t cp = uint32_t(std::stoul(s.substr(i, 4), nullptr, 16));
                    i += 4;
                    if (cp >= 0xD800 && cp <= 0xDBFF && s.compare(i, 2, "\\u") == 0) {
                        const uint32_t lo = uint32_t(std::stoul(s.substr(i + 2, 4), nullptr, 16));
                        i += 6;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    mw::tok::append_utf8(out, cp);
                    break;
                }
                default: out += c; break;
            }
        }
        ++i;
        return out;
    }
    std::vector<ChatMessage> messages() {
        std::vector<ChatMessage> out;
        if (!eat('[')) throw std::runtime_error("json: expected [");
        if (eat(']')) return out;
        do {
            if (!eat('{')) throw std::runtime_error("json: expected {");
            ChatMessage m;
            do {
                const std::string k = str();
                if (!eat(':')) throw std::runtime_error("json: expected :");
                const std::string v = str();
                if (k == "role") m.role = v;
                else if (k == "content") m.content = v;
            } while (eat(','));
            if (!eat('}')) throw std::runtime_error("json: expected }");
            out.push_back(m);
        } while (eat(','));
        if (!eat(']')) throw std::runtime_error("json: expected ]");
        return out;
    }
};

void test_chat_fixture_smollm2(void**) {
    std::vector<std::string> lines;
    if (!read_data_lines("chat_smollm2.txt", lines)) {
        printf("SKIP: fixture %s/chat_smollm2.txt not found\n", mw_test_data_dir());
        skip();
    }
    MW_REQUIRE_MODEL(path, MW_SMOLLM_MODEL);
    auto file = File::open(path);
    const std::string jinja(file->get_string("tokenizer.chat_template"));
    const ChatTemplateKind kind = mw::detect_chat_template(jinja);
    assert_int_equal(int(kind), int(ChatTemplateKind::ChatML));
    const std::string sys = mw::chat_template_default_system(jinja);
    assert_string_equal(sys.c_str(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    int n = 0;
    for (const std::string& line : lines) {
        std::istringstream ls(line);
        std::string hj, hr;
        ls >> hj >> hr;
        const std::string json = unhex(hj);
        Json parser{json};
        const std::vector<ChatMessage> msgs = parser.messages();
        const std::string want = unhex(hr);
        const std::string got = mw::format_chat(kind, msgs, true, "", "", sys);
        if (got != want) printf("chat mismatch for %s\n  want '%s'\n  got  '%s'\n", json.c_str(), escaped(want).c_str(),
                                escaped(got).c_str());
        assert_true(got == want);
        ++n;
    }
    assert_true(n >= 3);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_smollm2),
        cmocka_unit_test(test_fixture_stories),
        cmocka_unit_test(test_smollm2_facts),
        cmocka_unit_test(test_stories_facts),
        cmocka_unit_test(test_bpe_merge_order),
        cmocka_unit_test(test_bpe_specials_and_bytes),
        cmocka_unit_test(test_bpe_clean_spaces),
        cmocka_unit_test(test_spm_synthetic),
        cmocka_unit_test(test_concurrent_encode),
        cmocka_unit_test(test_pretokenizers),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_speed),
        cmocka_unit_test(test_chat_detect),
        cmocka_unit_test(test_chat_default_system),
        cmocka_unit_test(test_chat_format),
        cmocka_unit_test(test_chat_fixture_smollm2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
