// KvCache: the KV block pool. One allocation holds every sequence's keys and
// values, divided into fixed-size blocks of block_tokens tokens that cover all
// layers. A sequence addresses its tokens through a BlockTable (position p
// lives in block blocks[p / B], slot p % B).
//
// Block layout (layer by layer): K[block_tokens][row] then V[block_tokens][row],
// a row being kv_dim(l) elements of F16, F32, or Q8_0 (blocks of 32 int8 with
// an F16 scale, so kv_dim must be a multiple of 32).
//
// Blocks are reference counted: a full prompt block can be shared read-only by
// every sequence whose prompt starts with the same tokens. Such a block is
// published in the prefix index under a hash chain (parent block's hash, the
// block's tokens); when its last owner lets go it stays cached, in LRU order,
// and is reclaimed only when the pool has no free block left. A block's state:
//   free    ref 0, not published       (on the free stack)
//   cached  ref 0, published, ready    (on the LRU list, findable by lookup)
//   used    ref >= 1, published (claimed or ready) or not
// Engine thread only, except the counters (atomics) read by stats.
#pragma once

#include "model/model_config.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace mw {

enum class KvType { F16, F32, Q8_0 };

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

    // Bytes one block takes for a model and type (for planning). Throws
    // MW_ERR_UNSUPPORTED for Q8_0 when a layer's kv_dim is not a multiple of 32.
    static size_t block_bytes_for(const ModelConfig& config, KvType type, int32_t block_tokens);
    // Bytes of one K (or V) row of kv_dim elements.
    static size_t row_bytes_for(KvType type, int32_t kv_dim);

    KvType type() const { return type_; }
    int32_t block_tokens() const { return block_tokens_; }
    int32_t n_blocks() const { return n_blocks_; }
    int32_t n_free() const { return n_free_.load(std::memory_order_relaxed); }
    int32_t n_cached() const { return n_cached_.load(std::memory_order_relaxed); }
    int32_t n_used() const { return n_blocks_ - n_free() - n_cached(); }
    int32_t n_available() const { return n_free() + n_cached(); }  // blocks alloc_block can return
    size_t block_bytes() const { return block_bytes_; }
    size_t total_bytes() const { return (size_t)n_blocks_ * block_bytes_; }
    size_t resident_bytes() const;  // pool pages in RAM (blocks touched so far)
    int32_t kv_dim(int32_t layer) const { return kv_dim_[(size_t)layer]; }

    // A block for the caller (ref 1): a free one, else the least recently used
    // cached one (unpublished first). -1 when every block is in use.
    int32_t alloc_block();
    void retain(int32_t block);   // ref + 1 (a cached block becomes used)
    void release_block(int32_t block);  // ref - 1; at 0: cached if published, else free
    int32_t ref_count(int32_t block) const { return ref_[(size_t)block]; }
    // Copies a block's contents (every layer's K and V) onto another.
    void copy_block(int32_t dst, int32_t src);
    uint8_t* block_data(int32_t block) const { return base_ + (size_t)block * block_bytes_; }

    // Grows table to cover n_tokens positions with new blocks. Returns false
    // (table holding whatever did fit) when the pool runs out.
    bool reserve(BlockTable& table, int32_t n_tokens);
    // Releases every block of the table and empties it.
    void release(BlockTable& table);

    // ---- prefix index ----
    // A full prompt block is indexed under its chain hash as soon as a
    // sequence claims it (admission), so that sequences arriving while it is
    // being computed share it too; it becomes ready once its K/V are written.
    // Hash of a full block given its parent's hash (0 for the first block).
    static uint64_t chain_hash(uint64_t parent, const int32_t* tokens, int32_t n);
    // The indexed block with this chain (tokens compared, not just the hash),
    // ready or not, or -1. Does not retain it.
    int32_t lookup(uint64_t hash, uint64_t parent, const int32_t* tokens) const;
    // Indexes a block its owner is about to compute. No-op when the chain is
    // already indexed (by another block) or the block already is.
    void claim(int32_t block, uint64_t hash, uint64_t parent, const int32_t* tokens);
    // Marks a block's K/V complete: ready (indexing it first when the chain is free).
    void publish(int32_t block, uint64_t hash, uint64_t parent, const int32_t* tokens);
    // Its claimer will not compute it after all: drop a not-ready block from the index.
    void unclaim(int32_t block);
    bool ready(int32_t block) const { return ready_[(size_t)block] != 0; }
    // Indexed but not yet computed: some sequence is computing it.
    bool pending(int32_t block) const { return published_[(size_t)block] && !ready_[(size_t)block]; }

    // Row of K (or V) for a position of a sequence in a layer.
    uint8_t* k_row(const BlockTable& t, int32_t layer, int32_t pos) const { return row(t, layer, pos, 0); }
    uint8_t* v_row(const BlockTable& t, int32_t layer, int32_t pos) const { return row(t, layer, pos, 1); }
    size_t row_bytes(int32_t layer) const { return row_bytes_[(size_t)layer]; }

    // Q8_0 rows: quantize a row of kv_dim floats, dequantize n elements from
    // element `start` (any offset; used for one head's slice).
    static void quantize_q8_0(const float* src, uint8_t* dst, int32_t n);
    static void dequantize_q8_0(const uint8_t* row, int32_t start, int32_t n, float* out);

private:
    uint8_t* row(const BlockTable& t, int32_t layer, int32_t pos, int which) const {
        const int32_t b = t.blocks[(size_t)(pos / block_tokens_)];
        const int32_t slot = pos % block_tokens_;
        const size_t rb = row_bytes_[(size_t)layer];
        return base_ + (size_t)b * block_bytes_ + layer_offset_[(size_t)layer] +
               ((size_t)which * block_tokens_ + slot) * rb;
    }
    void lru_remove(int32_t b);
    void lru_push_back(int32_t b);
    void unpublish(int32_t b);

    KvType type_;
    int32_t block_tokens_;
    int32_t n_blocks_;
    size_t block_bytes_ = 0;
    std::vector<int32_t> kv_dim_;
    std::vector<size_t> row_bytes_;
    std::vector<size_t> layer_offset_;
    uint8_t* base_ = nullptr;

    std::vector<int32_t> free_;  // stack of free blocks
    std::vector<int32_t> ref_;
    // Publication: hash, parent hash and tokens of each published block.
    std::vector<uint8_t> published_;  // in the index
    std::vector<uint8_t> ready_;      // in the index and computed
    std::vector<uint64_t> hash_, parent_;
    std::vector<int32_t> tokens_;  // n_blocks * block_tokens
    std::unordered_map<uint64_t, int32_t> index_;
    // LRU list of cached blocks (intrusive, by block id): head is the oldest.
    std::vector<int32_t> prev_, next_;
    int32_t lru_head_ = -1, lru_tail_ = -1;
    std::atomic<int32_t> n_free_{0}, n_cached_{0};
};

}  // namespace mw
