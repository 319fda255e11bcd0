// gguf::Writer: GGUF v3, little-endian. Metadata in the order it was set (a
// key set twice keeps its first place), then tensor infos, then each tensor's
// data at an offset that is a multiple of the alignment, zero-padded.
#include "gguf/gguf_writer.h"

#include "base/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace mw::gguf {

namespace {

constexpr uint64_t kDefaultAlignment = 32;
const char* const kAlignmentKey = "general.alignment";

template <class T> void put(std::vector<uint8_t>& out, T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof v);
    out.insert(out.end(), b, b + sizeof b);
}

void put_str(std::vector<uint8_t>& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

template <class T> std::vector<uint8_t> array_bytes(ValueType elem, const std::vector<T>& v) {
    std::vector<uint8_t> b;
    put<uint32_t>(b, (uint32_t)elem);
    put<uint64_t>(b, v.size());
    for (const T& x : v) put<T>(b, x);
    return b;
}

// Bytes of one element of a fixed-size value type.
size_t elem_size(ValueType t) {
    switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    default: return 8;
    }
}

uint64_t pad_to(uint64_t n, uint64_t alignment) { return (alignment - n % alignment) % alignment; }

// Collects the image in memory.
struct VectorSink {
    std::vector<uint8_t> out;
    void operator()(const void* p, size_t n) { out.insert(out.end(), (const uint8_t*)p, (const uint8_t*)p + n); }
};

// Streams the image to a file descriptor (tensor data is not copied again).
struct FdSink {
    int fd;
    const std::string& path;
    void operator()(const void* p, size_t n) {
        const uint8_t* b = (const uint8_t*)p;
        while (n > 0) {
            const ssize_t w = ::write(fd, b, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                fail(MW_ERR_IO, "cannot write '" + path + "': " + std::strerror(errno));
            }
            b += w;
            n -= (size_t)w;
        }
    }
};

}  // namespace

Writer::Writer(uint64_t alignment) : alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > UINT32_MAX)
        fail(MW_ERR_INVALID_ARGUMENT, "GGUF alignment " + std::to_string(alignment) + " is not a power of two below 2^32");
}

void Writer::set_raw(const std::string& key, ValueType type, std::vector<uint8_t> bytes) {
    if (key.empty() || key.size() > 65535)
        fail(MW_ERR_INVALID_ARGUMENT, "metadata key of " + std::to_string(key.size()) + " bytes (must be 1..65535)");
    for (Kv& kv : kvs_) {
        if (kv.key == key) {
            kv.type = type;
            kv.bytes = std::move(bytes);
            return;
        }
    }
    kvs_.push_back(Kv{key, type, std::move(bytes)});
}

void Writer::set_u32(const std::string& key, uint32_t v) {
    std::vector<uint8_t> b;
    put(b, v);
    set_raw(key, ValueType::UINT32, std::move(b));
}

void Writer::set_i32(const std::string& key, int32_t v) {
    std::vector<uint8_t> b;
    put(b, v);
    set_raw(key, ValueType::INT32, std::move(b));
}

void Writer::set_u64(const std::string& key, uint64_t v) {
    std::vector<uint8_t> b;
    put(b, v);
    set_raw(key, ValueType::UINT64, std::move(b));
}

void Writer::set_f32(const std::string& key, float v) {
    std::vector<uint8_t> b;
    put(b, v);
    set_raw(key, ValueType::FLOAT32, std::move(b));
}

void Writer::set_bool(const std::string& key, bool v) {
    set_raw(key, ValueType::BOOL, std::vector<uint8_t>{(uint8_t)(v ? 1 : 0)});
}

void Writer::set_string(const std::string& key, const std::string& v) {
    std::vector<uint8_t> b;
    put_str(b, v);
    set_raw(key, ValueType::STRING, std::move(b));
}

void Writer::set_array_i32(const std::string& key, const std::vector<int32_t>& v) {
    set_raw(key, ValueType::ARRAY, array_bytes(ValueType::INT32, v));
}

void Writer::set_array_u32(const std::string& key, const std::vector<uint32_t>& v) {
    set_raw(key, ValueType::ARRAY, array_bytes(ValueType::UINT32, v));
}

void Writer::set_array_f32(const std::string& key, const std::vector<float>& v) {
    set_raw(key, ValueType::ARRAY, array_bytes(ValueType::FLOAT32, v));
}

void Writer::set_array_string(const std::string& key, const std::vector<std::string>& v) {
    std::vector<uint8_t> b;
    put<uint32_t>(b, (uint32_t)ValueType::STRING);
    put<uint64_t>(b, v.size());
    for (const std::string& s : v) put_str(b, s);
    set_raw(key, ValueType::ARRAY, std::move(b));
}

void Writer::copy_metadata(const File& src) {
    // In file order, so a rewritten model reads like the original.
    std::vector<const Value*> values;
    for (const auto& kv : src.metadata()) values.push_back(&kv.second);
    std::sort(values.begin(), values.end(), [](const Value* a, const Value* b) { return a->offset < b->offset; });

    for (const Value* v : values) {
        if (v->key == kAlignmentKey) continue;  // this writer's own alignment decides
        std::vector<uint8_t> b;
        switch (v->type) {
        case ValueType::UINT8: put<uint8_t>(b, (uint8_t)v->u); break;
        case ValueType::INT8: put<int8_t>(b, (int8_t)v->i); break;
        case ValueType::UINT16: put<uint16_t>(b, (uint16_t)v->u); break;
        case ValueType::INT16: put<int16_t>(b, (int16_t)v->i); break;
        case ValueType::UINT32: put<uint32_t>(b, (uint32_t)v->u); break;
        case ValueType::INT32: put<int32_t>(b, (int32_t)v->i); break;
        case ValueType::UINT64: put<uint64_t>(b, v->u); break;
        case ValueType::INT64: put<int64_t>(b, v->i); break;
        case ValueType::FLOAT32: put<float>(b, (float)v->f); break;
        case ValueType::FLOAT64: put<double>(b, v->f); break;
        case ValueType::BOOL: put<uint8_t>(b, v->u ? 1 : 0); break;
        case ValueType::STRING: put_str(b, v->str); break;
        case ValueType::ARRAY:
            put<uint32_t>(b, (uint32_t)v->elem_type);
            put<uint64_t>(b, v->count);
            if (v->elem_type == ValueType::STRING) {
                for (uint64_t k = 0; k < v->count; k++) put_str(b, v->str_at(k));
            } else {
                // Fixed-size elements are already little-endian bytes in the source.
                if (v->count) b.insert(b.end(), v->elems, v->elems + v->count * elem_size(v->elem_type));
            }
            break;
        }
        set_raw(std::string(v->key), v->type, std::move(b));
    }
}

void Writer::add_tensor(const std::string& name, TensorType type, const std::vector<uint64_t>& ne, const void* data,
                        size_t n_bytes) {
    const std::string where = "tensor '" + name + "'";
    if (name.empty() || name.size() > 64)
        fail(MW_ERR_INVALID_ARGUMENT, where + ": name must be 1..64 bytes");
    for (const Tensor& t : tensors_)
        if (t.name == name) fail(MW_ERR_INVALID_ARGUMENT, where + ": added twice");
    const TensorTypeInfo* ti = tensor_type_info((uint32_t)type);
    if (!ti) fail(MW_ERR_INVALID_ARGUMENT, where + ": unknown tensor type " + std::to_string((uint32_t)type));
    if (ne.empty() || ne.size() > 4)
        fail(MW_ERR_INVALID_ARGUMENT, where + ": " + std::to_string(ne.size()) + " dimensions (must be 1..4)");
    Tensor t{name, type, (uint32_t)ne.size(), {1, 1, 1, 1}, {}};
    uint64_t need = 0;
    bool overflow = false;
    for (size_t d = 0; d < ne.size(); d++) {
        if (ne[d] == 0) fail(MW_ERR_INVALID_ARGUMENT, where + ": dimension " + std::to_string(d) + " is 0");
        t.ne[d] = ne[d];
    }
    if (ne[0] % ti->block_elems != 0)
        fail(MW_ERR_INVALID_ARGUMENT, where + ": ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " +
                                          ti->name + " block size " + std::to_string(ti->block_elems));
    overflow = __builtin_mul_overflow(ne[0] / ti->block_elems, (uint64_t)ti->block_bytes, &need);
    for (size_t d = 1; d < ne.size(); d++) overflow = overflow || __builtin_mul_overflow(need, ne[d], &need);
    if (overflow || need != n_bytes)
        fail(MW_ERR_INVALID_ARGUMENT, where + ": " + std::to_string(n_bytes) + " bytes of data given, the shape needs " +
                                          (overflow ? std::string("more than 2^64") : std::to_string(need)));
    if (n_bytes && !data) fail(MW_ERR_INVALID_ARGUMENT, where + ": data is NULL");
    t.data.assign((const uint8_t*)data, (const uint8_t*)data + n_bytes);
    tensors_.push_back(std::move(t));
}

template <class Sink> void Writer::emit(Sink& sink) const {
    std::vector<uint8_t> head;
    const bool write_alignment = alignment_ != kDefaultAlignment;
    uint64_t n_kv = write_alignment ? 1 : 0;
    for (const Kv& kv : kvs_)
        if (kv.key != kAlignmentKey) n_kv++;

    head.insert(head.end(), {'G', 'G', 'U', 'F'});
    put<uint32_t>(head, 3);
    put<uint64_t>(head, tensors_.size());
    put<uint64_t>(head, n_kv);
    if (write_alignment) {
        put_str(head, kAlignmentKey);
        put<uint32_t>(head, (uint32_t)ValueType::UINT32);
        put<uint32_t>(head, (uint32_t)alignment_);
    }
    for (const Kv& kv : kvs_) {
        if (kv.key == kAlignmentKey) continue;  // the constructor's alignment is the one that holds
        put_str(head, kv.key);
        put<uint32_t>(head, (uint32_t)kv.type);
        head.insert(head.end(), kv.bytes.begin(), kv.bytes.end());
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
        put_str(head, t.name);
        put<uint32_t>(head, t.n_dims);
        for (uint32_t d = 0; d < t.n_dims; d++) put<uint64_t>(head, t.ne[d]);
        put<uint32_t>(head, (uint32_t)t.type);
        put<uint64_t>(head, offset);
        offset += t.data.size() + pad_to(t.data.size(), alignment_);
    }
    head.resize(head.size() + pad_to(head.size(), alignment_), 0);
    sink(head.data(), head.size());

    const std::vector<uint8_t> zeros((size_t)alignment_, 0);
    for (const Tensor& t : tensors_) {
        sink(t.data.data(), t.data.size());
        sink(zeros.data(), (size_t)pad_to(t.data.size(), alignment_));
    }
}

std::vector<uint8_t> Writer::serialize() const {
    VectorSink sink;
    emit(sink);
    return std::move(sink.out);
}

void Writer::write(const std::string& path) const {
    // A unique temporary name in the same directory, so rename() is atomic.
    static std::atomic<unsigned> counter{0};
    const std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) fail(MW_ERR_IO, "cannot create '" + tmp + "': " + std::strerror(errno));
    bool closed = false;
    try {
        FdSink sink{fd, tmp};
        emit(sink);
        if (fsync(fd) != 0) fail(MW_ERR_IO, "cannot sync '" + tmp + "': " + std::strerror(errno));
        const int rc = ::close(fd);
        closed = true;
        if (rc != 0) fail(MW_ERR_IO, "cannot close '" + tmp + "': " + std::strerror(errno));
    } catch (...) {
        if (!closed) ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        fail(MW_ERR_IO, "cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(e));
    }
}

}  // namespace mw::gguf
