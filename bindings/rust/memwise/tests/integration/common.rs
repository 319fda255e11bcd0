//! Shared by the integration tests: model lookup (skips with a message when a
//! model is absent, like the C tests) and the greedy fixtures of tests/data.
use std::path::{Path, PathBuf};

use memwise::{Engine, EngineOptions, Model};

pub const STORIES: &str = "stories260K.gguf";
pub const SMOLLM: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The repository root (bindings/rust/memwise/../../..).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Finds a model where the C tests look: $MEMWISE_TEST_MODELS, ../shared/models
/// beside the repository, $MEMWISE_MODEL_CACHE, ~/.cache/memwise/models.
pub fn find_model(file: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("MEMWISE_TEST_MODELS") {
        dirs.push(d.into());
    }
    dirs.push(repo_root().join("../shared/models"));
    if let Some(d) = std::env::var_os("MEMWISE_MODEL_CACHE") {
        dirs.push(d.into());
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cache/memwise/models"));
    }
    dirs.into_iter().map(|d| d.join(file)).find(|p| p.is_file())
}

/// The model's path, or None after printing why the test is skipped.
pub fn require_model(file: &str) -> Option<PathBuf> {
    let found = find_model(file);
    if found.is_none() {
        println!(
            "SKIP: model {file} not found ($MEMWISE_TEST_MODELS, ../shared/models, ~/.cache/memwise/models); \
             run scripts/setup.sh"
        );
    }
    found
}

pub fn open_stories() -> Option<Model> {
    require_model(STORIES).map(|p| Model::open(p).expect("open stories260K"))
}

pub fn engine(model: &Model, max_sequences: u32, n_ctx: u32) -> Engine {
    let opts = EngineOptions { max_sequences, n_ctx, n_threads: 2, ..EngineOptions::default() };
    Engine::new(model, &opts).expect("create engine")
}

/// One line of tests/data/greedy_*.txt: llama.cpp's greedy continuation,
/// which the C API reproduces token for token.
#[derive(Debug, Clone)]
pub struct Case {
    pub add_special: bool,
    pub parse_special: bool,
    pub prompt: Vec<u8>,
    pub prompt_ids: Vec<i32>,
    pub generated: Vec<i32>,
}

fn ids(field: &str) -> Vec<i32> {
    field.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().expect("token id")).collect()
}

fn hex(field: &str) -> Vec<u8> {
    (0..field.len()).step_by(2).map(|i| u8::from_str_radix(&field[i..i + 2], 16).expect("hex")).collect()
}

pub fn fixture(name: &str) -> Vec<Case> {
    let path = repo_root().join("tests/data").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: Vec<Case> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 4, "{}: bad line {l:?}", path.display());
            Case {
                add_special: f[0] == "1",
                parse_special: f[1] == "1",
                prompt: hex(f[2]),
                prompt_ids: ids(f[3]),
                generated: f.get(4).map(|s| ids(s)).unwrap_or_default(),
            }
        })
        .collect();
    assert!(!cases.is_empty(), "{} has no cases", path.display());
    cases
}

/// What the C API produces for a case: the generated ids without a final
/// end-of-generation token (which finishes the request instead of being
/// emitted), and whether the case ends with one.
pub fn expected(case: &Case, info: &memwise::ModelInfo) -> (Vec<i32>, bool) {
    let mut want = case.generated.clone();
    let eog = |t: i32| Some(t) == info.eos_token || Some(t) == info.eot_token;
    let ends_with_eog = want.last().is_some_and(|&t| eog(t));
    if ends_with_eog {
        want.pop();
    }
    (want, ends_with_eog)
}
