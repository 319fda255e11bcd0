//! Safe Rust API of memwise, a memory-frugal LLM inference engine.
//!
//! ```no_run
//! use memwise::{Engine, EngineOptions, Event, Model, Request};
//! let model = Model::open("model.gguf")?;
//! let engine = Engine::new(&model, &EngineOptions::default())?;
//! for event in engine.generate(&Request { max_tokens: 32, ..Request::new("Once upon a time") })? {
//!     if let Event::Token(t) = event? { print!("{}", String::from_utf8_lossy(&t.text)); }
//! }
//! # Ok::<(), memwise::Error>(())
//! ```
//!
//! Ownership follows the C API (docs/C-API.md): a [`Model`] is immutable and
//! shared, an [`Engine`] may be used from any number of threads, and each
//! [`Stream`] is read by one consumer. A stream holds its engine and an engine
//! its model (reference counts), so dropping them in any order is safe: the
//! C handles are released when the last user is gone.
mod engine;
mod error;
mod model;
mod request;
mod stream;

pub use engine::{Engine, EngineOptions, KvType, MemoryReport};
pub use error::{status_name, Error};
pub use model::{AccessHint, ChatMessage, Model, ModelInfo, ModelOptions, TensorInfo};
pub use request::{Prompt, Request};
pub use stream::{CancelHandle, Completion, Event, Finish, FinishReason, Stream, Token};

/// The raw bindings, for what the safe API does not cover.
pub use memwise_sys as sys;

/// Version of the loaded library as `major * 10000 + minor * 100 + patch`.
pub fn version() -> u32 {
    // SAFETY: no arguments, never fails.
    unsafe { memwise_sys::mw_version() }
}

/// Version of the loaded library as text ("0.1.0").
pub fn version_string() -> &'static str {
    // SAFETY: a static NUL-terminated string, never NULL.
    let s = unsafe { std::ffi::CStr::from_ptr(memwise_sys::mw_version_string()) };
    s.to_str().unwrap_or("")
}
