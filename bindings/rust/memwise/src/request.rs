//! `Request`: a prompt and its sampling options.
use memwise_sys as sys;

/// The prompt of a request: text, tokenized by the engine, or token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Bytes of text (usually UTF-8).
    Text(Vec<u8>),
    /// Token ids, used as they are.
    Tokens(Vec<i32>),
}

impl From<&str> for Prompt {
    fn from(s: &str) -> Self {
        Prompt::Text(s.as_bytes().to_vec())
    }
}
impl From<String> for Prompt {
    fn from(s: String) -> Self {
        Prompt::Text(s.into_bytes())
    }
}
impl From<&[u8]> for Prompt {
    fn from(b: &[u8]) -> Self {
        Prompt::Text(b.to_vec())
    }
}
impl From<Vec<i32>> for Prompt {
    fn from(t: Vec<i32>) -> Self {
        Prompt::Tokens(t)
    }
}
impl From<&[i32]> for Prompt {
    fn from(t: &[i32]) -> Self {
        Prompt::Tokens(t.to_vec())
    }
}

/// A generation request. [`Request::new`] fills every option with the
/// library's defaults (`mw_request_options_init`); change fields as needed:
///
/// ```no_run
/// # use memwise::Request;
/// let req = Request { max_tokens: 32, temperature: 0.0, ..Request::new("Once upon a time") };
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub prompt: Prompt,
    /// Text prompts: add BOS etc. as the model's metadata says.
    pub add_special: bool,
    /// Text prompts: recognise special tokens written as text ("<|im_start|>").
    pub parse_special: bool,
    /// Tokens to generate; 0 = until the context is full.
    pub max_tokens: u32,
    /// 0 = greedy; must be >= 0.
    pub temperature: f32,
    /// 0 = off.
    pub top_k: i32,
    /// In (0, 1]; 1 = off.
    pub top_p: f32,
    /// In [0, 1]; 0 = off.
    pub min_p: f32,
    /// > 0; 1 = off.
    pub repeat_penalty: f32,
    /// Tokens the penalty looks back over.
    pub repeat_last_n: i32,
    /// `None` = a random seed.
    pub seed: Option<u64>,
    /// Generation stops when one of these is produced (it is not emitted).
    pub stop: Vec<String>,
    /// Do not stop at EOS/EOT.
    pub ignore_eos: bool,
    /// Higher is served first.
    pub priority: i32,
}

pub(crate) fn c_request_options() -> sys::mw_request_options {
    // SAFETY: all-zero is a valid mw_request_options (NULL pointers, no
    // callback), and a library older than the header fills only the fields it knows.
    let mut c: sys::mw_request_options = unsafe { std::mem::zeroed() };
    unsafe { sys::mw_request_options_init(&mut c) };
    c
}

impl Request {
    /// A request for `prompt` with the library's default options.
    pub fn new(prompt: impl Into<Prompt>) -> Request {
        let c = c_request_options();
        Request {
            prompt: prompt.into(),
            add_special: c.add_special != 0,
            parse_special: c.parse_special != 0,
            max_tokens: c.max_tokens,
            temperature: c.temperature,
            top_k: c.top_k,
            top_p: c.top_p,
            min_p: c.min_p,
            repeat_penalty: c.repeat_penalty,
            repeat_last_n: c.repeat_last_n,
            seed: (c.seed != sys::MW_SEED_RANDOM).then_some(c.seed),
            stop: Vec::new(),
            ignore_eos: c.ignore_eos != 0,
            priority: c.priority,
        }
    }
}
