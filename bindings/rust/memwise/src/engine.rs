//! `Engine`: the scheduler and KV cache over a model; thread-safe.
use std::ptr::{self, NonNull};
use std::sync::Arc;

use memwise_sys as sys;

use crate::error::{check, Error};
use crate::model::Model;
use crate::request::Request;
use crate::stream::Stream;

/// Element type of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvType {
    #[default]
    F16,
    F32,
}

/// Options for [`Engine::new`]. `Default` gives the library's defaults
/// (`mw_engine_options_init`); 0 means "automatic" where the C API says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// Compute threads; 0 = number of physical cores.
    pub n_threads: u32,
    /// Max tokens (prompt + generated) per sequence; 0 = min(training context, 4096).
    pub n_ctx: u32,
    /// Sequences held at once (more requests wait their turn).
    pub max_sequences: u32,
    /// Tokens per KV block.
    pub kv_block_tokens: u32,
    pub kv_type: KvType,
    /// Tokens per forward step (prefill chunk).
    pub max_batch_tokens: u32,
    /// 0 = whatever `max_sequences` full-context sequences need.
    pub memory_budget_bytes: u64,
}

fn c_engine_options() -> sys::mw_engine_options {
    // SAFETY: all-zero is a valid mw_engine_options, and a library older than
    // the header fills only the fields it knows.
    let mut c: sys::mw_engine_options = unsafe { std::mem::zeroed() };
    unsafe { sys::mw_engine_options_init(&mut c) };
    c
}

impl Default for EngineOptions {
    fn default() -> Self {
        let c = c_engine_options();
        EngineOptions {
            n_threads: c.n_threads,
            n_ctx: c.n_ctx,
            max_sequences: c.max_sequences,
            kv_block_tokens: c.kv_block_tokens,
            kv_type: if c.kv_type == sys::MW_KV_F32 as i32 { KvType::F32 } else { KvType::F16 },
            max_batch_tokens: c.max_batch_tokens,
            memory_budget_bytes: c.memory_budget_bytes,
        }
    }
}

/// The owned C handle plus the model it runs; destroyed when the last
/// `Engine` clone and the last stream of it are gone.
pub(crate) struct EngineHandle {
    ptr: NonNull<sys::mw_engine>,
    model: Model,
}

// SAFETY: the C API guarantees an mw_engine may be called from any number of
// threads at once.
unsafe impl Send for EngineHandle {}
unsafe impl Sync for EngineHandle {}

impl EngineHandle {
    pub(crate) fn as_ptr(&self) -> *mut sys::mw_engine {
        self.ptr.as_ptr()
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        // SAFETY: created by mw_engine_create, destroyed exactly once. Every
        // stream holds this handle, so no request of it is still being read.
        unsafe { sys::mw_engine_destroy(self.ptr.as_ptr()) }
        // `model` is dropped after this, so the model outlives its engine.
    }
}

/// An inference engine over a [`Model`]: one KV cache, continuous batching
/// of every request submitted to it. Cheap to clone (a reference count) and
/// `Send + Sync`: any number of threads may [`generate`](Engine::generate) at once.
#[derive(Clone)]
pub struct Engine {
    handle: Arc<EngineHandle>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("handle", &self.handle.ptr).field("model", &self.handle.model).finish()
    }
}

impl Engine {
    /// Creates an engine over `model` and starts its threads. The engine
    /// keeps the model alive. `Budget` when even one sequence cannot fit
    /// `memory_budget_bytes` (the message says what would).
    pub fn new(model: &Model, options: &EngineOptions) -> Result<Engine, Error> {
        let mut c = c_engine_options();
        c.n_threads = options.n_threads;
        c.n_ctx = options.n_ctx;
        c.max_sequences = options.max_sequences;
        c.kv_block_tokens = options.kv_block_tokens;
        c.kv_type = match options.kv_type {
            KvType::F16 => sys::MW_KV_F16 as i32,
            KvType::F32 => sys::MW_KV_F32 as i32,
        };
        c.max_batch_tokens = options.max_batch_tokens;
        c.memory_budget_bytes = options.memory_budget_bytes;
        let mut out: *mut sys::mw_engine = ptr::null_mut();
        // SAFETY: the model handle is live, c is initialised, out is writable.
        check(unsafe { sys::mw_engine_create(model.as_ptr(), &c, &mut out) })?;
        let ptr = NonNull::new(out).ok_or_else(|| Error::Internal("mw_engine_create returned NULL".into()))?;
        Ok(Engine { handle: Arc::new(EngineHandle { ptr, model: model.clone() }) })
    }

    /// The model this engine runs.
    pub fn model(&self) -> &Model {
        &self.handle.model
    }

    /// Submits a request and returns the stream of its events. The stream
    /// holds the engine, so it can be read after every `Engine` is dropped.
    ///
    /// Errors (nothing is queued): `InvalidArgument` (bad values, empty
    /// prompt, token id out of range), `ContextOverflow`, `Budget`.
    pub fn generate(&self, request: &Request) -> Result<Stream, Error> {
        Stream::submit(self.handle.clone(), request)
    }
}

/// Where an engine's memory goes ([`Engine::memory`], `mw_memory_report`).
/// Byte counts; "resident" means in RAM now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryReport {
    /// Size of the weights' mapping (file-backed, shared between processes).
    pub weights_mapped_bytes: u64,
    /// Pages of the mapping in RAM.
    pub weights_resident_bytes: u64,
    /// Address space of the KV block pool.
    pub kv_reserved_bytes: u64,
    /// Pool pages in RAM (touched so far).
    pub kv_resident_bytes: u64,
    /// Blocks held by sequences.
    pub kv_used_bytes: u64,
    /// Blocks holding reusable prefixes, with no owner.
    pub kv_cached_bytes: u64,
    pub kv_free_bytes: u64,
    /// The step arena.
    pub activations_reserved_bytes: u64,
    /// Most ever touched by one step (resident).
    pub activations_high_water_bytes: u64,
    /// Sampling, request and scheduler state plus the tokenizer tables.
    pub scratch_bytes: u64,
    /// Address space the general heap has committed (not all touched).
    pub heap_committed_bytes: u64,
    /// Committed minus what the engine's objects use now.
    pub heap_overhead_bytes: u64,
    /// The engine's own anonymous memory in RAM: KV resident, activations
    /// high water, the heap's peak live bytes and the tokenizer tables.
    pub engine_total_bytes: u64,
    /// The whole process (/proc/self/smaps_rollup; 0 where unavailable).
    pub process_rss_bytes: u64,
    pub process_pss_bytes: u64,
    pub process_anonymous_bytes: u64,
    pub process_file_bytes: u64,
    /// Allocations the engine heap has made so far.
    pub heap_allocations: u64,
}

impl Engine {
    /// Reports where the engine's memory goes. Costs a few system calls.
    pub fn memory(&self) -> Result<MemoryReport, Error> {
        // SAFETY: plain integers; the library fills what struct_size allows.
        let mut r: sys::mw_memory_report = unsafe { std::mem::zeroed() };
        r.struct_size = std::mem::size_of::<sys::mw_memory_report>() as u32;
        check(unsafe { sys::mw_engine_memory(self.handle.as_ptr(), &mut r) })?;
        Ok(MemoryReport {
            weights_mapped_bytes: r.weights_mapped_bytes,
            weights_resident_bytes: r.weights_resident_bytes,
            kv_reserved_bytes: r.kv_reserved_bytes,
            kv_resident_bytes: r.kv_resident_bytes,
            kv_used_bytes: r.kv_used_bytes,
            kv_cached_bytes: r.kv_cached_bytes,
            kv_free_bytes: r.kv_free_bytes,
            activations_reserved_bytes: r.activations_reserved_bytes,
            activations_high_water_bytes: r.activations_high_water_bytes,
            scratch_bytes: r.scratch_bytes,
            heap_committed_bytes: r.heap_committed_bytes,
            heap_overhead_bytes: r.heap_overhead_bytes,
            engine_total_bytes: r.engine_total_bytes,
            process_rss_bytes: r.process_rss_bytes,
            process_pss_bytes: r.process_pss_bytes,
            process_anonymous_bytes: r.process_anonymous_bytes,
            process_file_bytes: r.process_file_bytes,
            heap_allocations: r.heap_allocations,
        })
    }
}
