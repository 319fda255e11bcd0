//! Bad input maps to the right Error variant, with the library's message.
use std::io::Write;
use std::path::PathBuf;

use memwise::{Engine, EngineOptions, Error, Model, Prompt, Request};

use crate::common::*;

/// A file with `bytes` in the system temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("memwise-rust-{}-{name}", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn missing_file_is_io() {
    let err = Model::open("/nonexistent/memwise/model.gguf").unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert!(err.message().contains("/nonexistent/memwise/model.gguf"), "message {:?}", err.message());
    assert_eq!(err.status(), memwise::sys::MW_ERR_IO);
    assert!(err.to_string().starts_with("MW_ERR_IO: "), "{err}");
    let dir = Model::open(std::env::temp_dir()).unwrap_err();
    assert!(matches!(dir, Error::Io(_)), "{dir:?}");
}

#[test]
fn malformed_file_is_format() {
    let not_gguf = TempFile::new("text.gguf", b"this is not a GGUF file at all\n");
    let err = Model::open(&not_gguf.0).unwrap_err();
    assert!(matches!(err, Error::Format(_)), "{err:?}");
    assert!(!err.message().is_empty());

    // A GGUF v3 header claiming more tensors than the file could hold.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&1_000_000u64.to_le_bytes()); // tensor count
    bytes.extend_from_slice(&0u64.to_le_bytes()); // metadata count
    let truncated = TempFile::new("truncated.gguf", &bytes);
    let err = Model::open(&truncated.0).unwrap_err();
    assert!(matches!(err, Error::Format(_)), "{err:?}");
    assert!(!err.message().is_empty());
}

#[test]
fn nul_in_path_is_invalid_argument() {
    let err = Model::open("model\0.gguf").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

#[test]
fn bad_requests_are_invalid_argument() {
    let Some(model) = open_stories() else { return };
    let engine = engine(&model, 1, 256);
    let bad = |req: Request| engine.generate(&req).unwrap_err();

    let err = bad(Request { temperature: -1.0, ..Request::new("Once upon a time") });
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.message().contains("temperature"), "message {:?}", err.message());

    let err = bad(Request::new(vec![1, 403, 99_999]));
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = bad(Request::new(""));
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = bad(Request::new(Prompt::Tokens(vec![])));
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    let err = model.detokenize(&[1, 512], false).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    // The engine still works after the failures.
    let done = engine.generate(&Request { temperature: 0.0, max_tokens: 2, ..Request::new("Once upon a time") });
    assert_eq!(done.unwrap().read_all().unwrap().tokens, [432, 383]);
}

#[test]
fn prompt_too_long_is_context_overflow() {
    let Some(model) = open_stories() else { return };
    let engine = engine(&model, 1, 64);
    let err = engine.generate(&Request { max_tokens: 8, ..Request::new(vec![300; 100]) }).unwrap_err();
    assert!(matches!(err, Error::ContextOverflow(_)), "{err:?}");
    assert!(!err.message().is_empty());
    // Prompt plus max_tokens beyond the context also overflows.
    let err = engine.generate(&Request { max_tokens: 60, ..Request::new(vec![300; 10]) }).unwrap_err();
    assert!(matches!(err, Error::ContextOverflow(_)), "{err:?}");
}

#[test]
fn tiny_budget_is_budget() {
    let Some(model) = open_stories() else { return };
    let opts = EngineOptions { memory_budget_bytes: 1024, ..EngineOptions::default() };
    let err = Engine::new(&model, &opts).unwrap_err();
    assert!(matches!(err, Error::Budget(_)), "{err:?}");
    assert!(!err.message().is_empty());
}
