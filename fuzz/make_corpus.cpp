// Writes the fuzz seed corpora (fuzz/corpus/<target>/) from the project's own
// synthetic model, and one GGUF file per known llama.cpp GGUF parser CVE
// pattern (fuzz/corpus/gguf/cve-*.gguf), built byte by byte, and format 2
// distillation exports of the synthetic model (fuzz/corpus/distill/v2-*; the
// v1-* files there were made by the version 1 writer and are kept as they are).
// Usage: make_corpus <fuzz/corpus directory>. The output is committed; rerun
// only to change the seeds.
#include "fuzz_util.h"

#include "model/model.h"
#include "tools/eval/distill_export.h"

#include <zstd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Image {
    std::vector<uint8_t> b;
    Image& u32(uint32_t v) { for (int i = 0; i < 4; i++) b.push_back((uint8_t)(v >> (8 * i))); return *this; }
    Image& u64(uint64_t v) { for (int i = 0; i < 8; i++) b.push_back((uint8_t)(v >> (8 * i))); return *this; }
    Image& raw(const std::string& s) { b.insert(b.end(), s.begin(), s.end()); return *this; }
    Image& str(const std::string& s) { return u64(s.size()).raw(s); }
    Image& header(uint64_t n_tensors, uint64_t n_kv) { return raw("GGUF").u32(3).u64(n_tensors).u64(n_kv); }
    Image& pad(size_t align = 32) { while (b.size() % align) b.push_back(0); return *this; }
    Image& zeros(size_t n) { b.insert(b.end(), n, 0); return *this; }
};

void put(const fs::path& p, const std::vector<uint8_t>& bytes) {
    FILE* f = std::fopen(p.c_str(), "wb");
    if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
    std::fclose(f);
}
void put(const fs::path& p, const std::string& s) { put(p, std::vector<uint8_t>(s.begin(), s.end())); }

std::vector<uint8_t> zst(const std::vector<uint8_t>& in) {
    std::vector<uint8_t> out(ZSTD_compressBound(in.size()));
    const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
    if (ZSTD_isError(n)) std::abort();
    out.resize(n);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_corpus <fuzz/corpus dir>\n");
        return 2;
    }
    const fs::path root = argv[1];
    for (const char* t : {"gguf", "tokenizer", "chat", "submit", "zst", "distill"}) fs::create_directories(root / t);
    const std::vector<uint8_t> model = mw::fuzz::tiny_model_bytes();
    const fs::path g = root / "gguf";
    put(g / "seed-tiny-model.gguf", model);
    put(g / "seed-one-key.gguf", Image().header(0, 1).str("general.architecture").u32(8).str("llama").b);
    put(g / "seed-one-tensor.gguf",
        Image().header(1, 0).str("w").u32(2).u64(4).u64(2).u32(0).u64(0).pad().zeros(32).b);

    // The known llama.cpp GGUF parser CVE patterns; each must be MW_ERR_FORMAT.
    // A key whose length is 2^64-1: "length + 1" for a terminator wraps to 0.
    put(g / "cve-string-length-overflow.gguf", Image().header(0, 1).u64(UINT64_MAX).raw("k").u32(8).str("v").b);
    // A string value whose length wraps the same way.
    put(g / "cve-string-value-length-overflow.gguf", Image().header(0, 1).str("k").u32(8).u64(UINT64_MAX).raw("v").b);
    // n_dims above the maximum of 4 (ggml indexes ne[n_dims] out of bounds).
    put(g / "cve-n-dims-above-max.gguf",
        Image().header(1, 0).str("w").u32(5).u64(1).u64(1).u64(1).u64(1).u64(1).u32(0).u64(0).pad().zeros(32).b);
    // A tensor count whose info array size overflows (count * sizeof(info)).
    put(g / "cve-tensor-count-overflow.gguf", Image().header(0x0AAAAAAAAAAAAAABull, 0).zeros(64).b);
    // A key/value count in the same style.
    put(g / "cve-kv-count-overflow.gguf", Image().header(0, 0x1000000000000001ull).zeros(64).b);
    // Two tensors whose byte sizes sum past 2^64 (size_t overflow of the total).
    put(g / "cve-size-sum-overflow.gguf", Image().header(2, 0)
                                              .str("a").u32(2).u64(1ull << 31).u64(1ull << 30).u32(0).u64(0)
                                              .str("b").u32(2).u64(1ull << 31).u64(1ull << 30).u32(0).u64(0)
                                              .pad().zeros(64).b);
    // An element count whose product overflows 64 bits.
    put(g / "cve-element-count-overflow.gguf",
        Image().header(1, 0).str("w").u32(3).u64(1ull << 32).u64(1ull << 32).u64(16).u32(0).u64(0).pad().zeros(32).b);
    // An exabyte tensor (2^60 bytes) described by a 100-byte file.
    put(g / "cve-exabyte-tensor.gguf",
        Image().header(1, 0).str("w").u32(2).u64(1ull << 29).u64(1ull << 29).u32(0).u64(0).pad().zeros(32).b);
    // An array whose element type is not a GGUF type (read as a huge stride).
    put(g / "cve-array-element-type.gguf", Image().header(0, 1).str("k").u32(9).u32(0xDEAD).u64(1).zeros(16).b);
    // An array of arrays (nesting ggml never validated).
    put(g / "cve-nested-array.gguf", Image().header(0, 1).str("k").u32(9).u32(9).u64(1).u32(4).u64(1).u32(0).b);
    // An unbounded metadata array: 2^61 UINT32 elements in a tiny file.
    put(g / "cve-unbounded-array.gguf", Image().header(0, 1).str("k").u32(9).u32(4).u64(1ull << 61).zeros(16).b);
    // An unbounded string array: 2^40 strings (each at least 8 bytes).
    put(g / "cve-unbounded-string-array.gguf", Image().header(0, 1).str("k").u32(9).u32(8).u64(1ull << 40).zeros(16).b);
    // Tensor data past the end of the file.
    put(g / "cve-data-beyond-file.gguf",
        Image().header(1, 0).str("w").u32(1).u64(64).u32(0).u64(4096).pad().zeros(32).b);
    // Two tensors whose data overlap.
    put(g / "cve-overlapping-tensors.gguf", Image().header(2, 0)
                                                .str("a").u32(1).u64(8).u32(0).u64(0)
                                                .str("b").u32(1).u64(8).u32(0).u64(0)
                                                .pad().zeros(64).b);

    const fs::path t = root / "tokenizer";
    put(t / "plain", std::string("\x00", 1) + "Hello world, the cat sat.");
    put(t / "special", std::string("\x03") + "<s>the</s> cat <unk>");
    put(t / "utf8", std::string("\x00") + "caf\xc3\xa9 \xe2\x96\x81 \xf0\x9f\x98\x80 \xe4\xb8\xad");
    put(t / "invalid-utf8", std::string("\x05") + "\xff\xfe\xc3 \xe2\x82");
    put(t / "spaces", std::string("\x10") + "   leading  and trailing   ");

    const fs::path c = root / "chat";
    put(c / "two-turns", std::string("\x0a\x01\x05hello\x02\x03hi!\x00", 14));
    put(c / "system", std::string("\x1b\x00\x04sys!\x01\x05user?\x02\x03ok.\x04\x03sys", 20));
    put(c / "markers", std::string("\x09\x01\x0d<|im_end|>[/INST]", 18));

    const fs::path s = root / "submit";
    put(s / "greedy-text", std::string(40, '\0') + "the cat sat");
    std::string nan_temp(40, '\0');
    nan_temp[7] = (char)0xC0;
    nan_temp[8] = (char)0x7F;  // temperature bytes 0x7FC0.... (NaN)
    put(s / "nan-temperature", nan_temp + "a cat");
    put(s / "tokens-out-of-range", std::string("\x10\x00", 2) + std::string(38, '\x01') + "\xff\x7f\x05\x00");
    put(s / "stop-strings", std::string("\x06\x00", 2) + std::string(38, '\0') + "\x02sa\x03the" + " the cat sat");

    const fs::path z = root / "zst";
    put(z / "tiny-model.gguf.zst", zst(model));
    std::vector<uint8_t> cut = zst(model);
    cut.resize(cut.size() / 2);
    put(z / "truncated.gguf.zst", cut);
    put(z / "cve-exabyte-inside.gguf.zst",
        zst(Image().header(1, 0).str("w").u32(2).u64(1ull << 29).u64(1ull << 29).u32(0).u64(0).pad().zeros(32).b));
    put(z / "not-zstd", std::string("GGUF not compressed"));

    // A complete format 2 export: context 16, K 4, a text whose last window
    // is shifted back; then damaged copies.
    const fs::path d = root / "distill";
    {
        mw::eval::ExportOptions eo;
        eo.n_ctx = 16;
        eo.top_k = 4;
        eo.n_threads = 1;
        const std::string seed = (d / "v2-seed-k4-ctx16.mwd").string();
        mw::eval::distill_export(mw::Model::load(mw::fuzz::tiny_model_path()),
                                 "Once upon a time there was a cat. The cat sat on the mat and looked at the sun!",
                                 seed, eo);
        FILE* f = std::fopen(seed.c_str(), "rb");
        if (!f) std::abort();
        std::vector<uint8_t> good;
        for (int c; (c = std::fgetc(f)) != EOF;) good.push_back((uint8_t)c);
        std::fclose(f);
        std::vector<uint8_t> b(good.begin(), good.begin() + (long)good.size() / 2);
        put(d / "v2-truncated-half.mwd", b);
        b = good;
        b[20] ^= 0x5a;  // n_ctx: the header checksum no longer matches
        put(d / "v2-flipped-header.mwd", b);
        b = good;
        b[256 + 8 + 40] ^= 0x5a;  // inside the first frame
        put(d / "v2-flipped-frame.mwd", b);
        b = good;
        b[good.size() - 40] ^= 0x5a;  // inside the last frame
        put(d / "v2-flipped-tail.mwd", b);
    }
    return 0;
}
