// gguf::File: maps a GGUF file and validates it before anything reads through it.
//
// Layout (v2/v3, little-endian): "GGUF", u32 version, u64 tensor_count,
// u64 kv_count, kv_count key/value records, tensor_count tensor infos, padding
// to the alignment, then the data section. A string is u64 length + bytes.
//
// Limits enforced (each violation is MW_ERR_FORMAT naming the field and the
// byte offset, unless noted):
//  - file at least 24 bytes (the v2/v3 header); magic "GGUF";
//  - version 2 or 3 (1 and future versions: MW_ERR_UNSUPPORTED; 0 or a
//    byte-swapped, big-endian version: MW_ERR_FORMAT);
//  - tensor_count, kv_count <= 2^20 each and plausible: every record has a
//    minimum size, so count * minimum must fit in the bytes left;
//  - every read stays inside the file (a bounds-checked cursor);
//  - keys 1..65535 bytes, unique; strings no longer than the bytes left;
//  - value types and array element types known; no arrays of arrays;
//    array count * element size fits in the bytes left (overflow-safe; a
//    string array needs at least 8 bytes per element); BOOL bytes are 0 or 1;
//  - the metadata section (all key/value records) at most 1 GiB;
//  - general.alignment (default 32) a non-negative integer, a power of two;
//  - tensor names 1..64 bytes and unique; n_dims 1..4; every dimension >= 1;
//    the element count and byte size do not overflow (elements < 2^63);
//    type a known ggml id; ne[0] a multiple of the type's block size;
//  - data offsets aligned; the data section starts at the end of the tensor
//    infos rounded up to the alignment; every tensor's bytes lie inside the
//    file and no two tensors' bytes overlap (so their sizes cannot sum past
//    the file size).
// Memory while parsing is bounded relative to the file: a string array keeps
// 4 bytes per string (each takes at least 8 in the file), tensor infos are
// reserved only after tensor_count passed the bytes-left check, and the
// 1 GiB metadata cap applies on top.
#include "gguf/gguf_file.h"

#include "base/error.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "memwise reads GGUF data in place and supports little-endian hosts only"
#endif

namespace mw::gguf {

namespace {

constexpr uint64_t kHeaderBytes = 24;
constexpr uint64_t kMaxCount = 1ull << 20;            // tensors or keys
constexpr uint64_t kMaxKeyBytes = 65535;
constexpr uint64_t kMaxTensorNameBytes = 64;
constexpr uint64_t kMaxMetadataBytes = 1ull << 30;
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;          // key length, 1-byte key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, one dim, type, offset

std::string num(uint64_t v) { return std::to_string(v); }

// Size of one element of a fixed-size value type; 0 for STRING and ARRAY.
uint64_t fixed_size(ValueType t) {
    switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    default: return 0;
    }
}

bool known_value_type(uint32_t t) { return t <= (uint32_t)ValueType::FLOAT64; }

// A number decoded from little-endian bytes.
struct Number {
    enum Kind { UNSIGNED, SIGNED, FLOATING } kind;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
};

template <class T> T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// t must be a fixed-size type.
Number load_number(ValueType t, const uint8_t* p) {
    Number n{Number::UNSIGNED};
    switch (t) {
    case ValueType::UINT8: case ValueType::BOOL: n.u = p[0]; break;
    case ValueType::UINT16: n.u = load<uint16_t>(p); break;
    case ValueType::UINT32: n.u = load<uint32_t>(p); break;
    case ValueType::UINT64: n.u = load<uint64_t>(p); break;
    case ValueType::INT8: n.kind = Number::SIGNED; n.i = (int8_t)p[0]; break;
    case ValueType::INT16: n.kind = Number::SIGNED; n.i = load<int16_t>(p); break;
    case ValueType::INT32: n.kind = Number::SIGNED; n.i = load<int32_t>(p); break;
    case ValueType::INT64: n.kind = Number::SIGNED; n.i = load<int64_t>(p); break;
    case ValueType::FLOAT32: n.kind = Number::FLOATING; n.f = load<float>(p); break;
    case ValueType::FLOAT64: n.kind = Number::FLOATING; n.f = load<double>(p); break;
    default: break;
    }
    return n;
}

bool is_integer_type(ValueType t) {
    switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64: return true;
    default: return false;
    }
}

bool is_number_type(ValueType t) {
    return is_integer_type(t) || t == ValueType::FLOAT32 || t == ValueType::FLOAT64;
}

std::string key_prefix(std::string_view key) { return "metadata key '" + std::string(key) + "'"; }

[[noreturn]] void format_error(const std::string& message) { fail(MW_ERR_FORMAT, message); }

// Reads little-endian fields from the image; every read is bounds-checked and
// a failure names the context (which record), the field and the byte offset.
class Cursor {
public:
    Cursor(const uint8_t* base, uint64_t size) : base_(base), size_(size) {}

    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }
    const uint8_t* here() const { return base_ + pos_; }
    void set_context(std::string context) { context_ = std::move(context); }

    [[noreturn]] void error(const std::string& message) const {
        format_error(context_.empty() ? message : context_ + ": " + message);
    }

    void need(uint64_t n, const char* field) const {
        if (n > left())
            error(std::string(field) + " at offset " + num(pos_) + " needs " + num(n) + " bytes but only " +
                  num(left()) + " are left in the file");
    }
    void skip(uint64_t n) { pos_ += n; }  // after need()

    uint8_t u8(const char* field) { need(1, field); return base_[pos_++]; }
    uint32_t u32(const char* field) {
        need(4, field);
        uint32_t v = load<uint32_t>(here());
        pos_ += 4;
        return v;
    }
    uint64_t u64(const char* field) {
        need(8, field);
        uint64_t v = load<uint64_t>(here());
        pos_ += 8;
        return v;
    }
    // A GGUF string: u64 length then bytes, at most max_len bytes.
    std::string_view str(const char* field, uint64_t max_len = UINT64_MAX) {
        const uint64_t at = pos_;
        const uint64_t len = u64(field);
        if (len > left())
            error(std::string(field) + " length " + num(len) + " at offset " + num(at) + " exceeds the " +
                  num(left()) + " bytes left in the file");
        if (len > max_len)
            error(std::string(field) + " length " + num(len) + " at offset " + num(at) + " exceeds the limit of " +
                  num(max_len) + " bytes");
        std::string_view s((const char*)here(), (size_t)len);
        pos_ += len;
        return s;
    }

private:
    const uint8_t* base_;
    uint64_t size_;
    uint64_t pos_ = 0;
    std::string context_;
};

// Reads the value of a record whose type has been read; fills v.
void read_value(Cursor& c, Value& v) {
    if (v.type == ValueType::STRING) {
        v.str = c.str("string");
        return;
    }
    if (v.type != ValueType::ARRAY) {
        const uint64_t at = c.pos();
        c.need(fixed_size(v.type), value_type_name(v.type));
        const Number n = load_number(v.type, c.here());
        c.skip(fixed_size(v.type));
        if (v.type == ValueType::BOOL && n.u > 1)
            c.error("BOOL value " + num(n.u) + " at offset " + num(at) + " is not 0 or 1");
        switch (n.kind) {
        case Number::UNSIGNED:
            v.u = n.u;
            v.i = n.u <= (uint64_t)INT64_MAX ? (int64_t)n.u : 0;
            v.f = (double)n.u;
            break;
        case Number::SIGNED:
            v.i = n.i;
            v.u = n.i >= 0 ? (uint64_t)n.i : 0;
            v.f = (double)n.i;
            break;
        case Number::FLOATING: v.f = n.f; break;
        }
        return;
    }

    const uint64_t type_at = c.pos();
    const uint32_t et = c.u32("array element type");
    if (!known_value_type(et)) c.error("unknown array element type " + num(et) + " at offset " + num(type_at));
    v.elem_type = (ValueType)et;
    if (v.elem_type == ValueType::ARRAY) c.error("nested array (array of ARRAY) at offset " + num(type_at));

    const uint64_t count_at = c.pos();
    v.count = c.u64("array length");
    if (v.elem_type == ValueType::STRING) {
        // Each string takes at least its 8-byte length.
        if (v.count > c.left() / 8)
            c.error("array length " + num(v.count) + " at offset " + num(count_at) + " exceeds the " + num(c.left()) +
                    " bytes left in the file (a string needs at least 8)");
        v.elems = c.here();
        v.str_offsets.reserve((size_t)v.count);
        for (uint64_t k = 0; k < v.count; k++) {
            const uint64_t off = (uint64_t)(c.here() - v.elems);
            if (off > UINT32_MAX) c.error("string array at offset " + num(count_at) + " spans more than 4 GiB");
            v.str_offsets.push_back((uint32_t)off);
            c.str("array string");
        }
        return;
    }
    const uint64_t es = fixed_size(v.elem_type);
    if (v.count > c.left() / es)
        c.error("array length " + num(v.count) + " at offset " + num(count_at) + " (" + num(es) + "-byte " +
                value_type_name(v.elem_type) + " elements) exceeds the " + num(c.left()) + " bytes left in the file");
    v.elems = c.here();
    if (v.elem_type == ValueType::BOOL)
        for (uint64_t k = 0; k < v.count; k++)
            if (v.elems[k] > 1)
                c.error("BOOL array element " + num(k) + " at offset " + num(c.pos() + k) + " is not 0 or 1");
    c.skip(v.count * es);
}

bool align_up(uint64_t x, uint64_t alignment, uint64_t* out) {
    uint64_t sum;
    if (__builtin_add_overflow(x, alignment - 1, &sum)) return false;
    *out = sum / alignment * alignment;
    return true;
}

std::string dims_str(const TensorInfo& t) {
    std::string s = "[";
    for (uint32_t d = 0; d < t.n_dims; d++) s += (d ? ", " : "") + num(t.ne[d]);
    return s + "]";
}

}  // namespace

const char* value_type_name(ValueType t) {
    switch (t) {
    case ValueType::UINT8: return "UINT8";
    case ValueType::INT8: return "INT8";
    case ValueType::UINT16: return "UINT16";
    case ValueType::INT16: return "INT16";
    case ValueType::UINT32: return "UINT32";
    case ValueType::INT32: return "INT32";
    case ValueType::FLOAT32: return "FLOAT32";
    case ValueType::BOOL: return "BOOL";
    case ValueType::STRING: return "STRING";
    case ValueType::ARRAY: return "ARRAY";
    case ValueType::UINT64: return "UINT64";
    case ValueType::INT64: return "INT64";
    case ValueType::FLOAT64: return "FLOAT64";
    }
    return "UNKNOWN";
}

// ---- Value ----------------------------------------------------------------

bool Value::is_integer() const { return is_integer_type(type); }

namespace {

// Checks that v is an array and idx is inside it; returns the element's bytes
// (nullptr for string arrays).
const uint8_t* element(const Value& v, uint64_t idx) {
    if (!v.is_array())
        format_error(key_prefix(v.key) + " has type " + value_type_name(v.type) + ", expected an array");
    if (idx >= v.count)
        format_error(key_prefix(v.key) + ": array index " + num(idx) + " out of range (length " + num(v.count) + ")");
    const uint64_t es = fixed_size(v.elem_type);
    return es ? v.elems + idx * es : nullptr;
}

}  // namespace

int64_t Value::int_at(uint64_t idx) const {
    const uint8_t* p = element(*this, idx);
    if (!is_integer_type(elem_type) && elem_type != ValueType::BOOL)
        format_error(key_prefix(key) + " is an array of " + value_type_name(elem_type) + ", expected integers");
    const Number n = load_number(elem_type, p);
    if (n.kind == Number::SIGNED) return n.i;
    if (n.u > (uint64_t)INT64_MAX)
        format_error(key_prefix(key) + ": element " + num(idx) + " value " + num(n.u) + " does not fit in INT64");
    return (int64_t)n.u;
}

double Value::float_at(uint64_t idx) const {
    const uint8_t* p = element(*this, idx);
    if (!is_number_type(elem_type))
        format_error(key_prefix(key) + " is an array of " + value_type_name(elem_type) + ", expected numbers");
    const Number n = load_number(elem_type, p);
    switch (n.kind) {
    case Number::UNSIGNED: return (double)n.u;
    case Number::SIGNED: return (double)n.i;
    case Number::FLOATING: break;
    }
    return n.f;
}

std::string_view Value::str_at(uint64_t idx) const {
    element(*this, idx);
    if (elem_type != ValueType::STRING)
        format_error(key_prefix(key) + " is an array of " + value_type_name(elem_type) + ", expected strings");
    const uint8_t* p = elems + str_offsets[(size_t)idx];
    uint64_t len;
    std::memcpy(&len, p, 8);  // validated at parse time
    return std::string_view((const char*)p + 8, (size_t)len);
}

namespace {

// A typed getter found another type.
[[noreturn]] void wrong_type(const Value& v, const char* expected) {
    format_error(key_prefix(v.key) + " (at offset " + num(v.offset) + ") has type " + value_type_name(v.type) +
                 (v.is_array() ? std::string(" of ") + value_type_name(v.elem_type) : std::string()) + ", expected " +
                 expected);
}

}  // namespace

// ---- File: opening ----------------------------------------------------------

namespace {

// "8388608 bytes (8192 KiB)" or "unlimited".
std::string limit_str(rlim_t v) {
    if (v == RLIM_INFINITY) return "unlimited";
    return num((uint64_t)v) + " bytes (" + num((uint64_t)v >> 10) + " KiB)";
}

// madvise for the access hint. A hint the kernel refuses is an I/O error rather
// than silently ignored: the caller asked for a specific paging behaviour.
void apply_access_hint(void* p, uint64_t size, AccessHint hint, const std::string& path) {
    int advice = 0;
    const char* name = "";
    switch (hint) {
        case AccessHint::Default: return;
        case AccessHint::Random: advice = MADV_RANDOM; name = "MADV_RANDOM"; break;
        case AccessHint::Sequential: advice = MADV_SEQUENTIAL; name = "MADV_SEQUENTIAL"; break;
        case AccessHint::WillNeed: advice = MADV_WILLNEED; name = "MADV_WILLNEED"; break;
    }
    if (madvise(p, (size_t)size, advice) != 0)
        fail(MW_ERR_IO, "cannot apply " + std::string(name) + " to the mapping of '" + path + "': " +
                            std::strerror(errno));
}

// mlock the whole mapping (this also reads every page in). When the limit
// forbids it, the message gives the limit and what the file needs, so the user
// knows what to raise (ulimit -l, LimitMEMLOCK=, /etc/security/limits.conf).
void lock_mapping(const void* p, uint64_t size, const std::string& path) {
    if (mlock(p, (size_t)size) == 0) return;
    const int e = errno;
    const long page = sysconf(_SC_PAGESIZE);
    const uint64_t pg = page > 0 ? (uint64_t)page : 4096;
    const uint64_t need = (size + pg - 1) / pg * pg;
    struct rlimit rl;
    std::string limit = "unknown";
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
        limit = limit_str(rl.rlim_cur) + " (hard limit " + limit_str(rl.rlim_max) + ")";
    fail(MW_ERR_IO, "cannot lock '" + path + "' in memory: mlock: " + std::strerror(e) + "; locking needs " +
                        num(need) + " bytes (" + num(need >> 10) + " KiB) and RLIMIT_MEMLOCK is " + limit +
                        "; raise it (ulimit -l) or open without lock");
}

}  // namespace

std::unique_ptr<File> File::open(const std::string& path, const OpenOptions& opts) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(MW_ERR_IO, "cannot open '" + path + "': " + std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        fail(MW_ERR_IO, "cannot stat '" + path + "': " + std::strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        fail(MW_ERR_IO, "'" + path + "' is a directory, not a GGUF file");
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(MW_ERR_IO, "'" + path + "' is not a regular file");
    }
    const uint64_t size = (uint64_t)st.st_size;
    if (size < kHeaderBytes) {
        ::close(fd);
        fail(MW_ERR_FORMAT, "'" + path + "': file too small for a GGUF header (" + num(size) + " bytes, need " +
                                num(kHeaderBytes) + ")");
    }
    int flags = MAP_SHARED;
    if (opts.prefault) flags |= MAP_POPULATE;
    void* p = mmap(nullptr, (size_t)size, PROT_READ, flags, fd, 0);
    const int map_errno = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) fail(MW_ERR_IO, "cannot map '" + path + "': " + std::strerror(map_errno));

    std::unique_ptr<File> f(new File());
    f->path_ = path;
    f->base_ = (const uint8_t*)p;
    f->size_ = size;
    f->mapped_ = true;  // from here the destructor unmaps (and unlocks), also on errors below
    apply_access_hint(p, size, opts.access, path);
    try {
        f->parse();
    } catch (const Error& e) {
        fail(e.status(), "'" + path + "': " + e.what());
    }
    if (opts.lock) lock_mapping(p, size, path);
    return f;
}

std::unique_ptr<File> File::from_memory(const uint8_t* data, size_t size) {
    if (size < kHeaderBytes)
        fail(MW_ERR_FORMAT, "file too small for a GGUF header (" + num(size) + " bytes, need " + num(kHeaderBytes) + ")");
    if (!data) fail(MW_ERR_INVALID_ARGUMENT, "GGUF image is NULL");
    std::unique_ptr<File> f(new File());
    f->path_ = "<memory>";
    f->base_ = data;
    f->size_ = size;
    f->parse();
    return f;
}

File::~File() {
    if (mapped_) munmap(const_cast<uint8_t*>(base_), (size_t)size_);
}

// ---- File: parsing ----------------------------------------------------------

void File::parse() {
    Cursor c(base_, size_);
    if (size_ < kHeaderBytes)
        format_error("file too small for a GGUF header (" + num(size_) + " bytes, need " + num(kHeaderBytes) + ")");

    c.need(4, "magic");
    if (std::memcmp(c.here(), "GGUF", 4) != 0) {
        char shown[5] = {0};
        for (int k = 0; k < 4; k++) shown[k] = (c.here()[k] >= 32 && c.here()[k] < 127) ? (char)c.here()[k] : '?';
        format_error(std::string("magic at offset 0 is '") + shown + "', not 'GGUF' (not a GGUF file)");
    }
    c.skip(4);
    version_ = c.u32("version");
    if (version_ == 1)
        fail(MW_ERR_UNSUPPORTED, "GGUF version 1 is not supported (only versions 2 and 3); convert the file again");
    if (version_ == 0 || (version_ & 0xFFFF) == 0)
        format_error("version " + num(version_) + " at offset 4 is invalid" +
                     ((version_ & 0xFFFF) == 0 && version_ ? " (a big-endian GGUF file?)" : ""));
    if (version_ > 3) fail(MW_ERR_UNSUPPORTED, "GGUF version " + num(version_) + " is not supported (only 2 and 3)");

    const uint64_t tensor_count = c.u64("tensor_count");
    const uint64_t kv_count = c.u64("kv_count");
    if (tensor_count > kMaxCount || tensor_count > c.left() / kMinTensorInfoBytes)
        format_error("tensor_count " + num(tensor_count) + " at offset 8 cannot fit in the " + num(c.left()) +
                     " bytes left in the file");
    if (kv_count > kMaxCount || kv_count > c.left() / kMinKvBytes ||
        kv_count * kMinKvBytes + tensor_count * kMinTensorInfoBytes > c.left())
        format_error("kv_count " + num(kv_count) + " at offset 16 cannot fit in the " + num(c.left()) +
                     " bytes left in the file (with " + num(tensor_count) + " tensors)");

    // Metadata.
    const uint64_t kv_start = c.pos();
    for (uint64_t k = 0; k < kv_count; k++) {
        const uint64_t at = c.pos();
        c.set_context("metadata entry " + num(k));
        const std::string_view key = c.str("key", kMaxKeyBytes);
        if (key.empty()) c.error("empty key at offset " + num(at));
        c.set_context(key_prefix(key));
        if (const Value* first = find(key))
            c.error("duplicate key at offset " + num(at) + " (first at offset " + num(first->offset) + ")");
        const uint64_t type_at = c.pos();
        const uint32_t type = c.u32("value type");
        if (!known_value_type(type)) c.error("unknown value type " + num(type) + " at offset " + num(type_at));
        Value v;
        v.type = (ValueType)type;
        v.key = key;
        v.offset = at;
        read_value(c, v);
        if (c.pos() - kv_start > kMaxMetadataBytes)
            c.error("metadata section exceeds the limit of " + num(kMaxMetadataBytes) + " bytes");
        kv_.emplace(std::string(key), std::move(v));
    }
    c.set_context("");

    if (const Value* a = find("general.alignment")) {
        if (!a->is_integer()) wrong_type(*a, "an unsigned integer");
        if (a->u == 0 && a->i < 0)
            format_error(key_prefix(a->key) + " at offset " + num(a->offset) + ": alignment " + std::to_string(a->i) +
                         " is negative");
        alignment_ = a->u;
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
            format_error(key_prefix(a->key) + " at offset " + num(a->offset) + ": alignment " + num(alignment_) +
                         " is not a power of two");
    } else {
        alignment_ = kDefaultAlignment;
    }

    // Tensor infos.
    tensors_.reserve((size_t)tensor_count);
    for (uint64_t k = 0; k < tensor_count; k++) {
        TensorInfo t;
        t.info_offset = c.pos();
        c.set_context("tensor " + num(k));
        const std::string_view name = c.str("tensor name", kMaxTensorNameBytes);
        if (name.empty()) c.error("empty tensor name at offset " + num(t.info_offset));
        t.name = std::string(name);
        c.set_context("tensor '" + t.name + "'");
        if (find_tensor(name))
            c.error("duplicate tensor name at offset " + num(t.info_offset) + " (first at offset " +
                    num(find_tensor(name)->info_offset) + ")");

        const uint64_t dims_at = c.pos();
        t.n_dims = c.u32("n_dims");
        if (t.n_dims < 1 || t.n_dims > kMaxDims)
            c.error("n_dims " + num(t.n_dims) + " at offset " + num(dims_at) + " is outside 1.." + num(kMaxDims));
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < t.n_dims; d++) {
            const uint64_t at = c.pos();
            const std::string field = "ne[" + num(d) + "]";
            t.ne[d] = c.u64(field.c_str());
            if (t.ne[d] == 0) c.error(field + " at offset " + num(at) + " is 0");
            if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements) || n_elements > (uint64_t)INT64_MAX)
                c.error("element count overflows: " + field + " = " + num(t.ne[d]) + " at offset " + num(at) +
                        " makes the product of the dimensions exceed 2^63");
        }
        t.n_elements = n_elements;

        const uint64_t type_at = c.pos();
        const uint32_t type = c.u32("tensor type");
        const TensorTypeInfo* ti = tensor_type_info(type);
        if (!ti) c.error("unknown tensor type " + num(type) + " at offset " + num(type_at));
        t.type = (TensorType)type;
        if (t.ne[0] % ti->block_elems != 0)
            c.error("ne[0] = " + num(t.ne[0]) + " is not a multiple of the " + ti->name + " block size " +
                    num(ti->block_elems));
        uint64_t n_bytes = 0;
        bool overflow = __builtin_mul_overflow(t.ne[0] / ti->block_elems, (uint64_t)ti->block_bytes, &n_bytes);
        for (uint32_t d = 1; d < t.n_dims; d++) overflow = overflow || __builtin_mul_overflow(n_bytes, t.ne[d], &n_bytes);
        if (overflow) c.error("data size of shape " + dims_str(t) + " (" + ti->name + ") overflows 64 bits");
        t.n_bytes = n_bytes;

        const uint64_t off_at = c.pos();
        t.offset = c.u64("data offset");
        if (t.offset % alignment_ != 0)
            c.error("data offset " + num(t.offset) + " at offset " + num(off_at) + " is not a multiple of the alignment " +
                    num(alignment_));
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }
    c.set_context("");

    // Data section: every tensor inside the file, none overlapping.
    if (!align_up(c.pos(), alignment_, &data_offset_)) data_offset_ = UINT64_MAX;
    std::vector<size_t> order(tensors_.size());
    for (size_t k = 0; k < order.size(); k++) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
    const TensorInfo* prev = nullptr;
    for (size_t k : order) {
        TensorInfo& t = tensors_[k];
        const std::string where = "tensor '" + t.name + "'";
        if (data_offset_ > size_)
            format_error(where + ": data section starts at offset " + num(data_offset_) + ", beyond the end of the file (size " +
                         num(size_) + ")");
        const uint64_t room = size_ - data_offset_;
        if (t.offset > room || t.n_bytes > room - t.offset)
            format_error(where + ": data offset " + num(t.offset) + " (info at offset " + num(t.info_offset) + ") + " +
                         num(t.n_bytes) + " bytes lies beyond the end of the file: the data section at offset " +
                         num(data_offset_) + " holds " + num(room) + " bytes (file size " + num(size_) + ")");
        if (prev && t.offset < prev->offset + prev->n_bytes)
            format_error(where + ": data [" + num(t.offset) + ", " + num(t.offset + t.n_bytes) + ") overlaps tensor '" +
                         prev->name + "' data [" + num(prev->offset) + ", " + num(prev->offset + prev->n_bytes) + ")");
        t.data = base_ + data_offset_ + t.offset;
        prev = &t;
    }
}

// ---- File: lookups ----------------------------------------------------------

const Value* File::find(std::string_view key) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &it->second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string_view File::get_string(std::string_view key, std::string_view fallback) const {
    const Value* v = find(key);
    if (!v) return fallback;
    if (v->type != ValueType::STRING) wrong_type(*v, "STRING");
    return v->str;
}

uint64_t File::get_uint(std::string_view key, uint64_t fallback) const {
    const Value* v = find(key);
    if (!v) return fallback;
    if (!v->is_integer()) wrong_type(*v, "an unsigned integer");
    const bool is_signed = v->type == ValueType::INT8 || v->type == ValueType::INT16 || v->type == ValueType::INT32 ||
                           v->type == ValueType::INT64;
    if (is_signed && v->i < 0)
        format_error(key_prefix(key) + ": value " + std::to_string(v->i) + " is negative, expected an unsigned integer");
    return v->u;
}

int64_t File::get_int(std::string_view key, int64_t fallback) const {
    const Value* v = find(key);
    if (!v) return fallback;
    if (!v->is_integer()) wrong_type(*v, "an integer");
    if (v->type == ValueType::UINT64 && v->u > (uint64_t)INT64_MAX)
        format_error(key_prefix(key) + ": value " + num(v->u) + " does not fit in INT64");
    return v->i;
}

double File::get_float(std::string_view key, double fallback) const {
    const Value* v = find(key);
    if (!v) return fallback;
    if (!v->is_integer() && !v->is_float()) wrong_type(*v, "a number");
    return v->f;
}

bool File::get_bool(std::string_view key, bool fallback) const {
    const Value* v = find(key);
    if (!v) return fallback;
    if (v->type != ValueType::BOOL) wrong_type(*v, "BOOL");
    return v->u != 0;
}

std::string_view File::require_string(std::string_view key) const {
    if (!find(key)) format_error("missing metadata key '" + std::string(key) + "'");
    return get_string(key);
}

uint64_t File::require_uint(std::string_view key) const {
    if (!find(key)) format_error("missing metadata key '" + std::string(key) + "'");
    return get_uint(key, 0);
}

}  // namespace mw::gguf
