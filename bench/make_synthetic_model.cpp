// make_synthetic_model: writes a llama-architecture GGUF with random weights
// of one type and a SentencePiece vocabulary, for benchmarks of geometries
// that have no file here (by default TinyLlama-1.1B's: n_embd 2048, 22 layers,
// 32 heads, 4 KV heads, FFN 5632, vocab 32000, context 2048).
//
//   make_synthetic_model OUT.gguf [--type q4_0|q4_1|q4_k|q8_0|f16] [--n-embd N]
//       [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N] [--n-vocab N]
//       [--n-ctx N] [--seed S]
//
// Every matrix (token_embd and output included) has the --type (default
// q4_0): random codes with per-block scales chosen so each weight's standard
// deviation is near 0.6/sqrt(n_in) and activations stay finite; norms are F32
// ones, output separate
// from token_embd (as TinyLlama). The vocabulary is valid for both memwise and
// llama.cpp: <unk> <s> </s>, the 256 byte tokens <0x00>..<0xFF>, then unique
// letter pieces ("▁ab", "ab", ...) with decreasing scores up to --n-vocab.
// Weights are written with the project's own gguf::Writer. A benchmark tool,
// never a test; the output is meaningless text at realistic sizes and speeds.
#include "base/half.h"
#include "gguf/gguf_writer.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Spec {
    uint64_t n_embd = 2048, n_layer = 22, n_head = 32, n_head_kv = 4, n_ff = 5632, n_vocab = 32000, n_ctx = 2048;
    uint64_t seed = 1;
};

// xorshift64*: fast enough to fill gigabytes.
struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1Dull;
    }
};

// A [n_in, n_out] Q4_0 matrix: 18-byte blocks (F16 scale, 16 bytes of nibbles).
std::vector<uint8_t> random_q4_0(uint64_t n_in, uint64_t n_out, Rng& rng) {
    const uint64_t n_blocks = n_in / 32 * n_out;
    std::vector<uint8_t> out((size_t)(n_blocks * 18));
    // codes are uniform in 0..15, so (q - 8) has a standard deviation of ~4.6
    const float base = 0.6f / std::sqrt((float)n_in) / 4.6f;
    uint8_t* p = out.data();
    for (uint64_t b = 0; b < n_blocks; b++, p += 18) {
        const uint64_t r = rng.next();
        const float d = base * (0.75f + 0.5f * (float)(r & 0xFFFF) / 65535.0f);
        const uint16_t h = mw::f32_to_f16(d);
        std::memcpy(p, &h, 2);
        const uint64_t a = rng.next(), c = rng.next();
        std::memcpy(p + 2, &a, 8);
        std::memcpy(p + 10, &c, 8);
    }
    return out;
}

// Q4_1: x = d * q + m with q uniform in 0..15 (sd ~4.6) and m = -7.5 * d, so mean ~0.
std::vector<uint8_t> random_q4_1(uint64_t n_in, uint64_t n_out, Rng& rng) {
    const uint64_t n_blocks = n_in / 32 * n_out;
    std::vector<uint8_t> out((size_t)(n_blocks * 20));
    const float base = 0.6f / std::sqrt((float)n_in) / 4.6f;
    uint8_t* p = out.data();
    for (uint64_t b = 0; b < n_blocks; b++, p += 20) {
        const float d = base * (0.75f + 0.5f * (float)(rng.next() & 0xFFFF) / 65535.0f);
        const uint16_t h[2] = {mw::f32_to_f16(d), mw::f32_to_f16(-7.5f * d)};
        std::memcpy(p, h, 4);
        const uint64_t a = rng.next(), c = rng.next();
        std::memcpy(p + 4, &a, 8);
        std::memcpy(p + 12, &c, 8);
    }
    return out;
}

// Q8_0: x = d * q with q uniform in -127..127 (sd ~73).
std::vector<uint8_t> random_q8_0(uint64_t n_in, uint64_t n_out, Rng& rng) {
    const uint64_t n_blocks = n_in / 32 * n_out;
    std::vector<uint8_t> out((size_t)(n_blocks * 34));
    const float base = 0.6f / std::sqrt((float)n_in) / 73.0f;
    uint8_t* p = out.data();
    for (uint64_t b = 0; b < n_blocks; b++, p += 34) {
        const float d = base * (0.75f + 0.5f * (float)(rng.next() & 0xFFFF) / 65535.0f);
        const uint16_t h = mw::f32_to_f16(d);
        std::memcpy(p, &h, 2);
        for (int k = 0; k < 32; k += 8) {
            uint64_t r = rng.next();
            for (int j = 0; j < 8; j++, r >>= 8) p[2 + k + j] = (uint8_t)((r & 0xFF) == 0x80 ? 0x81 : (r & 0xFF));
        }
    }
    return out;
}

// Q4_K: 144-byte super-blocks; x = d * sc * q - dmin * m with 6-bit sc in
// 32..63, m in 0..63 and q uniform in 0..15; dmin = 7.5 * 48 / 32 * d keeps
// the sub-block means near 0 on average.
std::vector<uint8_t> random_q4_k(uint64_t n_in, uint64_t n_out, Rng& rng) {
    const uint64_t n_blocks = n_in / 256 * n_out;
    std::vector<uint8_t> out((size_t)(n_blocks * 144));
    const float base = 0.6f / std::sqrt((float)n_in) / (48.0f * 4.6f);
    uint8_t* p = out.data();
    for (uint64_t b = 0; b < n_blocks; b++, p += 144) {
        const float d = base * (0.75f + 0.5f * (float)(rng.next() & 0xFFFF) / 65535.0f);
        const uint16_t h[2] = {mw::f32_to_f16(d), mw::f32_to_f16(d * 7.5f * 48.0f / 32.0f)};
        std::memcpy(p, h, 4);
        // scales: bytes 0..3 sc 0..3 (6 bits; bit 5 set keeps sc >= 32), 4..7 m 0..3, 8..11 low nibbles of sc/m 4..7
        // (their top two bits live in the top bits of bytes 0..7).
        uint64_t r = rng.next();
        for (int j = 0; j < 12; j++, r >>= 5) p[4 + j] = (uint8_t)(r & 0xFF);
        for (int j = 0; j < 4; j++) p[4 + j] = (uint8_t)((p[4 + j] & 0x1F) | 0x20 | 0x80);  // sc 0..3 >= 32; sc 4..7 high bits 10
        for (int j = 0; j < 16; j++) {
            const uint64_t a = rng.next();
            std::memcpy(p + 16 + 8 * j, &a, 8);
        }
    }
    return out;
}

// F16: uniform in [-a, a] with a = sqrt(3) * 0.6 / sqrt(n_in).
std::vector<uint8_t> random_f16(uint64_t n_in, uint64_t n_out, Rng& rng) {
    std::vector<uint8_t> out((size_t)(n_in * n_out * 2));
    const float a = 1.7320508f * 0.6f / std::sqrt((float)n_in);
    uint16_t* p = (uint16_t*)out.data();
    for (uint64_t i = 0; i < n_in * n_out; i += 4) {
        uint64_t r = rng.next();
        for (int j = 0; j < 4; j++, r >>= 16) p[i + j] = mw::f32_to_f16(a * ((float)(r & 0xFFFF) / 32767.5f - 1.0f));
    }
    return out;
}

struct TypeSpec {
    const char* name;
    mw::gguf::TensorType type;
    uint32_t file_type;  // general.file_type (llama_ftype)
    uint64_t block;      // elements per block: widths must be multiples
    std::vector<uint8_t> (*make)(uint64_t, uint64_t, Rng&);
};

const TypeSpec kTypes[] = {
    {"q4_0", mw::gguf::TensorType::Q4_0, 2, 32, random_q4_0},
    {"q4_1", mw::gguf::TensorType::Q4_1, 3, 32, random_q4_1},
    {"q8_0", mw::gguf::TensorType::Q8_0, 7, 32, random_q8_0},
    {"q4_k", mw::gguf::TensorType::Q4_K, 14, 256, random_q4_k},  // all Q4_K (llama_ftype Q4_K_S)
    {"f16", mw::gguf::TensorType::F16, 1, 1, random_f16},
};

const TypeSpec* g_type = &kTypes[0];

void add_matrix(mw::gguf::Writer& w, const std::string& name, uint64_t n_in, uint64_t n_out, Rng& rng) {
    const std::vector<uint8_t> d = g_type->make(n_in, n_out, rng);
    w.add_tensor(name, g_type->type, {n_in, n_out}, d.data(), d.size());
}

void add_ones(mw::gguf::Writer& w, const std::string& name, uint64_t n) {
    const std::vector<float> v((size_t)n, 1.0f);
    w.add_tensor(name, mw::gguf::TensorType::F32, {n}, v.data(), v.size() * 4);
}

// Piece number i as letters: 0 -> "a", 25 -> "z", 26 -> "aa", ...
std::string letters(uint64_t i) {
    std::string s;
    for (uint64_t k = i + 1; k > 0; k = (k - 1) / 26) s.insert(s.begin(), (char)('a' + (k - 1) % 26));
    return s;
}

void add_vocab(mw::gguf::Writer& w, uint64_t n_vocab) {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<float> scores = {0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3};  // unknown, control, control
    char buf[16];
    for (int b = 0; b < 256; b++) {
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        tokens.push_back(buf);
        scores.push_back(0);
        types.push_back(6);  // byte
    }
    static const char kSpace[] = "\xe2\x96\x81";  // U+2581, SentencePiece's word start
    tokens.push_back(kSpace);
    scores.push_back(-1.0f);
    types.push_back(1);
    for (uint64_t i = 0; tokens.size() < n_vocab; i++) {
        // alternate word-initial and inner pieces of the same letters
        tokens.push_back(i % 2 == 0 ? kSpace + letters(i / 2) : letters(i / 2));
        scores.push_back(-2.0f - (float)i);
        types.push_back(1);  // normal
    }
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_array_string("tokenizer.ggml.tokens", tokens);
    w.set_array_f32("tokenizer.ggml.scores", scores);
    w.set_array_i32("tokenizer.ggml.token_type", types);
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
}

int usage(const char* msg) {
    std::fprintf(stderr,
                 "make_synthetic_model: %s\nusage: make_synthetic_model OUT.gguf [--type q4_0|q4_1|q4_k|q8_0|f16] "
                 "[--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N] [--n-vocab N] [--n-ctx N] "
                 "[--seed S]\n",
                 msg);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Spec s;
    std::string out;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a[0] != '-') {
            if (!out.empty()) return usage("one output path only");
            out = a;
            continue;
        }
        if (i + 1 >= argc) return usage("an option needs a value");
        if (a == "--type") {
            const std::string t = argv[++i];
            g_type = nullptr;
            for (const TypeSpec& k : kTypes)
                if (t == k.name) g_type = &k;
            if (!g_type) return usage(("unknown --type " + t).c_str());
            continue;
        }
        char* end = nullptr;
        const unsigned long long v = std::strtoull(argv[++i], &end, 10);
        if (!end || *end || v == 0) return usage("values are positive whole numbers");
        if (a == "--n-embd") s.n_embd = v;
        else if (a == "--n-layer") s.n_layer = v;
        else if (a == "--n-head") s.n_head = v;
        else if (a == "--n-head-kv") s.n_head_kv = v;
        else if (a == "--n-ff") s.n_ff = v;
        else if (a == "--n-vocab") s.n_vocab = v;
        else if (a == "--n-ctx") s.n_ctx = v;
        else if (a == "--seed") s.seed = v;
        else return usage(("unknown option " + a).c_str());
    }
    if (out.empty()) return usage("missing OUT.gguf");
    const uint64_t hd = s.n_embd / s.n_head;
    if (s.n_embd % s.n_head || s.n_head % s.n_head_kv || s.n_embd % 32 || s.n_ff % 32 || (hd * s.n_head) % 32 ||
        s.n_vocab < 300)
        return usage("geometry: n_embd divisible by n_head, n_head by n_head_kv, widths by 32, vocab >= 300");
    if (s.n_embd % g_type->block || s.n_ff % g_type->block || (hd * s.n_head) % g_type->block)
        return usage("geometry: widths must be multiples of the type's block (256 for q4_k)");

    try {
        mw::gguf::Writer w;
        w.set_string("general.architecture", "llama");
        w.set_string("general.name", "synthetic-" + std::to_string(s.n_layer) + "L-" + std::to_string(s.n_embd));
        w.set_u32("general.file_type", g_type->file_type);
        w.set_u32("llama.context_length", (uint32_t)s.n_ctx);
        w.set_u32("llama.embedding_length", (uint32_t)s.n_embd);
        w.set_u32("llama.block_count", (uint32_t)s.n_layer);
        w.set_u32("llama.feed_forward_length", (uint32_t)s.n_ff);
        w.set_u32("llama.attention.head_count", (uint32_t)s.n_head);
        w.set_u32("llama.attention.head_count_kv", (uint32_t)s.n_head_kv);
        w.set_u32("llama.rope.dimension_count", (uint32_t)hd);
        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        w.set_f32("llama.rope.freq_base", 10000.0f);
        add_vocab(w, s.n_vocab);

        Rng rng{s.seed * 0x9E3779B97F4A7C15ull + 1};
        const uint64_t E = s.n_embd, q = hd * s.n_head, kv = hd * s.n_head_kv;
        add_matrix(w, "token_embd.weight", E, s.n_vocab, rng);
        add_ones(w, "output_norm.weight", E);
        add_matrix(w, "output.weight", E, s.n_vocab, rng);
        for (uint64_t l = 0; l < s.n_layer; l++) {
            const std::string p = "blk." + std::to_string(l) + ".";
            add_ones(w, p + "attn_norm.weight", E);
            add_matrix(w, p + "attn_q.weight", E, q, rng);
            add_matrix(w, p + "attn_k.weight", E, kv, rng);
            add_matrix(w, p + "attn_v.weight", E, kv, rng);
            add_matrix(w, p + "attn_output.weight", q, E, rng);
            add_ones(w, p + "ffn_norm.weight", E);
            add_matrix(w, p + "ffn_gate.weight", E, s.n_ff, rng);
            add_matrix(w, p + "ffn_up.weight", E, s.n_ff, rng);
            add_matrix(w, p + "ffn_down.weight", s.n_ff, E, rng);
        }
        w.write(out);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_synthetic_model: %s\n", e.what());
        return 1;
    }
    std::printf("wrote %s\n", out.c_str());
    return 0;
}
