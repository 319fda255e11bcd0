// Tests of the GGUF reader and writer: real models (when present), writer
// round trips, typed getters, and every kind of malformed file the reader must
// reject with a status and a message naming the field.
//
// Project headers come before cmocka.h: cmocka defines a fail() macro that
// would clash with mw::fail in base/error.h.
#include "base/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
}
#include "test_util.h"

using mw::gguf::File;
using mw::gguf::TensorInfo;
using mw::gguf::TensorType;
using mw::gguf::Value;
using mw::gguf::ValueType;
using mw::gguf::Writer;

namespace {

// ---- helpers ----------------------------------------------------------------

// Result of a call that may throw.
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

// Asserts outside any catch block (cmocka's failure longjmps).
void check_outcome(const Outcome& o, mw_status status, const char* needle, int line) {
    if (!o.threw) {
        print_error("line %d: expected status %d containing '%s', but no error was raised\n", line, (int)status,
                    needle);
        fail();
    }
    if (o.status != status || std::strstr(o.message.c_str(), needle) == nullptr) {
        print_error("line %d: expected status %d containing '%s', got status %d: %s\n", line, (int)status, needle,
                    (int)o.status, o.message.c_str());
        fail();
    }
}
#define EXPECT_ERROR(expr, status, needle) check_outcome(attempt([&] { expr; }), status, needle, __LINE__)

// Parses an image from an exact-size heap copy, so any read past its end is
// an AddressSanitizer error, not a silent read of neighbouring bytes.
Outcome parse_exact(const std::vector<uint8_t>& img, size_t len) {
    std::vector<uint8_t> copy(img.begin(), img.begin() + (long)len);
    return attempt([&] { File::from_memory(copy.data(), copy.size()); });
}
#define EXPECT_IMAGE_ERROR(img, status, needle) check_outcome(parse_exact(img, img.size()), status, needle, __LINE__)

// A small builder of raw GGUF bytes, for images the Writer would never make.
struct Raw {
    std::vector<uint8_t> b;
    template <class T> Raw& put(T v) {
        uint8_t tmp[sizeof(T)];
        std::memcpy(tmp, &v, sizeof v);
        b.insert(b.end(), tmp, tmp + sizeof tmp);
        return *this;
    }
    Raw& u8(uint8_t v) { return put(v); }
    Raw& u32(uint32_t v) { return put(v); }
    Raw& u64(uint64_t v) { return put(v); }
    Raw& str(const std::string& s) {
        u64(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        b.insert(b.end(), {'G', 'G', 'U', 'F'});
        return u32(version).u64(n_tensors).u64(n_kv);
    }
    Raw& key(const std::string& k, ValueType t) { return str(k).u32((uint32_t)t); }
    Raw& array(const std::string& k, ValueType elem, uint64_t count) {
        return key(k, ValueType::ARRAY).u32((uint32_t)elem).u64(count);
    }
    Raw& tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type, uint64_t offset) {
        str(name).u32((uint32_t)ne.size());
        for (uint64_t d : ne) u64(d);
        return u32(type).u64(offset);
    }
    Raw& pad(uint64_t alignment) {
        while (b.size() % alignment) b.push_back(0);
        return *this;
    }
    Raw& zeros(size_t n) {
        b.insert(b.end(), n, 0);
        return *this;
    }
};

struct RawTensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    uint64_t offset;
};

// Header + optional general.alignment + tensor infos + padding + data bytes.
std::vector<uint8_t> tensor_image(const std::vector<RawTensor>& ts, size_t data_bytes, uint32_t alignment = 0) {
    Raw r;
    r.header(ts.size(), alignment ? 1 : 0);
    if (alignment) r.key("general.alignment", ValueType::UINT32).u32(alignment);
    for (const RawTensor& t : ts) r.tensor(t.name, t.ne, t.type, t.offset);
    r.pad(alignment ? alignment : 32).zeros(data_bytes);
    return r.b;
}

const uint32_t F32 = (uint32_t)TensorType::F32;
const uint32_t Q8_0 = (uint32_t)TensorType::Q8_0;

// The valid two-tensor layout the tensor tests vary: a F32[4] at 0, a Q8_0[32,2] at 32.
std::vector<RawTensor> good_tensors() { return {{"a", {4}, F32, 0}, {"b", {32, 2}, Q8_0, 32}}; }
const size_t kGoodDataBytes = 32 + 2 * 34;

// A scratch directory, removed at the end of each test that uses it.
struct TempDir {
    std::string path;
    TempDir() {
        const char* base = getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mw_gguf_test_XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (mkdtemp(buf.data())) path = buf.data();
    }
    ~TempDir() {
        if (path.empty()) return;
        if (DIR* d = opendir(path.c_str())) {
            while (dirent* e = readdir(d)) {
                if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, ".."))
                    unlink((path + "/" + e->d_name).c_str());
            }
            closedir(d);
        }
        rmdir(path.c_str());
    }
    std::string file(const char* name) const { return path + "/" + name; }
};

void write_bytes(const std::string& path, const uint8_t* p, size_t n) {
    FILE* f = fopen(path.c_str(), "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

}  // namespace

// ---- tensor types -------------------------------------------------------------

static void test_tensor_type_table(void**) {
    struct Fact {
        TensorType t;
        const char* name;
        uint32_t elems, bytes;
        bool supported;
    };
    const Fact facts[] = {
        {TensorType::F32, "F32", 1, 4, true},       {TensorType::F16, "F16", 1, 2, true},
        {TensorType::BF16, "BF16", 1, 2, true},     {TensorType::Q4_0, "Q4_0", 32, 18, true},
        {TensorType::Q4_1, "Q4_1", 32, 20, true},   {TensorType::Q5_0, "Q5_0", 32, 22, true},
        {TensorType::Q5_1, "Q5_1", 32, 24, true},  {TensorType::Q8_0, "Q8_0", 32, 34, true},
        {TensorType::Q8_1, "Q8_1", 32, 36, false},  {TensorType::Q2_K, "Q2_K", 256, 84, false},
        {TensorType::Q3_K, "Q3_K", 256, 110, false}, {TensorType::Q4_K, "Q4_K", 256, 144, true},
        {TensorType::Q5_K, "Q5_K", 256, 176, true}, {TensorType::Q6_K, "Q6_K", 256, 210, true},
        {TensorType::Q8_K, "Q8_K", 256, 292, false},
    };
    for (const Fact& f : facts) {
        const mw::gguf::TensorTypeInfo* ti = mw::gguf::tensor_type_info((uint32_t)f.t);
        assert_non_null(ti);
        assert_string_equal(ti->name, f.name);
        assert_int_equal(ti->block_elems, f.elems);
        assert_int_equal(ti->block_bytes, f.bytes);
        assert_int_equal(ti->supported, f.supported);
    }
    // Ids ggml retired or memwise does not know.
    assert_null(mw::gguf::tensor_type_info(4));
    assert_null(mw::gguf::tensor_type_info(5));
    assert_null(mw::gguf::tensor_type_info(99));
    assert_int_equal(mw::gguf::row_bytes(*mw::gguf::tensor_type_info(2), 64), 36);
    assert_int_equal(mw::gguf::row_bytes(*mw::gguf::tensor_type_info(14), 512), 420);
}

// ---- real models ----------------------------------------------------------------

static void test_stories260k(void**) {
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    auto f = File::open(path);
    assert_int_equal(f->version(), 3);
    assert_int_equal(f->tensors().size(), 48);
    assert_int_equal(f->alignment(), 32);
    assert_int_equal(f->data_offset() % 32, 0);
    assert_string_equal(std::string(f->get_string("general.architecture")).c_str(), "llama");
    assert_int_equal(f->require_uint("llama.block_count"), 5);
    assert_int_equal(f->get_uint("llama.embedding_length", 0), 64);
    assert_true(std::fabs(f->get_float("llama.attention.layer_norm_rms_epsilon", 0) - 1e-5) < 1e-9);

    const TensorInfo* te = f->find_tensor("token_embd.weight");
    assert_non_null(te);
    assert_int_equal(te->type, TensorType::F32);
    assert_int_equal(te->n_dims, 2);
    assert_int_equal(te->ne[0], 64);
    assert_int_equal(te->ne[1], 512);
    assert_int_equal(te->n_bytes, 64 * 512 * 4);
    assert_ptr_equal(te->data, f->base() + f->data_offset() + te->offset);
    assert_null(f->find_tensor("no.such.tensor"));

    const Value* toks = f->find("tokenizer.ggml.tokens");
    assert_non_null(toks);
    assert_true(toks->is_array());
    assert_int_equal(toks->elem_type, ValueType::STRING);
    assert_int_equal(toks->count, 512);
    assert_string_equal(std::string(toks->str_at(0)).c_str(), "<unk>");
    const Value* scores = f->find("tokenizer.ggml.scores");
    assert_non_null(scores);
    assert_int_equal(scores->count, 512);
    assert_true(std::isfinite(scores->float_at(511)));
    EXPECT_ERROR(toks->str_at(512), MW_ERR_FORMAT, "tokenizer.ggml.tokens");

    uint64_t total = 0;
    for (const TensorInfo& t : f->tensors()) total += t.n_bytes;
    assert_true(total <= f->file_size() - f->data_offset());
}

static void test_smollm2(void**) {
    MW_REQUIRE_MODEL(path, MW_SMOLLM_MODEL);
    mw::gguf::OpenOptions opts;
    opts.prefault = true;
    auto f = File::open(path, opts);
    assert_int_equal(f->version(), 3);
    assert_int_equal(f->tensors().size(), 272);
    assert_int_equal(f->require_uint("llama.block_count"), 30);
    assert_string_equal(std::string(f->require_string("tokenizer.ggml.model")).c_str(), "gpt2");
    assert_string_equal(std::string(f->get_string("tokenizer.ggml.pre")).c_str(), "smollm");
    assert_false(f->get_bool("tokenizer.ggml.add_bos_token", true));  // stored as BOOL false
    const TensorInfo* te = f->find_tensor("token_embd.weight");
    assert_non_null(te);
    assert_int_equal(te->type, TensorType::Q8_0);
    assert_int_equal(te->ne[0], 576);
    assert_int_equal(te->ne[1], 49152);
    assert_int_equal(te->n_bytes, 576 / 32 * 34 * 49152ull);
    const TensorInfo* down = f->find_tensor("blk.0.ffn_down.weight");
    assert_non_null(down);
    assert_int_equal(down->type, TensorType::Q4_1);
    assert_int_equal(f->find("tokenizer.ggml.tokens")->count, 49152);
    assert_int_equal(f->find("tokenizer.ggml.merges")->count, 48900);
    assert_string_equal(std::string(f->find("tokenizer.ggml.tokens")->str_at(1)).c_str(), "<|im_start|>");
    assert_int_equal(f->find("tokenizer.ggml.token_type")->int_at(0), 3);  // control
    assert_int_equal(f->find("tokenizer.ggml.token_type")->int_at(100), 1);  // normal
    assert_string_equal(std::string(f->find("tokenizer.ggml.merges")->str_at(0)).c_str(), "\xC4\xA0 t");
}

// ---- writer round trip ------------------------------------------------------------

namespace {

struct TensorData {
    std::string name;
    TensorType type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> bytes;
};

std::vector<TensorData> sample_tensors() {
    std::vector<TensorData> ts;
    auto fill = [](size_t n, uint8_t seed) {
        std::vector<uint8_t> v(n);
        for (size_t k = 0; k < n; k++) v[k] = (uint8_t)(seed + k * 7);
        return v;
    };
    std::vector<float> f32(8 * 3);
    for (size_t k = 0; k < f32.size(); k++) f32[k] = (float)k * 0.5f - 3.0f;
    std::vector<uint8_t> f32b(f32.size() * 4);
    std::memcpy(f32b.data(), f32.data(), f32b.size());
    ts.push_back({"w.f32", TensorType::F32, {8, 3}, f32b});
    ts.push_back({"w.f16", TensorType::F16, {5}, fill(10, 1)});           // odd size: padding follows
    ts.push_back({"w.q8_0", TensorType::Q8_0, {64, 2}, fill(4 * 34, 2)});
    ts.push_back({"w.q4_k", TensorType::Q4_K, {256}, fill(144, 3)});
    ts.push_back({"w.bf16.4d", TensorType::BF16, {3, 1, 2, 2}, fill(24, 4)});
    ts.push_back({"w.q4_1", TensorType::Q4_1, {32, 3}, fill(60, 5)});
    return ts;
}

Writer sample_writer(uint64_t alignment) {
    Writer w(alignment);
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", 1);  // replaced below, keeps its place
    w.set_u32("llama.block_count", 5);
    w.set_i32("test.i32", -123456);
    w.set_u64("test.u64", 0xFEDCBA9876543210ull);
    w.set_f32("test.f32", 3.25f);
    w.set_bool("test.true", true);
    w.set_bool("test.false", false);
    w.set_string("test.empty", "");
    w.set_string("test.utf8", "h\xC3\xA9llo \xE2\x96\x81world");
    w.set_array_i32("test.ai32", {-1, 0, 2147483647, -2147483647 - 1});
    w.set_array_u32("test.au32", {0, 1, 4294967295u});
    w.set_array_f32("test.af32", {1.5f, -0.0f, 1e30f});
    w.set_array_string("test.astr", {"<unk>", "", "a b", "\xE2\x96\x81the"});
    w.set_array_string("test.astr_empty", {});
    for (const TensorData& t : sample_tensors()) w.add_tensor(t.name, t.type, t.ne, t.bytes.data(), t.bytes.size());
    return w;
}

void check_sample(const File& f, uint64_t alignment) {
    assert_int_equal(f.version(), 3);
    assert_int_equal(f.alignment(), alignment);
    assert_int_equal(f.data_offset() % alignment, 0);
    // general.alignment is written only when it differs from the default 32.
    if (alignment == 32) {
        assert_null(f.find("general.alignment"));
    } else {
        assert_int_equal(f.get_uint("general.alignment", 0), alignment);
    }
    assert_int_equal(f.metadata().size(), 14 + (alignment == 32 ? 0 : 1));
    assert_string_equal(std::string(f.get_string("general.architecture")).c_str(), "llama");
    assert_int_equal(f.get_uint("llama.block_count", 0), 5);
    assert_int_equal(f.get_int("test.i32", 0), -123456);
    assert_int_equal(f.get_uint("test.u64", 0), 0xFEDCBA9876543210ull);
    assert_true(f.get_float("test.f32", 0) == 3.25);
    assert_true(f.get_bool("test.true", false));
    assert_false(f.get_bool("test.false", true));
    assert_non_null(f.find("test.empty"));
    assert_int_equal(f.get_string("test.empty", "x").size(), 0);
    assert_string_equal(std::string(f.get_string("test.utf8")).c_str(), "h\xC3\xA9llo \xE2\x96\x81world");

    const Value* ai = f.find("test.ai32");
    assert_non_null(ai);
    assert_int_equal(ai->elem_type, ValueType::INT32);
    assert_int_equal(ai->count, 4);
    assert_int_equal(ai->int_at(0), -1);
    assert_int_equal(ai->int_at(2), 2147483647);
    assert_int_equal(ai->int_at(3), -2147483647ll - 1);
    const Value* au = f.find("test.au32");
    assert_int_equal(au->int_at(2), 4294967295ll);
    const Value* af = f.find("test.af32");
    assert_true(af->float_at(0) == 1.5);
    assert_true(std::signbit(af->float_at(1)));
    assert_true(af->float_at(2) == (double)1e30f);
    const Value* as = f.find("test.astr");
    assert_int_equal(as->count, 4);
    assert_string_equal(std::string(as->str_at(0)).c_str(), "<unk>");
    assert_int_equal(as->str_at(1).size(), 0);
    assert_string_equal(std::string(as->str_at(2)).c_str(), "a b");
    assert_string_equal(std::string(as->str_at(3)).c_str(), "\xE2\x96\x81the");
    assert_int_equal(f.find("test.astr_empty")->count, 0);

    const std::vector<TensorData> want = sample_tensors();
    assert_int_equal(f.tensors().size(), want.size());
    for (size_t k = 0; k < want.size(); k++) {
        const TensorInfo& t = f.tensors()[k];  // file order is add order
        assert_string_equal(t.name.c_str(), want[k].name.c_str());
        assert_ptr_equal(f.find_tensor(want[k].name), &t);
        assert_int_equal(t.type, want[k].type);
        assert_int_equal(t.n_dims, want[k].ne.size());
        uint64_t n = 1;
        for (size_t d = 0; d < 4; d++) {
            const uint64_t ne = d < want[k].ne.size() ? want[k].ne[d] : 1;
            assert_int_equal(t.ne[d], ne);
            n *= ne;
        }
        assert_int_equal(t.n_elements, n);
        assert_int_equal(t.n_bytes, want[k].bytes.size());
        assert_int_equal(t.offset % alignment, 0);
        assert_int_equal((uint64_t)(t.data - f.base()) % alignment, 0);
        assert_memory_equal(t.data, want[k].bytes.data(), want[k].bytes.size());
    }
}

void round_trip(uint64_t alignment) {
    const Writer w = sample_writer(alignment);
    const std::vector<uint8_t> img = w.serialize();
    assert_int_equal(img.size() % alignment, 0);  // the last tensor is padded too

    auto mem = File::from_memory(img.data(), img.size());
    check_sample(*mem, alignment);
    assert_string_equal(mem->path().c_str(), "<memory>");

    TempDir dir;
    assert_false(dir.path.empty());
    const std::string path = dir.file("sample.gguf");
    w.write(path);
    auto disk = File::open(path);
    check_sample(*disk, alignment);
    assert_int_equal(disk->file_size(), img.size());
    assert_memory_equal(disk->base(), img.data(), img.size());  // write() and serialize() agree
    // Overwriting an existing file works (rename over it) and leaves no temporary behind.
    w.write(path);
    int entries = 0;
    if (DIR* d = opendir(dir.path.c_str())) {
        while (dirent* e = readdir(d)) entries += e->d_name[0] != '.';
        closedir(d);
    }
    assert_int_equal(entries, 1);
}

}  // namespace

static void test_writer_round_trip_align32(void**) { round_trip(32); }
static void test_writer_round_trip_align64(void**) { round_trip(64); }

static void test_writer_rejects_bad_input(void**) {
    EXPECT_ERROR(Writer(48), MW_ERR_INVALID_ARGUMENT, "alignment");
    EXPECT_ERROR(Writer(0), MW_ERR_INVALID_ARGUMENT, "alignment");
    Writer w;
    uint8_t buf[64] = {0};
    EXPECT_ERROR(w.add_tensor("t", TensorType::F32, {4}, buf, 15), MW_ERR_INVALID_ARGUMENT, "needs 16");
    EXPECT_ERROR(w.add_tensor("t", TensorType::Q8_0, {33}, buf, 34), MW_ERR_INVALID_ARGUMENT, "block size");
    EXPECT_ERROR(w.add_tensor("t", TensorType::F32, {4, 0}, buf, 0), MW_ERR_INVALID_ARGUMENT, "dimension 1");
    EXPECT_ERROR(w.add_tensor("t", TensorType::F32, {1, 1, 1, 1, 1}, buf, 4), MW_ERR_INVALID_ARGUMENT, "dimensions");
    EXPECT_ERROR(w.add_tensor("t", (TensorType)99, {4}, buf, 16), MW_ERR_INVALID_ARGUMENT, "unknown tensor type 99");
    EXPECT_ERROR(w.add_tensor("", TensorType::F32, {4}, buf, 16), MW_ERR_INVALID_ARGUMENT, "name");
    w.add_tensor("t", TensorType::F32, {4}, buf, 16);
    EXPECT_ERROR(w.add_tensor("t", TensorType::F32, {4}, buf, 16), MW_ERR_INVALID_ARGUMENT, "twice");
    EXPECT_ERROR(w.write("/nonexistent-dir-mw/x.gguf"), MW_ERR_IO, "/nonexistent-dir-mw/x.gguf");
}

// A raw image holding every value type, scalar and array.
static std::vector<uint8_t> all_types_image() {
    Raw r;
    r.header(0, 22);
    r.key("t.u8", ValueType::UINT8).u8(200);
    r.key("t.i8", ValueType::INT8).put<int8_t>(-5);
    r.key("t.u16", ValueType::UINT16).put<uint16_t>(65535);
    r.key("t.i16", ValueType::INT16).put<int16_t>(-30000);
    r.key("t.u32", ValueType::UINT32).u32(4000000000u);
    r.key("t.i32", ValueType::INT32).put<int32_t>(-7);
    r.key("t.u64", ValueType::UINT64).u64(1ull << 63);
    r.key("t.i64", ValueType::INT64).put<int64_t>(-(1ll << 40));
    r.key("t.f32", ValueType::FLOAT32).put<float>(0.1f);
    r.key("t.f64", ValueType::FLOAT64).put<double>(0.1);
    r.key("t.bool", ValueType::BOOL).u8(1);
    r.key("t.str", ValueType::STRING).str("hello");
    r.array("t.a.u8", ValueType::UINT8, 3).u8(1).u8(2).u8(255);
    r.array("t.a.i8", ValueType::INT8, 2).put<int8_t>(-128).put<int8_t>(127);
    r.array("t.a.u16", ValueType::UINT16, 1).put<uint16_t>(40000);
    r.array("t.a.i16", ValueType::INT16, 1).put<int16_t>(-2);
    r.array("t.a.i64", ValueType::INT64, 2).put<int64_t>(-1).put<int64_t>(1ll << 50);
    r.array("t.a.u64", ValueType::UINT64, 2).u64(7).u64(~0ull);
    r.array("t.a.f64", ValueType::FLOAT64, 1).put<double>(-2.5);
    r.array("t.a.bool", ValueType::BOOL, 2).u8(0).u8(1);
    r.array("t.a.str", ValueType::STRING, 2).str("x").str("yz");
    r.array("t.a.empty", ValueType::INT32, 0);
    return r.b;
}

static void test_all_value_types_and_getters(void**) {
    const std::vector<uint8_t> img = all_types_image();
    auto f = File::from_memory(img.data(), img.size());
    assert_int_equal(f->metadata().size(), 22);
    assert_int_equal(f->tensors().size(), 0);

    // Unsigned values also fill i and f.
    const Value* u8 = f->find("t.u8");
    assert_int_equal(u8->u, 200);
    assert_int_equal(u8->i, 200);
    assert_true(u8->f == 200.0);
    assert_int_equal(f->find("t.u32")->i, 4000000000ll);
    assert_true(f->find("t.u64")->f == 9223372036854775808.0);

    assert_int_equal(f->get_uint("t.u8", 0), 200);
    assert_int_equal(f->get_uint("t.u16", 0), 65535);
    assert_int_equal(f->get_uint("t.u32", 0), 4000000000u);
    assert_int_equal(f->get_uint("t.u64", 0), 1ull << 63);
    assert_int_equal(f->get_int("t.i8", 0), -5);
    assert_int_equal(f->get_int("t.i16", 0), -30000);
    assert_int_equal(f->get_int("t.i32", 0), -7);
    assert_int_equal(f->get_int("t.i64", 0), -(1ll << 40));
    assert_int_equal(f->get_int("t.u32", 0), 4000000000ll);
    assert_true(f->get_float("t.f32", 0) == (double)0.1f);
    assert_true(f->get_float("t.f64", 0) == 0.1);
    assert_true(f->get_float("t.i32", 0) == -7.0);  // any number
    assert_true(f->get_bool("t.bool", false));
    assert_string_equal(std::string(f->get_string("t.str")).c_str(), "hello");

    // Absent keys give the fallback.
    assert_int_equal(f->get_uint("absent", 42), 42);
    assert_int_equal(f->get_int("absent", -42), -42);
    assert_true(f->get_float("absent", 1.5) == 1.5);
    assert_true(f->get_bool("absent", true));
    assert_string_equal(std::string(f->get_string("absent", "fb")).c_str(), "fb");
    assert_null(f->find("absent"));

    // Wrong types name the key and the type found.
    EXPECT_ERROR(f->get_string("t.u32"), MW_ERR_FORMAT, "'t.u32'");
    EXPECT_ERROR(f->get_string("t.u32"), MW_ERR_FORMAT, "UINT32");
    EXPECT_ERROR(f->get_uint("t.str", 0), MW_ERR_FORMAT, "'t.str' (at offset");
    EXPECT_ERROR(f->get_uint("t.f32", 0), MW_ERR_FORMAT, "FLOAT32");
    EXPECT_ERROR(f->get_uint("t.bool", 0), MW_ERR_FORMAT, "BOOL");
    EXPECT_ERROR(f->get_uint("t.i8", 0), MW_ERR_FORMAT, "negative");
    EXPECT_ERROR(f->get_int("t.u64", 0), MW_ERR_FORMAT, "t.u64");
    EXPECT_ERROR(f->get_int("t.a.u8", 0), MW_ERR_FORMAT, "ARRAY of UINT8");
    EXPECT_ERROR(f->get_float("t.str", 0), MW_ERR_FORMAT, "STRING");
    EXPECT_ERROR(f->get_bool("t.u8", false), MW_ERR_FORMAT, "t.u8");
    EXPECT_ERROR(f->require_uint("llama.block_count"), MW_ERR_FORMAT, "missing metadata key 'llama.block_count'");
    EXPECT_ERROR(f->require_string("general.name"), MW_ERR_FORMAT, "missing metadata key 'general.name'");

    // Arrays.
    const Value* a8 = f->find("t.a.u8");
    assert_int_equal(a8->count, 3);
    assert_int_equal(a8->int_at(2), 255);
    assert_true(a8->float_at(1) == 2.0);
    assert_int_equal(f->find("t.a.i8")->int_at(0), -128);
    assert_int_equal(f->find("t.a.u16")->int_at(0), 40000);
    assert_int_equal(f->find("t.a.i16")->int_at(0), -2);
    assert_int_equal(f->find("t.a.i64")->int_at(1), 1ll << 50);
    assert_int_equal(f->find("t.a.u64")->int_at(0), 7);
    EXPECT_ERROR(f->find("t.a.u64")->int_at(1), MW_ERR_FORMAT, "t.a.u64");
    assert_true(f->find("t.a.u64")->float_at(1) == 18446744073709551615.0);
    assert_true(f->find("t.a.f64")->float_at(0) == -2.5);
    assert_int_equal(f->find("t.a.bool")->int_at(1), 1);
    assert_string_equal(std::string(f->find("t.a.str")->str_at(1)).c_str(), "yz");
    assert_int_equal(f->find("t.a.empty")->count, 0);
    EXPECT_ERROR(f->find("t.a.empty")->int_at(0), MW_ERR_FORMAT, "out of range");
    EXPECT_ERROR(a8->int_at(3), MW_ERR_FORMAT, "array index 3 out of range");
    EXPECT_ERROR(a8->str_at(0), MW_ERR_FORMAT, "t.a.u8");
    EXPECT_ERROR(f->find("t.a.str")->int_at(0), MW_ERR_FORMAT, "STRING");
    EXPECT_ERROR(f->find("t.a.str")->float_at(0), MW_ERR_FORMAT, "t.a.str");
    EXPECT_ERROR(f->find("t.a.f64")->int_at(0), MW_ERR_FORMAT, "FLOAT64");
    EXPECT_ERROR(f->find("t.str")->int_at(0), MW_ERR_FORMAT, "expected an array");
}

// Keys other than general.alignment, in the order the file holds them.
static std::vector<std::string> keys_in_file_order(const File& f) {
    std::vector<const Value*> vs;
    for (const auto& kv : f.metadata())
        if (kv.first != "general.alignment") vs.push_back(&kv.second);
    std::sort(vs.begin(), vs.end(), [](const Value* a, const Value* b) { return a->offset < b->offset; });
    std::vector<std::string> keys;
    for (const Value* v : vs) keys.emplace_back(v->key);
    return keys;
}

// copy_metadata reproduces every key, of every type, in file order.
static void check_copy(const File& src) {
    Writer w;
    w.copy_metadata(src);
    const std::vector<uint8_t> img = w.serialize();
    auto dst = File::from_memory(img.data(), img.size());
    size_t expected = src.metadata().size() - (src.find("general.alignment") ? 1 : 0);
    assert_int_equal(dst->metadata().size(), expected);
    for (const auto& [key, a] : src.metadata()) {
        if (key == "general.alignment") continue;
        const Value* b = dst->find(key);
        assert_non_null(b);
        assert_int_equal(a.type, b->type);
        assert_int_equal(a.u, b->u);
        assert_int_equal(a.i, b->i);
        assert_memory_equal(&a.f, &b->f, sizeof(double));
        assert_true(a.str == b->str);
        assert_int_equal(a.elem_type, b->elem_type);
        assert_int_equal(a.count, b->count);
        if (a.is_array() && a.elem_type == ValueType::STRING)
            for (uint64_t k = 0; k < a.count; k++) assert_true(a.str_at(k) == b->str_at(k));
        if (a.is_array() && a.elem_type == ValueType::BOOL)
            for (uint64_t k = 0; k < a.count; k++) assert_int_equal(a.int_at(k), b->int_at(k));
        else if (a.is_array() && a.elem_type != ValueType::STRING)
            for (uint64_t k = 0; k < a.count; k++) assert_true(a.float_at(k) == b->float_at(k));
    }
    // File order is kept.
    assert_true(keys_in_file_order(src) == keys_in_file_order(*dst));
}

static void test_copy_metadata(void**) {
    const std::vector<uint8_t> img = all_types_image();
    check_copy(*File::from_memory(img.data(), img.size()));
    const std::vector<uint8_t> img64 = sample_writer(64).serialize();
    check_copy(*File::from_memory(img64.data(), img64.size()));
    if (const char* stories = mw_test_find_model(MW_STORIES_MODEL)) check_copy(*File::open(stories));
}

// ---- malformed files -------------------------------------------------------------

static void test_good_raw_images_parse(void**) {
    // The templates the malformed tests vary are themselves valid.
    const std::vector<uint8_t> img = tensor_image(good_tensors(), kGoodDataBytes);
    auto f = File::from_memory(img.data(), img.size());
    assert_int_equal(f->tensors().size(), 2);
    assert_int_equal(f->find_tensor("b")->n_bytes, 68);
    const std::vector<uint8_t> img64 = tensor_image({{"a", {4}, F32, 0}, {"b", {4}, F32, 64}}, 80, 64);
    assert_int_equal(File::from_memory(img64.data(), img64.size())->alignment(), 64);
    // Version 2 reads like version 3.
    Raw v2;
    v2.header(0, 1, 2).key("k", ValueType::UINT32).u32(1);
    assert_int_equal(File::from_memory(v2.b.data(), v2.b.size())->version(), 2);
}

static void test_bad_magic(void**) {
    std::vector<uint8_t> img = tensor_image(good_tensors(), kGoodDataBytes);
    std::memcpy(img.data(), "GGML", 4);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "magic");
}

static void test_version_1(void**) {
    Raw r;
    r.header(0, 0, 1);
    EXPECT_IMAGE_ERROR(r.b, MW_ERR_UNSUPPORTED, "GGUF version 1");
}

static void test_version_99(void**) {
    Raw r;
    r.header(0, 0, 99);
    EXPECT_IMAGE_ERROR(r.b, MW_ERR_UNSUPPORTED, "version 99");
    Raw be;
    be.header(0, 0, 0x03000000u);  // a big-endian v3 file read little-endian
    EXPECT_IMAGE_ERROR(be.b, MW_ERR_FORMAT, "big-endian");
    Raw zero;
    zero.header(0, 0, 0);
    EXPECT_IMAGE_ERROR(zero.b, MW_ERR_FORMAT, "version 0");
}

// Every prefix of a valid file is rejected cleanly (never a crash, never a read
// past the end: each prefix is an exact-size heap copy).
static void check_all_prefixes(const std::vector<uint8_t>& img, size_t valid_from) {
    assert_false(parse_exact(img, img.size()).threw);
    for (size_t len = 0; len < valid_from; len++) {
        const Outcome o = parse_exact(img, len);
        if (!o.threw || o.status != MW_ERR_FORMAT) {
            print_error("prefix of %zu bytes: threw=%d status=%d %s\n", len, (int)o.threw, (int)o.status,
                        o.message.c_str());
            fail();
        }
    }
}

static void test_truncated_prefixes(void**) {
    // Writer image: metadata of every writer type, six tensors; the last
    // tensor's data ends where its padding starts.
    const std::vector<uint8_t> img = sample_writer(32).serialize();
    auto f = File::from_memory(img.data(), img.size());
    const TensorInfo& last = f->tensors().back();
    check_all_prefixes(img, (size_t)(f->data_offset() + last.offset + last.n_bytes));
    // Raw image with every value type (no tensors: the file ends with its last value).
    const std::vector<uint8_t> all = all_types_image();
    check_all_prefixes(all, all.size());
    // Messages of a few cuts name what is cut.
    check_outcome(parse_exact(img, 10), MW_ERR_FORMAT, "file too small for a GGUF header", __LINE__);
    check_outcome(parse_exact(all, all.size() - 3), MW_ERR_FORMAT, "'t.a.empty': array length at offset", __LINE__);
}

static void test_truncated_tensor_data(void**) {
    std::vector<uint8_t> img = tensor_image(good_tensors(), kGoodDataBytes);
    img.resize(img.size() - 1);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor 'b': data offset 32");
    // The same through open(): the path is in the message.
    TempDir dir;
    const std::string path = dir.file("cut.gguf");
    write_bytes(path, img.data(), img.size());
    EXPECT_ERROR(File::open(path), MW_ERR_FORMAT, "beyond the end of the file");
    EXPECT_ERROR(File::open(path), MW_ERR_FORMAT, "cut.gguf");
}

static void test_string_length_past_end(void**) {
    Raw r;
    r.header(0, 1).key("general.name", ValueType::STRING).u64(1000).zeros(5);
    EXPECT_IMAGE_ERROR(r.b, MW_ERR_FORMAT, "metadata key 'general.name': string length 1000 at offset");
    Raw k;
    k.header(0, 1).u64(1ull << 40).zeros(20);  // key length itself past the end
    EXPECT_IMAGE_ERROR(k.b, MW_ERR_FORMAT, "key length 1099511627776");
    Raw s;
    s.header(0, 1).array("tokenizer.ggml.tokens", ValueType::STRING, 2).str("ok").u64(99).zeros(3);
    EXPECT_IMAGE_ERROR(s.b, MW_ERR_FORMAT, "array string length 99");
}

static void test_array_length_past_end(void**) {
    Raw r;
    r.header(0, 1).array("tokenizer.ggml.scores", ValueType::FLOAT32, 1000).zeros(8);
    EXPECT_IMAGE_ERROR(r.b, MW_ERR_FORMAT, "metadata key 'tokenizer.ggml.scores': array length 1000 at offset");
    Raw s;
    s.header(0, 1).array("tokenizer.ggml.tokens", ValueType::STRING, 4294967296ull).str("a");
    EXPECT_IMAGE_ERROR(s.b, MW_ERR_FORMAT, "'tokenizer.ggml.tokens': array length 4294967296 at offset");
}

static void test_huge_array_count(void**) {
    // 2^62 * 4 bytes wraps to 0 in 64 bits: the check must not multiply.
    Raw r;
    r.header(0, 1).array("t.huge", ValueType::UINT32, 1ull << 62).zeros(16);
    EXPECT_IMAGE_ERROR(r.b, MW_ERR_FORMAT, "array length 4611686018427387904");
    Raw s;
    s.header(0, 1).array("t.huge", ValueType::STRING, 1ull << 62).zeros(16);
    EXPECT_IMAGE_ERROR(s.b, MW_ERR_FORMAT, "array length 4611686018427387904");
    Raw u;
    u.header(0, 1).array("t.huge", ValueType::UINT64, ~0ull).zeros(16);
    EXPECT_IMAGE_ERROR(u.b, MW_ERR_FORMAT, "array length");
}

static void test_counts_that_cannot_fit(void**) {
    Raw t;
    t.header(1ull << 40, 0).zeros(64);
    EXPECT_IMAGE_ERROR(t.b, MW_ERR_FORMAT, "tensor_count 1099511627776");
    Raw t2;
    t2.header(3, 0).zeros(64);  // 3 tensors need at least 99 bytes
    EXPECT_IMAGE_ERROR(t2.b, MW_ERR_FORMAT, "tensor_count 3");
    Raw k;
    k.header(0, ~0ull).zeros(64);
    EXPECT_IMAGE_ERROR(k.b, MW_ERR_FORMAT, "kv_count 18446744073709551615");
}

static void test_n_dims_5(void**) {
    std::vector<uint8_t> img = tensor_image({{"a", {1, 1, 1, 1, 4}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor 'a': n_dims 5");
    img = tensor_image({{"a", {}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "n_dims 0");
}

static void test_dim_product_overflow(void**) {
    // 2^32 x 2^32 x 16: the product already passes 2^63 at ne[1].
    std::vector<uint8_t> img = tensor_image({{"big", {1ull << 32, 1ull << 32, 16}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor 'big': element count overflows: ne[1]");
    img = tensor_image({{"big", {1ull << 31, 1ull << 31, 16}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "element count overflows: ne[2]");
    // Elements fit but bytes do not: 2^62 F32 elements are 2^64 bytes.
    img = tensor_image({{"big", {1ull << 31, 1ull << 31}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "overflows 64 bits");
}

static void test_dim_zero(void**) {
    std::vector<uint8_t> img = tensor_image({{"a", {4, 0}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor 'a': ne[1] at offset");
}

static void test_offset_not_aligned(void**) {
    std::vector<RawTensor> ts = good_tensors();
    ts[1].offset = 20;
    EXPECT_IMAGE_ERROR(tensor_image(ts, kGoodDataBytes), MW_ERR_FORMAT, "tensor 'b': data offset 20");
    EXPECT_IMAGE_ERROR(tensor_image(ts, kGoodDataBytes), MW_ERR_FORMAT, "alignment 32");
    // Aligned to 32 but not to the file's 64.
    EXPECT_IMAGE_ERROR(tensor_image({{"a", {4}, F32, 0}, {"b", {4}, F32, 32}}, 80, 64), MW_ERR_FORMAT,
                       "alignment 64");
}

static void test_offset_past_end(void**) {
    std::vector<RawTensor> ts = good_tensors();
    ts[1].offset = 1ull << 40;
    EXPECT_IMAGE_ERROR(tensor_image(ts, kGoodDataBytes), MW_ERR_FORMAT, "tensor 'b': data offset 1099511627776");
    ts[1].offset = ~0ull & ~31ull;  // offset + size wraps around
    EXPECT_IMAGE_ERROR(tensor_image(ts, kGoodDataBytes), MW_ERR_FORMAT, "beyond the end of the file");
}

static void test_exabyte_tensor(void**) {
    // 2^30 x 2^30 F32 = 4 EiB in a file of a few hundred bytes.
    std::vector<uint8_t> img = tensor_image({{"huge", {1ull << 30, 1ull << 30}, F32, 0}}, 64);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor 'huge': data offset 0");
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "4611686018427387904 bytes lies beyond");
}

static void test_overlapping_tensors(void**) {
    // Two F32[16] (64 bytes each) at 0 and 32.
    std::vector<uint8_t> img = tensor_image({{"a", {16}, F32, 0}, {"b", {16}, F32, 32}}, 128);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor 'b': data [32, 96) overlaps tensor 'a'");
    // Same, listed in the other order.
    img = tensor_image({{"b", {16}, F32, 32}, {"a", {16}, F32, 0}}, 128);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "overlaps");
    // Identical ranges.
    img = tensor_image({{"a", {4}, F32, 0}, {"b", {4}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "overlaps");
}

static void test_duplicate_tensor_name(void**) {
    std::vector<uint8_t> img = tensor_image({{"w", {4}, F32, 0}, {"w", {4}, F32, 32}}, 64);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor 'w': duplicate tensor name");
    img = tensor_image({{"", {4}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "empty tensor name");
    img = tensor_image({{std::string(65, 'n'), {4}, F32, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor name length 65");
}

static void test_duplicate_key(void**) {
    Raw r;
    r.header(0, 2).key("general.name", ValueType::STRING).str("a").key("general.name", ValueType::UINT32).u32(1);
    EXPECT_IMAGE_ERROR(r.b, MW_ERR_FORMAT, "metadata key 'general.name': duplicate key");
    Raw e;
    e.header(0, 1).key("", ValueType::UINT32).u32(1);
    EXPECT_IMAGE_ERROR(e.b, MW_ERR_FORMAT, "empty key");
}

static void test_unknown_tensor_type(void**) {
    std::vector<uint8_t> img = tensor_image({{"a", {4}, 99, 0}}, 32);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "tensor 'a': unknown tensor type 99");
    img = tensor_image({{"q", {33}, Q8_0, 0}}, 64);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "ne[0] = 33 is not a multiple of the Q8_0 block size 32");
}

static void test_unknown_value_type(void**) {
    Raw r;
    r.header(0, 1).key("t.k", (ValueType)13).u32(0);
    EXPECT_IMAGE_ERROR(r.b, MW_ERR_FORMAT, "metadata key 't.k': unknown value type 13");
    Raw a;
    a.header(0, 1).array("t.k", (ValueType)200, 1).u32(0);
    EXPECT_IMAGE_ERROR(a.b, MW_ERR_FORMAT, "unknown array element type 200");
    Raw b;
    b.header(0, 1).key("t.flag", ValueType::BOOL).u8(2).zeros(8);
    EXPECT_IMAGE_ERROR(b.b, MW_ERR_FORMAT, "'t.flag': BOOL value 2");
    Raw ba;
    ba.header(0, 1).array("t.flags", ValueType::BOOL, 2).u8(1).u8(7).zeros(8);
    EXPECT_IMAGE_ERROR(ba.b, MW_ERR_FORMAT, "BOOL array element 1");
}

static void test_nested_array(void**) {
    Raw r;
    r.header(0, 1).array("t.nested", ValueType::ARRAY, 1).u32((uint32_t)ValueType::UINT8).u64(1).u8(0);
    EXPECT_IMAGE_ERROR(r.b, MW_ERR_FORMAT, "metadata key 't.nested': nested array");
}

static void test_bad_alignment(void**) {
    std::vector<uint8_t> img = tensor_image({{"a", {4}, F32, 0}}, 48, 48);
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "'general.alignment'");
    EXPECT_IMAGE_ERROR(img, MW_ERR_FORMAT, "alignment 48 is not a power of two");
    Raw z;
    z.header(0, 1).key("general.alignment", ValueType::UINT32).u32(0);
    EXPECT_IMAGE_ERROR(z.b, MW_ERR_FORMAT, "alignment 0 is not a power of two");
    Raw s;
    s.header(0, 1).key("general.alignment", ValueType::STRING).str("32");
    EXPECT_IMAGE_ERROR(s.b, MW_ERR_FORMAT, "'general.alignment' (at offset 24) has type STRING");
    Raw n;
    n.header(0, 1).key("general.alignment", ValueType::INT32).put<int32_t>(-32);
    EXPECT_IMAGE_ERROR(n.b, MW_ERR_FORMAT, "alignment -32 is negative");
}

static void test_empty_file_and_directory(void**) {
    TempDir dir;
    assert_false(dir.path.empty());
    const std::string empty = dir.file("empty.gguf");
    write_bytes(empty, nullptr, 0);
    EXPECT_ERROR(File::open(empty), MW_ERR_FORMAT, "file too small for a GGUF header");
    const std::string tiny = dir.file("tiny.gguf");
    write_bytes(tiny, (const uint8_t*)"GGUF\3\0\0\0", 8);
    EXPECT_ERROR(File::open(tiny), MW_ERR_FORMAT, "file too small for a GGUF header (8 bytes");
    EXPECT_ERROR(File::open(dir.path), MW_ERR_IO, "is a directory");
    EXPECT_ERROR(File::open(dir.file("missing.gguf")), MW_ERR_IO, "missing.gguf");
    EXPECT_ERROR(File::open("/dev/null"), MW_ERR_IO, "not a regular file");
    EXPECT_ERROR(File::from_memory(nullptr, 0), MW_ERR_FORMAT, "file too small");
    EXPECT_ERROR(File::from_memory(nullptr, 100), MW_ERR_INVALID_ARGUMENT, "NULL");
}

// Every single-byte corruption of a small valid image either parses or fails
// with mw::Error: never a crash, an over-read, or another exception.
static void test_byte_corruptions(void**) {
    const std::vector<uint8_t> good = tensor_image(good_tensors(), kGoodDataBytes);
    Raw kv;
    kv.header(1, 2).key("general.alignment", ValueType::UINT32).u32(32);
    kv.array("t.s", ValueType::STRING, 2).str("ab").str("c");
    kv.tensor("a", {4}, F32, 0).pad(32).zeros(16);
    const uint8_t values[] = {0x00, 0x01, 0x07, 0x0C, 0x21, 0x80, 0xFF};
    int rejected = 0;
    const std::vector<uint8_t>* images[] = {&good, &kv.b};
    for (const std::vector<uint8_t>* img : images) {
        for (size_t pos = 0; pos < img->size(); pos++) {
            for (uint8_t v : values) {
                std::vector<uint8_t> bad = *img;
                if (bad[pos] == v) continue;
                bad[pos] = v;
                const Outcome o = parse_exact(bad, bad.size());
                if (o.threw && o.status != MW_ERR_FORMAT && o.status != MW_ERR_UNSUPPORTED) {
                    print_error("byte %zu = 0x%02x: status %d %s\n", pos, v, (int)o.status, o.message.c_str());
                    fail();
                }
                rejected += o.threw;
            }
        }
    }
    assert_true(rejected > 100);  // the corruptions are mostly caught
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensor_type_table),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_smollm2),
        cmocka_unit_test(test_writer_round_trip_align32),
        cmocka_unit_test(test_writer_round_trip_align64),
        cmocka_unit_test(test_writer_rejects_bad_input),
        cmocka_unit_test(test_all_value_types_and_getters),
        cmocka_unit_test(test_copy_metadata),
        cmocka_unit_test(test_good_raw_images_parse),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_version_1),
        cmocka_unit_test(test_version_99),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_truncated_tensor_data),
        cmocka_unit_test(test_string_length_past_end),
        cmocka_unit_test(test_array_length_past_end),
        cmocka_unit_test(test_huge_array_count),
        cmocka_unit_test(test_counts_that_cannot_fit),
        cmocka_unit_test(test_n_dims_5),
        cmocka_unit_test(test_dim_product_overflow),
        cmocka_unit_test(test_dim_zero),
        cmocka_unit_test(test_offset_not_aligned),
        cmocka_unit_test(test_offset_past_end),
        cmocka_unit_test(test_exabyte_tensor),
        cmocka_unit_test(test_overlapping_tensors),
        cmocka_unit_test(test_duplicate_tensor_name),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_unknown_tensor_type),
        cmocka_unit_test(test_unknown_value_type),
        cmocka_unit_test(test_nested_array),
        cmocka_unit_test(test_bad_alignment),
        cmocka_unit_test(test_empty_file_and_directory),
        cmocka_unit_test(test_byte_corruptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
