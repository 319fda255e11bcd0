// Spill files: the K/V of a preempted sequence's blocks, zstd-compressed, so
// that it resumes without recomputing them. A file is trusted only whole: its
// header states the block count, block size and compressed size, and the zstd
// frame carries a checksum; anything else is an MW_ERR_IO (the caller then
// recomputes instead).
#pragma once

#include "kv/kv_cache.h"

#include <functional>
#include <string>
#include <vector>

namespace mw {

// Where a block's bytes (kv.block_bytes() of them) are read from and written
// to: the host pool when empty, else the backend's copy (a CUDA engine keeps
// its K/V on the device, see StepExecutor::read_kv_block/write_kv_block).
using KvBlockReader = std::function<void(int32_t block, void* out)>;
using KvBlockWriter = std::function<void(int32_t block, const void* in)>;

// Writes the contents of `blocks` to path. Returns the bytes written. Throws
// mw::Error (MW_ERR_IO, MW_ERR_OUT_OF_MEMORY) and removes the file on failure.
size_t spill_blocks(const KvCache& kv, const std::vector<int32_t>& blocks, const std::string& path,
                    const KvBlockReader& read = {});

// Reads a spill file written for blocks.size() blocks into `blocks`. Throws
// mw::Error (MW_ERR_IO) when the file is missing, short, corrupt or of another shape.
void restore_blocks(KvCache& kv, const std::vector<int32_t>& blocks, const std::string& path,
                    const KvBlockWriter& write = {});

}  // namespace mw
