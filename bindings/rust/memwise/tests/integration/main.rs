//! Integration tests of the safe API against the real library and model
//! (one test binary, so the crate links once).
mod common;

mod cancel;
mod concurrency;
mod errors;
mod greedy;
mod lifetime;
mod memory;
