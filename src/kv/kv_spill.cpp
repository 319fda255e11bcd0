#include "kv/kv_spill.h"

#include "base/error.h"

#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace mw {

namespace {

constexpr char kMagic[8] = {'M', 'W', 'S', 'P', 'I', 'L', 'L', '1'};

struct Header {
    char magic[8];
    uint64_t n_blocks;
    uint64_t block_bytes;
    uint64_t compressed_bytes;
};

struct FileCloser {
    void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

[[noreturn]] void io_fail(const std::string& what, const std::string& path) {
    fail(MW_ERR_IO, what + " spill file " + path + (errno ? std::string(": ") + std::strerror(errno) : ""));
}

}  // namespace

size_t spill_blocks(const KvCache& kv, const std::vector<int32_t>& blocks, const std::string& path,
                    const KvBlockReader& read) {
    const size_t raw_bytes = blocks.size() * kv.block_bytes();
    std::vector<uint8_t> raw(raw_bytes);
    for (size_t i = 0; i < blocks.size(); i++) {
        uint8_t* out = raw.data() + i * kv.block_bytes();
        if (read) read(blocks[i], out);
        else std::memcpy(out, kv.block_data(blocks[i]), kv.block_bytes());
    }
    std::vector<uint8_t> packed(ZSTD_compressBound(raw_bytes));
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    if (!cctx) fail(MW_ERR_OUT_OF_MEMORY, "cannot create a zstd context for a spill file");
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);  // fast: spilling is on the step's path
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    const size_t n = ZSTD_compress2(cctx, packed.data(), packed.size(), raw.data(), raw_bytes);
    ZSTD_freeCCtx(cctx);
    if (ZSTD_isError(n)) fail(MW_ERR_INTERNAL, std::string("zstd compression of a spill file failed: ") + ZSTD_getErrorName(n));

    Header h;
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.n_blocks = blocks.size();
    h.block_bytes = kv.block_bytes();
    h.compressed_bytes = n;
    errno = 0;
    FilePtr f(std::fopen(path.c_str(), "wb"));
    if (!f) io_fail("cannot create", path);
    const bool ok = std::fwrite(&h, sizeof h, 1, f.get()) == 1 && std::fwrite(packed.data(), 1, n, f.get()) == n &&
                    std::fflush(f.get()) == 0;
    const bool closed = std::fclose(f.release()) == 0;
    if (!ok || !closed) {
        std::remove(path.c_str());
        io_fail("cannot write", path);
    }
    return sizeof h + n;
}

void restore_blocks(KvCache& kv, const std::vector<int32_t>& blocks, const std::string& path,
                    const KvBlockWriter& write) {
    errno = 0;
    FilePtr f(std::fopen(path.c_str(), "rb"));
    if (!f) io_fail("cannot open", path);
    Header h;
    if (std::fread(&h, sizeof h, 1, f.get()) != 1) io_fail("short", path);
    errno = 0;
    if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.n_blocks != blocks.size() ||
        h.block_bytes != kv.block_bytes() || h.compressed_bytes > ((uint64_t)1 << 40))
        io_fail("unexpected header in", path);
    std::vector<uint8_t> packed((size_t)h.compressed_bytes + 1);
    // One byte more than stated: a longer file is as untrustworthy as a shorter one.
    if (std::fread(packed.data(), 1, packed.size(), f.get()) != h.compressed_bytes) io_fail("wrong length of", path);
    const size_t raw_bytes = blocks.size() * kv.block_bytes();
    if (ZSTD_getFrameContentSize(packed.data(), (size_t)h.compressed_bytes) != raw_bytes) io_fail("wrong content size in", path);
    std::vector<uint8_t> raw(raw_bytes);
    const size_t n = ZSTD_decompress(raw.data(), raw_bytes, packed.data(), (size_t)h.compressed_bytes);
    if (ZSTD_isError(n) || n != raw_bytes) io_fail("corrupt", path);
    for (size_t i = 0; i < blocks.size(); i++) {
        const uint8_t* in = raw.data() + i * kv.block_bytes();
        if (write) write(blocks[i], in);
        else std::memcpy(kv.block_data(blocks[i]), in, kv.block_bytes());
    }
}

}  // namespace mw
