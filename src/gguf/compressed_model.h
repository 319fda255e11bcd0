// Compressed model files: "model.gguf.zst" is decompressed once, streaming
// through fixed-size buffers (the model never sits in anonymous memory), into
// a content-addressed cache file that the normal reader then maps.
//
// Cache entry: <cache_dir>/zst-<128-bit hash of the compressed bytes>.gguf,
// the decompressed GGUF followed by a 48-byte trailer (magic, the hash, the
// compressed and decompressed sizes). An entry is reused only when its trailer
// matches the source exactly, so a stale, truncated or foreign file with the
// right name is never taken for complete. Entries are written to a temporary
// name in the same directory, fsync'ed and renamed; the temporary is removed
// on any failure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace mw::gguf {

// True when path names a zstd-compressed model (ends with ".zst").
bool is_compressed_model(const std::string& path);

// The directory used when cache_dir is empty: $XDG_CACHE_HOME/memwise, else
// $HOME/.cache/memwise. Throws MW_ERR_IO when neither variable is usable.
std::string default_model_cache_dir();

// Returns the path to map: `path` itself unless it is a .zst file; otherwise
// the cache entry for its content, decompressing it first when absent.
// cache_dir: empty = default_model_cache_dir(); created when missing.
// Throws mw::Error: MW_ERR_FORMAT (truncated or corrupt zstd data),
// MW_ERR_IO (unreadable source, unwritable cache dir, full disk),
// MW_ERR_UNSUPPORTED (a frame needing a larger window than zstd's default
// limit), MW_ERR_OUT_OF_MEMORY.
std::string resolve_compressed_model(const std::string& path, const std::string& cache_dir);

// For tests: how many times this process has decompressed a model, and an
// observer called after each output chunk with the bytes written so far
// (nullptr to remove). Not thread-safe to set while a model is being opened.
uint64_t compressed_model_decompressions();
void set_decompress_observer(std::function<void(uint64_t bytes_out)> observer);

}  // namespace mw::gguf
