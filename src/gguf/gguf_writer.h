// gguf::Writer: builds a GGUF v3 file (metadata, tensor infos, aligned data).
// Used by tests to make synthetic models and by the quantize/prune tools.
#pragma once

#include "gguf/gguf_file.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mw::gguf {

class Writer {
public:
    explicit Writer(uint64_t alignment = 32);

    void set_u32(const std::string& key, uint32_t v);
    void set_i32(const std::string& key, int32_t v);
    void set_u64(const std::string& key, uint64_t v);
    void set_f32(const std::string& key, float v);
    void set_bool(const std::string& key, bool v);
    void set_string(const std::string& key, const std::string& v);
    void set_array_i32(const std::string& key, const std::vector<int32_t>& v);
    void set_array_u32(const std::string& key, const std::vector<uint32_t>& v);
    void set_array_f32(const std::string& key, const std::vector<float>& v);
    void set_array_string(const std::string& key, const std::vector<std::string>& v);
    // Copies every metadata key of another file (for tools that rewrite a model).
    void copy_metadata(const File& src);

    // ne[0] innermost. data must hold exactly the bytes the type and shape need
    // (checked; MW_ERR_INVALID_ARGUMENT otherwise). The bytes are copied.
    void add_tensor(const std::string& name, TensorType type, const std::vector<uint64_t>& ne,
                    const void* data, size_t n_bytes);

    // The whole file image.
    std::vector<uint8_t> serialize() const;
    // Writes to path via a temporary file and rename (never a partial file).
    // Throws MW_ERR_IO.
    void write(const std::string& path) const;

private:
    struct Kv {
        std::string key;
        ValueType type;
        std::vector<uint8_t> bytes;  // the value as serialized after its type
    };
    struct Tensor {
        std::string name;
        TensorType type;
        uint32_t n_dims;
        uint64_t ne[4];
        std::vector<uint8_t> data;
    };
    void set_raw(const std::string& key, ValueType type, std::vector<uint8_t> bytes);
    template <class Sink> void emit(Sink& sink) const;
    std::vector<Kv> kvs_;
    std::vector<Tensor> tensors_;
    uint64_t alignment_;
};

}  // namespace mw::gguf
