// The table of tensor types memwise knows, with their block geometry (the
// ggml block structs: sizes are facts of the file format, not choices).
#include "gguf/tensor_type.h"

namespace mw::gguf {

namespace {

struct Entry {
    uint32_t id;
    TensorTypeInfo info;
};

// Q8_1 and Q8_K are activation formats: the kernels make them, weight files
// should not carry them, so memwise does not compute with them as weights.
constexpr Entry kTypes[] = {
    {(uint32_t)TensorType::F32, {"F32", 1, 4, true}},
    {(uint32_t)TensorType::F16, {"F16", 1, 2, true}},
    {(uint32_t)TensorType::Q4_0, {"Q4_0", 32, 18, true}},    // f16 d + 16 nibble bytes
    {(uint32_t)TensorType::Q4_1, {"Q4_1", 32, 20, true}},    // f16 d, m + 16
    {(uint32_t)TensorType::Q5_0, {"Q5_0", 32, 22, true}},   // f16 d + 4 high bits + 16
    {(uint32_t)TensorType::Q5_1, {"Q5_1", 32, 24, true}},   // f16 d, m + 4 + 16
    {(uint32_t)TensorType::Q8_0, {"Q8_0", 32, 34, true}},    // f16 d + 32
    {(uint32_t)TensorType::Q8_1, {"Q8_1", 32, 36, false}},   // f16 d, s + 32
    {(uint32_t)TensorType::Q2_K, {"Q2_K", 256, 84, false}},
    {(uint32_t)TensorType::Q3_K, {"Q3_K", 256, 110, false}},
    {(uint32_t)TensorType::Q4_K, {"Q4_K", 256, 144, true}},  // f16 d, dmin + 12 scales + 128
    {(uint32_t)TensorType::Q5_K, {"Q5_K", 256, 176, true}},  // f16 d, dmin + 12 + 32 + 128
    {(uint32_t)TensorType::Q6_K, {"Q6_K", 256, 210, true}},  // 128 + 64 + 16 scales + f16 d
    {(uint32_t)TensorType::Q8_K, {"Q8_K", 256, 292, false}}, // f32 d + 256 + 16 int16 sums
    {(uint32_t)TensorType::BF16, {"BF16", 1, 2, true}},
};

}  // namespace

const TensorTypeInfo* tensor_type_info(uint32_t type_id) {
    for (const Entry& e : kTypes)
        if (e.id == type_id) return &e.info;
    return nullptr;
}

}  // namespace mw::gguf
