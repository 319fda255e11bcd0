//! `Model`: an opened GGUF file (immutable, shared), its metadata and tokenizer.
use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::sync::Arc;

use memwise_sys as sys;

use crate::error::{check, Error};

/// How the weights' pages will be read (`madvise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessHint {
    /// Let the kernel decide.
    #[default]
    Default,
    /// No read-ahead.
    Random,
    /// Aggressive read-ahead.
    Sequential,
    /// Start reading the whole file now.
    WillNeed,
}

/// Options for [`Model::open_with`]. `Default` gives the library's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOptions {
    /// Read every weight page at open (MAP_POPULATE): slower open, no page
    /// faults on the first forward pass.
    pub prefault: bool,
    /// `mlock` the weights so they are never paged out (`Io` when
    /// RLIMIT_MEMLOCK forbids it).
    pub lock: bool,
    pub access_hint: AccessHint,
    /// Where a `.gguf.zst` model is decompressed to; `None` =
    /// $XDG_CACHE_HOME/memwise or ~/.cache/memwise.
    pub cache_dir: Option<PathBuf>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        let c = c_model_options();
        ModelOptions {
            prefault: c.prefault != 0,
            lock: c.lock != 0,
            access_hint: match c.access_hint as u32 {
                sys::MW_ACCESS_RANDOM => AccessHint::Random,
                sys::MW_ACCESS_SEQUENTIAL => AccessHint::Sequential,
                sys::MW_ACCESS_WILLNEED => AccessHint::WillNeed,
                _ => AccessHint::Default,
            },
            cache_dir: None,
        }
    }
}

fn c_model_options() -> sys::mw_model_options {
    // SAFETY: all-zero is a valid mw_model_options (NULL cache_dir), and a
    // library older than the header fills only the fields it knows.
    let mut c: sys::mw_model_options = unsafe { std::mem::zeroed() };
    unsafe { sys::mw_model_options_init(&mut c) };
    c
}

/// The owned C handle; closed when the last `Model` clone (and with it the
/// last engine, which holds a clone) is dropped.
struct ModelHandle(NonNull<sys::mw_model>);

// SAFETY: the C API guarantees an mw_model is immutable after open and may be
// used from any number of threads at once.
unsafe impl Send for ModelHandle {}
unsafe impl Sync for ModelHandle {}

impl Drop for ModelHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from mw_model_open and is closed exactly once.
        unsafe { sys::mw_model_close(self.0.as_ptr()) }
    }
}

/// An opened model file. Cheap to clone (a reference count); `Send + Sync`.
/// The file is memory-mapped read-only and weights are used in place.
#[derive(Clone)]
pub struct Model {
    handle: Arc<ModelHandle>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("handle", &self.handle.0).finish()
    }
}

/// What [`Model::info`] reports (`mw_model_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub architecture: String,
    pub name: String,
    pub gguf_version: u32,
    pub n_vocab: u32,
    pub n_ctx_train: u32,
    pub n_embd: u32,
    pub n_layer: u32,
    /// Layer 0 (a pruned model may differ per layer).
    pub n_head: u32,
    pub n_head_kv: u32,
    pub n_ff: u32,
    pub head_dim: u32,
    pub n_params: u64,
    pub file_bytes: u64,
    pub weight_bytes: u64,
    pub bos_token: Option<i32>,
    pub eos_token: Option<i32>,
    /// End-of-turn token.
    pub eot_token: Option<i32>,
    /// KV cache bytes one token costs at F16.
    pub kv_bytes_per_token: u32,
    /// The tokenizer adds BOS to text prompts.
    pub add_bos: bool,
    /// "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    pub tokenizer_model: String,
    pub tokenizer_pre: String,
    /// "chatml", "llama2", "llama3", "mistral", or "" when none is recognised.
    pub chat_template: String,
    /// Dominant weight type, e.g. "Q4_1".
    pub file_type: String,
}

/// One tensor of the file (`mw_tensor_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub type_name: String,
    /// `shape[0]` is the contiguous dimension.
    pub shape: Vec<u64>,
    pub n_bytes: u64,
    /// Absolute byte offset of the data in the file.
    pub file_offset: u64,
}

/// One message for [`Model::chat_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    /// "system", "user" or "assistant".
    pub role: &'a str,
    pub content: &'a str,
}

impl<'a> ChatMessage<'a> {
    pub fn new(role: &'a str, content: &'a str) -> Self {
        ChatMessage { role, content }
    }
    pub fn system(content: &'a str) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: &'a str) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: &'a str) -> Self {
        Self::new("assistant", content)
    }
}

/// A NUL-terminated `c_char` array as a String (lossy UTF-8).
fn fixed_str(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn token_or_none(id: i32) -> Option<i32> {
    (id >= 0).then_some(id)
}

fn path_to_cstring(path: &Path) -> Result<CString, Error> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or_else(|| Error::InvalidArgument(format!("path {} is not valid UTF-8", path.display())))?
        .as_bytes()
        .to_vec();
    CString::new(bytes).map_err(|_| Error::InvalidArgument(format!("path {:?} contains a NUL byte", path)))
}

impl Model {
    /// Opens a GGUF model file with default options.
    ///
    /// Errors: `Io` (missing, unreadable, a directory), `Format` (malformed; the
    /// message names the field and byte offset), `Unsupported`.
    pub fn open(path: impl AsRef<Path>) -> Result<Model, Error> {
        Self::open_with(path, &ModelOptions::default())
    }

    /// Opens a GGUF model file.
    pub fn open_with(path: impl AsRef<Path>, options: &ModelOptions) -> Result<Model, Error> {
        let path = path_to_cstring(path.as_ref())?;
        let cache_dir = options.cache_dir.as_deref().map(path_to_cstring).transpose()?;
        let mut c = c_model_options();
        c.prefault = options.prefault as i32;
        c.lock = options.lock as i32;
        c.access_hint = match options.access_hint {
            AccessHint::Default => sys::MW_ACCESS_DEFAULT,
            AccessHint::Random => sys::MW_ACCESS_RANDOM,
            AccessHint::Sequential => sys::MW_ACCESS_SEQUENTIAL,
            AccessHint::WillNeed => sys::MW_ACCESS_WILLNEED,
        } as i32;
        c.cache_dir = cache_dir.as_ref().map_or(ptr::null(), |d| d.as_ptr());
        let mut out: *mut sys::mw_model = ptr::null_mut();
        // SAFETY: path and cache_dir are NUL-terminated and outlive the call; c is
        // initialised; out is writable.
        check(unsafe { sys::mw_model_open(path.as_ptr(), &c, &mut out) })?;
        let handle = NonNull::new(out).ok_or_else(|| Error::Internal("mw_model_open returned NULL".into()))?;
        Ok(Model { handle: Arc::new(ModelHandle(handle)) })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::mw_model {
        self.handle.0.as_ptr()
    }

    /// Describes the model.
    pub fn info(&self) -> Result<ModelInfo, Error> {
        // SAFETY: mw_model_info is plain data (integers and char arrays), so
        // all-zero is a valid value; the library fills what struct_size allows.
        let mut i: sys::mw_model_info = unsafe { std::mem::zeroed() };
        i.struct_size = std::mem::size_of::<sys::mw_model_info>() as u32;
        check(unsafe { sys::mw_model_info_get(self.as_ptr(), &mut i) })?;
        Ok(ModelInfo {
            architecture: fixed_str(&i.architecture),
            name: fixed_str(&i.name),
            gguf_version: i.gguf_version,
            n_vocab: i.n_vocab,
            n_ctx_train: i.n_ctx_train,
            n_embd: i.n_embd,
            n_layer: i.n_layer,
            n_head: i.n_head,
            n_head_kv: i.n_head_kv,
            n_ff: i.n_ff,
            head_dim: i.head_dim,
            n_params: i.n_params,
            file_bytes: i.file_bytes,
            weight_bytes: i.weight_bytes,
            bos_token: token_or_none(i.bos_token),
            eos_token: token_or_none(i.eos_token),
            eot_token: token_or_none(i.eot_token),
            kv_bytes_per_token: i.kv_bytes_per_token,
            add_bos: i.add_bos != 0,
            tokenizer_model: fixed_str(&i.tokenizer_model),
            tokenizer_pre: fixed_str(&i.tokenizer_pre),
            chat_template: fixed_str(&i.chat_template),
            file_type: fixed_str(&i.file_type),
        })
    }

    /// Describes every tensor of the file, in file order.
    pub fn tensors(&self) -> Result<Vec<TensorInfo>, Error> {
        // SAFETY: the handle is live.
        let n = unsafe { sys::mw_model_tensor_count(self.as_ptr()) };
        let mut out = Vec::with_capacity(n);
        for index in 0..n {
            // SAFETY: as in info(); a NULL name pointer is a valid zero value.
            let mut t: sys::mw_tensor_info = unsafe { std::mem::zeroed() };
            t.struct_size = std::mem::size_of::<sys::mw_tensor_info>() as u32;
            check(unsafe { sys::mw_model_tensor_info(self.as_ptr(), index, &mut t) })?;
            let name = if t.name.is_null() {
                String::new()
            } else {
                // SAFETY: NUL-terminated, owned by the model, which is open.
                unsafe { CStr::from_ptr(t.name) }.to_string_lossy().into_owned()
            };
            let dims = (t.n_dims as usize).min(t.ne.len());
            out.push(TensorInfo {
                name,
                type_name: fixed_str(&t.type_name),
                shape: t.ne[..dims].to_vec(),
                n_bytes: t.n_bytes,
                file_offset: t.file_offset,
            });
        }
        Ok(out)
    }

    /// Tokenizes `text`. `add_special`: add BOS/EOS as the model's metadata
    /// says; `parse_special`: recognise special tokens written as text.
    pub fn tokenize(&self, text: impl AsRef<[u8]>, add_special: bool, parse_special: bool) -> Result<Vec<i32>, Error> {
        let text = text.as_ref();
        // A token covers at least one byte, plus room for BOS/EOS; resized if the library says more.
        let mut tokens = vec![0i32; text.len() + 4];
        loop {
            let mut n = 0usize;
            // SAFETY: text and tokens are valid for the lengths passed.
            let st = unsafe {
                sys::mw_tokenize(
                    self.as_ptr(),
                    text.as_ptr().cast(),
                    text.len(),
                    add_special as i32,
                    parse_special as i32,
                    tokens.as_mut_ptr(),
                    tokens.len(),
                    &mut n,
                )
            };
            if st == sys::MW_ERR_BUFFER_TOO_SMALL && n > tokens.len() {
                tokens.resize(n, 0);
                continue;
            }
            check(st)?;
            tokens.truncate(n);
            return Ok(tokens);
        }
    }

    /// Converts token ids back to bytes (not necessarily complete UTF-8 when
    /// the ids end inside a character). `render_special`: write special tokens
    /// as their text instead of skipping them. `InvalidArgument` for an id
    /// outside the vocabulary.
    pub fn detokenize(&self, tokens: &[i32], render_special: bool) -> Result<Vec<u8>, Error> {
        let mut text = vec![0u8; tokens.len() * 8 + 16];
        loop {
            let mut n = 0usize;
            // SAFETY: tokens and text are valid for the lengths passed.
            let st = unsafe {
                sys::mw_detokenize(
                    self.as_ptr(),
                    tokens.as_ptr(),
                    tokens.len(),
                    render_special as i32,
                    text.as_mut_ptr().cast(),
                    text.len(),
                    &mut n,
                )
            };
            if st == sys::MW_ERR_BUFFER_TOO_SMALL && n > text.len() {
                text.resize(n, 0);
                continue;
            }
            check(st)?;
            text.truncate(n);
            return Ok(text);
        }
    }

    /// Formats messages with the model's chat template. `Unsupported` when
    /// the model has none memwise recognises (pass raw text instead).
    pub fn chat_format(&self, messages: &[ChatMessage<'_>], add_generation_prompt: bool) -> Result<String, Error> {
        let c_msgs: Vec<sys::mw_chat_message> = messages
            .iter()
            .map(|m| sys::mw_chat_message {
                role: m.role.as_ptr().cast(),
                role_len: m.role.len(),
                content: m.content.as_ptr().cast(),
                content_len: m.content.len(),
            })
            .collect();
        let mut text = vec![0u8; messages.iter().map(|m| m.role.len() + m.content.len() + 32).sum::<usize>() + 64];
        loop {
            let mut n = 0usize;
            // SAFETY: c_msgs points into `messages`, alive for the call; text is writable.
            let st = unsafe {
                sys::mw_chat_format(
                    self.as_ptr(),
                    c_msgs.as_ptr(),
                    c_msgs.len(),
                    add_generation_prompt as i32,
                    text.as_mut_ptr().cast(),
                    text.len(),
                    &mut n,
                )
            };
            if st == sys::MW_ERR_BUFFER_TOO_SMALL && n > text.len() {
                text.resize(n, 0);
                continue;
            }
            check(st)?;
            text.truncate(n);
            return String::from_utf8(text)
                .map_err(|e| Error::Internal(format!("chat template produced invalid UTF-8: {e}")));
        }
    }
}
