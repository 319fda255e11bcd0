// Tensor element types as GGUF numbers them (the ggml type ids), with the
// block geometry the reader needs to check data sizes. Block layouts and
// arithmetic live in src/quant/.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mw::gguf {

enum class TensorType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,
};

struct TensorTypeInfo {
    const char* name;      // "Q4_K"
    uint32_t block_elems;  // elements per block (1 for F32/F16/BF16)
    uint32_t block_bytes;  // bytes per block
    bool supported;        // memwise can compute with it
};

// Returns nullptr for an id memwise does not know at all.
const TensorTypeInfo* tensor_type_info(uint32_t type_id);

// Bytes of a row of n elements; n must be a multiple of block_elems.
inline size_t row_bytes(const TensorTypeInfo& t, uint64_t n) { return (size_t)(n / t.block_elems) * t.block_bytes; }

}  // namespace mw::gguf
