#include "kv/kv_cache.h"

#include "base/error.h"
#include "base/half.h"
#include "memory/process_memory.h"

#include <cmath>
#include <cstring>
#include <sys/mman.h>

namespace mw {

namespace {
constexpr int32_t kQ8Block = 32;
constexpr size_t kQ8BlockBytes = 2 + kQ8Block;  // F16 scale + 32 int8
}  // namespace

size_t KvCache::row_bytes_for(KvType type, int32_t kv_dim) {
    switch (type) {
        case KvType::F16: return (size_t)kv_dim * 2;
        case KvType::F32: return (size_t)kv_dim * 4;
        case KvType::Q8_0: return (size_t)(kv_dim / kQ8Block) * kQ8BlockBytes;
    }
    return 0;
}

size_t KvCache::block_bytes_for(const ModelConfig& config, KvType type, int32_t block_tokens) {
    size_t bytes = 0;
    for (const auto& l : config.layers) {
        const int32_t d = l.n_head_kv * config.head_dim;
        if (type == KvType::Q8_0 && d % kQ8Block != 0)
            fail(MW_ERR_UNSUPPORTED, "Q8_0 KV cache needs K/V rows of a multiple of 32 elements; this model has " +
                                         std::to_string(d));
        bytes += 2 * (size_t)block_tokens * row_bytes_for(type, d);
    }
    return bytes;
}

KvCache::KvCache(const ModelConfig& config, KvType type, int32_t block_tokens, int32_t n_blocks)
    : type_(type), block_tokens_(block_tokens), n_blocks_(n_blocks) {
    if (block_tokens <= 0 || n_blocks <= 0) fail(MW_ERR_INVALID_ARGUMENT, "KV cache needs at least one block");
    block_bytes_ = block_bytes_for(config, type, block_tokens);
    size_t off = 0;
    for (const auto& l : config.layers) {
        const int32_t d = l.n_head_kv * config.head_dim;
        kv_dim_.push_back(d);
        row_bytes_.push_back(row_bytes_for(type, d));
        layer_offset_.push_back(off);
        off += 2 * (size_t)block_tokens * row_bytes_.back();
    }
    // One anonymous mapping for the pool: page-aligned, returned to the OS on
    // destroy, and untouched pages cost nothing until a block is first written.
    const size_t total = total_bytes();
    void* p = mmap(nullptr, total ? total : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail(MW_ERR_OUT_OF_MEMORY, "cannot reserve " + std::to_string(total) + " bytes for the KV cache");
    base_ = (uint8_t*)p;
    const size_t nb = (size_t)n_blocks;
    free_.reserve(nb);
    for (int32_t b = n_blocks - 1; b >= 0; b--) free_.push_back(b);
    ref_.assign(nb, 0);
    published_.assign(nb, 0);
    ready_.assign(nb, 0);
    hash_.assign(nb, 0);
    parent_.assign(nb, 0);
    tokens_.assign(nb * (size_t)block_tokens, 0);
    prev_.assign(nb, -1);
    next_.assign(nb, -1);
    index_.reserve(nb);
    n_free_.store(n_blocks);
}

KvCache::~KvCache() {
    if (base_) munmap(base_, total_bytes() ? total_bytes() : 1);
}

size_t KvCache::resident_bytes() const { return memory::resident_bytes(base_, total_bytes()); }

void KvCache::lru_remove(int32_t b) {
    const int32_t p = prev_[(size_t)b], n = next_[(size_t)b];
    (p >= 0 ? next_[(size_t)p] : lru_head_) = n;
    (n >= 0 ? prev_[(size_t)n] : lru_tail_) = p;
    prev_[(size_t)b] = next_[(size_t)b] = -1;
    n_cached_.fetch_sub(1, std::memory_order_relaxed);
}

void KvCache::lru_push_back(int32_t b) {
    prev_[(size_t)b] = lru_tail_;
    next_[(size_t)b] = -1;
    (lru_tail_ >= 0 ? next_[(size_t)lru_tail_] : lru_head_) = b;
    lru_tail_ = b;
    n_cached_.fetch_add(1, std::memory_order_relaxed);
}

void KvCache::unpublish(int32_t b) {
    if (!published_[(size_t)b]) return;
    auto it = index_.find(hash_[(size_t)b]);
    if (it != index_.end() && it->second == b) index_.erase(it);
    published_[(size_t)b] = 0;
    ready_[(size_t)b] = 0;
}

int32_t KvCache::alloc_block() {
    int32_t b;
    if (!free_.empty()) {
        b = free_.back();
        free_.pop_back();
        n_free_.fetch_sub(1, std::memory_order_relaxed);
    } else if (lru_head_ >= 0) {  // reclaim the least recently used cached prefix block
        b = lru_head_;
        lru_remove(b);
        unpublish(b);
    } else {
        return -1;
    }
    ref_[(size_t)b] = 1;
    return b;
}

void KvCache::retain(int32_t b) {
    if (ref_[(size_t)b]++ == 0) {
        if (!ready_[(size_t)b]) fail(MW_ERR_INTERNAL, "retain of a free KV block");
        lru_remove(b);
    }
}

void KvCache::release_block(int32_t b) {
    if (ref_[(size_t)b] <= 0) fail(MW_ERR_INTERNAL, "release of an unowned KV block");
    if (--ref_[(size_t)b] > 0) return;
    unclaim(b);  // never computed: nothing to keep
    if (published_[(size_t)b]) {
        lru_push_back(b);
    } else {
        free_.push_back(b);
        n_free_.fetch_add(1, std::memory_order_relaxed);
    }
}

void KvCache::copy_block(int32_t dst, int32_t src) { std::memcpy(block_data(dst), block_data(src), block_bytes_); }

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
    for (int32_t b : t.blocks) release_block(b);
    t.blocks.clear();
    t.n_tokens = 0;
}

uint64_t KvCache::chain_hash(uint64_t parent, const int32_t* tokens, int32_t n) {
    // FNV-1a over the parent hash and the tokens, then a final mix; lookups
    // compare the tokens too, so a collision costs a miss, never wrong K/V.
    uint64_t h = 0xcbf29ce484222325ull ^ parent;
    auto mix = [&](uint32_t v) {
        for (int i = 0; i < 4; i++) {
            h ^= (v >> (8 * i)) & 0xff;
            h *= 0x100000001b3ull;
        }
    };
    for (int32_t i = 0; i < n; i++) mix((uint32_t)tokens[i]);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

int32_t KvCache::lookup(uint64_t hash, uint64_t parent, const int32_t* tokens) const {
    auto it = index_.find(hash);
    if (it == index_.end()) return -1;
    const int32_t b = it->second;
    if (parent_[(size_t)b] != parent) return -1;
    if (std::memcmp(&tokens_[(size_t)b * block_tokens_], tokens, (size_t)block_tokens_ * sizeof(int32_t)) != 0)
        return -1;
    return b;
}

void KvCache::claim(int32_t b, uint64_t hash, uint64_t parent, const int32_t* tokens) {
    if (published_[(size_t)b] || index_.count(hash)) return;
    published_[(size_t)b] = 1;
    ready_[(size_t)b] = 0;
    hash_[(size_t)b] = hash;
    parent_[(size_t)b] = parent;
    std::memcpy(&tokens_[(size_t)b * block_tokens_], tokens, (size_t)block_tokens_ * sizeof(int32_t));
    index_.emplace(hash, b);
}

void KvCache::publish(int32_t b, uint64_t hash, uint64_t parent, const int32_t* tokens) {
    claim(b, hash, parent, tokens);
    if (published_[(size_t)b] && hash_[(size_t)b] == hash) ready_[(size_t)b] = 1;
}

void KvCache::unclaim(int32_t b) {
    if (published_[(size_t)b] && !ready_[(size_t)b]) unpublish(b);
}

void KvCache::quantize_q8_0(const float* src, uint8_t* dst, int32_t n) {
    for (int32_t b0 = 0; b0 < n; b0 += kQ8Block, dst += kQ8BlockBytes) {
        float amax = 0;
        for (int32_t i = 0; i < kQ8Block; i++) amax = std::max(amax, std::fabs(src[b0 + i]));
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        const uint16_t dh = f32_to_f16(d);
        std::memcpy(dst, &dh, 2);
        int8_t* q = (int8_t*)(dst + 2);
        for (int32_t i = 0; i < kQ8Block; i++) q[i] = (int8_t)std::lround(src[b0 + i] * id);
    }
}

void KvCache::dequantize_q8_0(const uint8_t* row, int32_t start, int32_t n, float* out) {
    for (int32_t i = 0; i < n;) {
        const int32_t e = start + i;
        const uint8_t* blk = row + (size_t)(e / kQ8Block) * kQ8BlockBytes;
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        const float d = f16_to_f32(dh);
        const int8_t* q = (const int8_t*)(blk + 2);
        const int32_t end = std::min(n, i + (kQ8Block - e % kQ8Block));
        for (; i < end; i++) out[i] = d * (float)q[(start + i) % kQ8Block];
    }
}

}  // namespace mw
