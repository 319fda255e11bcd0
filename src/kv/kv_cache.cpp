#include "kv/kv_cache.h"

#include "base/error.h"
#include "memory/process_memory.h"

#include <sys/mman.h>

namespace mw {

size_t KvCache::block_bytes_for(const ModelConfig& config, KvType type, int32_t block_tokens) {
    const size_t eb = type == KvType::F16 ? 2 : 4;
    return (size_t)config.kv_elements_per_token() * (size_t)block_tokens * eb;
}

KvCache::KvCache(const ModelConfig& config, KvType type, int32_t block_tokens, int32_t n_blocks)
    : type_(type), block_tokens_(block_tokens), n_blocks_(n_blocks) {
    if (block_tokens <= 0 || n_blocks <= 0) fail(MW_ERR_INVALID_ARGUMENT, "KV cache needs at least one block");
    size_t off = 0;
    for (const auto& l : config.layers) {
        const int32_t d = l.n_head_kv * config.head_dim;
        kv_dim_.push_back(d);
        layer_offset_.push_back(off);
        off += 2 * (size_t)block_tokens * (size_t)d * elem_bytes();
    }
    block_bytes_ = off;
    // One anonymous mapping for the pool: page-aligned, returned to the OS on
    // destroy, and untouched pages cost nothing until a block is first written.
    const size_t total = total_bytes();
    void* p = mmap(nullptr, total ? total : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail(MW_ERR_OUT_OF_MEMORY, "cannot reserve " + std::to_string(total) + " bytes for the KV cache");
    base_ = (uint8_t*)p;
    free_.reserve((size_t)n_blocks);
    for (int32_t b = n_blocks - 1; b >= 0; b--) free_.push_back(b);
}

KvCache::~KvCache() {
    if (base_) munmap(base_, total_bytes() ? total_bytes() : 1);
}

size_t KvCache::resident_bytes() const { return memory::resident_bytes(base_, total_bytes()); }

int32_t KvCache::alloc_block() {
    if (free_.empty()) return -1;
    const int32_t b = free_.back();
    free_.pop_back();
    return b;
}

void KvCache::free_block(int32_t block) { free_.push_back(block); }

bool KvCache::reserve(BlockTable& t, int32_t n_tokens) {
    const size_t need = (size_t)((n_tokens + block_tokens_ - 1) / block_tokens_);
    while (t.blocks.size() < need) {
        const int32_t b = alloc_block();
        if (b < 0) return false;
        t.blocks.push_back(b);
    }
    return true;
}

void KvCache::release(BlockTable& t) {
    for (int32_t b : t.blocks) free_block(b);
    t.blocks.clear();
    t.n_tokens = 0;
}

}  // namespace mw
