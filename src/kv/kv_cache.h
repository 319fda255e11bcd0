// KvCache: one allocation holding every sequence's keys and values, divided
// into fixed-size blocks of block_tokens tokens that cover all layers.
//
// Block layout (layer by layer): K[block_tokens][kv_dim(l)] then
// V[block_tokens][kv_dim(l)], elements F16 or F32. A sequence addresses its
// tokens through a BlockTable (position p lives in block blocks[p / B], slot p % B).
//
// This is the block pool; the free list here is a simple stack. Prefix sharing,
// copy-on-write and eviction policy build on it (src/kv/ grows with them).
#pragma once

#include "model/model_config.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mw {

enum class KvType { F16, F32 };

struct BlockTable {
    std::vector<int32_t> blocks;
    int32_t n_tokens = 0;  // positions [0, n_tokens) hold valid K/V
};

class KvCache {
public:
    KvCache(const ModelConfig& config, KvType type, int32_t block_tokens, int32_t n_blocks);
    ~KvCache();
    KvCache(const KvCache&) = delete;
    KvCache& operator=(const KvCache&) = delete;

    // Bytes one block takes for a model and type (for planning).
    static size_t block_bytes_for(const ModelConfig& config, KvType type, int32_t block_tokens);

    KvType type() const { return type_; }
    size_t elem_bytes() const { return type_ == KvType::F16 ? 2 : 4; }
    int32_t block_tokens() const { return block_tokens_; }
    int32_t n_blocks() const { return n_blocks_; }
    int32_t n_free() const { return (int32_t)free_.size(); }
    size_t block_bytes() const { return block_bytes_; }
    size_t total_bytes() const { return (size_t)n_blocks_ * block_bytes_; }
    size_t resident_bytes() const;  // pool pages in RAM (blocks touched so far)
    int32_t kv_dim(int32_t layer) const { return kv_dim_[(size_t)layer]; }

    // -1 when the pool is empty.
    int32_t alloc_block();
    void free_block(int32_t block);
    // Grows table to hold n_tokens positions. Returns false (table unchanged
    // beyond what fit) when the pool runs out.
    bool reserve(BlockTable& table, int32_t n_tokens);
    void release(BlockTable& table);

    // First byte of a block (block_bytes() of it: every layer's K and V).
    uint8_t* block_data(int32_t block) const { return base_ + (size_t)block * block_bytes_; }

    // Row of K (or V) for a position of a sequence in a layer.
    uint8_t* k_row(const BlockTable& t, int32_t layer, int32_t pos) const { return row(t, layer, pos, 0); }
    uint8_t* v_row(const BlockTable& t, int32_t layer, int32_t pos) const { return row(t, layer, pos, 1); }

private:
    uint8_t* row(const BlockTable& t, int32_t layer, int32_t pos, int which) const {
        const int32_t b = t.blocks[(size_t)(pos / block_tokens_)];
        const int32_t slot = pos % block_tokens_;
        return base_ + (size_t)b * block_bytes_ + layer_offset_[(size_t)layer] +
               ((size_t)which * block_tokens_ + slot) * (size_t)kv_dim_[(size_t)layer] * elem_bytes();
    }

    KvType type_;
    int32_t block_tokens_;
    int32_t n_blocks_;
    size_t block_bytes_ = 0;
    std::vector<int32_t> kv_dim_;
    std::vector<size_t> layer_offset_;
    std::vector<int32_t> free_;
    uint8_t* base_ = nullptr;
};

}  // namespace mw
