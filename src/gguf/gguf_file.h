// gguf::File: a validated, read-only view of a GGUF (v2 or v3) file.
//
// The whole file is mmap'ed read-only and tensor data is used in place. Every
// count, string length, array length, dimension, tensor type, offset,
// alignment and data size is checked against the file before anything reads
// through it; a violation throws mw::Error(MW_ERR_FORMAT) whose message names
// the field and its byte offset. An unreadable path throws MW_ERR_IO.
// The limits are listed at the top of gguf_file.cpp and in docs/RELIABILITY.md;
// every count is bounded by the bytes left in the file, so what parsing
// allocates is bounded by a small multiple of the file size. The known
// llama.cpp parser CVE patterns are regression files in fuzz/corpus/gguf/.
#pragma once

#include "gguf/tensor_type.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mw::gguf {

enum class ValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
    BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

const char* value_type_name(ValueType t);

// One metadata value. Scalars are decoded; arrays keep a pointer into the
// mapping (elements are little-endian, unaligned: read them with the accessors).
struct Value {
    ValueType type = ValueType::UINT8;
    std::string_view key;  // the key, into the image (for messages)
    uint64_t offset = 0;   // byte offset of this key/value record (file order, messages)
    // scalars
    uint64_t u = 0;     // unsigned ints and bool
    int64_t i = 0;      // signed ints (also set for unsigned ones that fit)
    double f = 0;       // floats (also set for every integer type)
    std::string_view str;  // STRING
    // arrays
    ValueType elem_type = ValueType::UINT8;
    uint64_t count = 0;
    const uint8_t* elems = nullptr;        // fixed-size element arrays: raw bytes
    std::vector<uint32_t> str_offsets;     // STRING arrays: where string i starts, from elems
                                           // (4 bytes a string instead of a view: vocabularies are big)

    bool is_array() const { return type == ValueType::ARRAY; }
    bool is_integer() const;
    bool is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }
    // Array element i as a number / string. Throws MW_ERR_FORMAT on a type mismatch.
    int64_t int_at(uint64_t idx) const;
    double float_at(uint64_t idx) const;
    std::string_view str_at(uint64_t idx) const;
};

struct TensorInfo {
    std::string name;
    TensorType type;
    uint32_t n_dims = 0;
    uint64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (contiguous) dimension
    uint64_t n_elements = 0;
    uint64_t offset = 0;            // from the start of the data section
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr;  // into the mapping
    uint64_t info_offset = 0;       // byte offset of this tensor's info record (for messages)
};

// How the kernel should read the mapping ahead (madvise).
enum class AccessHint { Default, Random, Sequential, WillNeed };

struct OpenOptions {
    bool prefault = false;                   // MAP_POPULATE: read every page at open
    bool lock = false;                       // mlock the whole mapping; MW_ERR_IO when RLIMIT_MEMLOCK forbids it
    AccessHint access = AccessHint::Default; // MADV_RANDOM / MADV_SEQUENTIAL / MADV_WILLNEED
};

class File {
public:
    // Maps and validates. Throws mw::Error (MW_ERR_IO, MW_ERR_FORMAT, MW_ERR_UNSUPPORTED).
    // The access hint is applied right after mapping; the lock after validation
    // (a malformed file fails before its pages are all read).
    static std::unique_ptr<File> open(const std::string& path, const OpenOptions& opts = {});
    // Validates a GGUF image already in memory (not copied; must outlive the File).
    static std::unique_ptr<File> from_memory(const uint8_t* data, size_t size);
    ~File();
    File(const File&) = delete;
    File& operator=(const File&) = delete;

    uint32_t version() const { return version_; }
    uint64_t file_size() const { return size_; }
    const uint8_t* base() const { return base_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
    const std::string& path() const { return path_; }

    // Metadata
    const std::map<std::string, Value, std::less<>>& metadata() const { return kv_; }
    const Value* find(std::string_view key) const;  // nullptr if absent
    // Typed getters: absent -> fallback; present with the wrong type -> MW_ERR_FORMAT.
    std::string_view get_string(std::string_view key, std::string_view fallback = {}) const;
    uint64_t get_uint(std::string_view key, uint64_t fallback) const;
    int64_t get_int(std::string_view key, int64_t fallback) const;
    double get_float(std::string_view key, double fallback) const;
    bool get_bool(std::string_view key, bool fallback) const;
    // Required variants: absent -> MW_ERR_FORMAT "missing metadata key ...".
    std::string_view require_string(std::string_view key) const;
    uint64_t require_uint(std::string_view key) const;

    // Tensors
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;  // nullptr if absent

private:
    File() = default;
    void parse();

    std::string path_;
    const uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
    bool mapped_ = false;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::map<std::string, Value, std::less<>> kv_;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace mw::gguf
