//! `Stream`: the events of one submitted request, pulled with
//! `mw_request_next` (no callbacks, so no Rust code ever runs on an engine
//! thread and no panic can cross the C boundary).
use std::ptr::{self, NonNull};
use std::sync::{Arc, Weak};

use memwise_sys as sys;

use crate::engine::EngineHandle;
use crate::error::{check, Error};
use crate::request::{c_request_options, Prompt, Request};

/// Why a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// End-of-sequence or end-of-turn token (not emitted as a token).
    Eos,
    /// `max_tokens` reached.
    Length,
    /// A stop string was generated (it is not emitted).
    StopString,
    /// The sequence filled the context.
    Context,
    /// Cancelled through [`Stream::cancel`] or a [`CancelHandle`].
    Cancelled,
    /// A reason this version of the crate does not know.
    Unknown(i32),
}

impl FinishReason {
    fn from_c(reason: i32) -> FinishReason {
        match reason as u32 {
            sys::MW_FINISH_EOS => FinishReason::Eos,
            sys::MW_FINISH_LENGTH => FinishReason::Length,
            sys::MW_FINISH_STOP_STRING => FinishReason::StopString,
            sys::MW_FINISH_CONTEXT => FinishReason::Context,
            sys::MW_FINISH_CANCELLED => FinishReason::Cancelled,
            _ => FinishReason::Unknown(reason),
        }
    }
}

/// A generated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: i32,
    /// The bytes of text this token makes final. May be empty when the engine
    /// holds bytes back (an incomplete UTF-8 character, a possible stop string).
    pub text: Vec<u8>,
}

/// The end of a request that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub reason: FinishReason,
    /// Text held back until the end that is final now (usually empty).
    pub text: Vec<u8>,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
}

/// One item of a [`Stream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Token(Token),
    /// Always the last event.
    Finished(Finish),
}

/// Everything a request produced, from [`Stream::read_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub tokens: Vec<i32>,
    /// All text, the finish event's included.
    pub text: Vec<u8>,
    pub finish: Finish,
}

impl Completion {
    /// The text as a String (invalid UTF-8 replaced).
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }
}

/// The owned C request handle. Holds the engine, so the engine (and with it
/// the model) lives as long as any request of it.
pub(crate) struct RequestHandle {
    ptr: NonNull<sys::mw_request>,
    _engine: Arc<EngineHandle>,
}

// SAFETY: mw_request_cancel is thread-safe. mw_request_next, the one call that
// needs a single consumer, is only made through `Stream::next`, which takes
// `&mut Stream`, and the Stream is the only owner that reads.
unsafe impl Send for RequestHandle {}
unsafe impl Sync for RequestHandle {}

impl RequestHandle {
    fn cancel(&self) {
        // SAFETY: the handle is live while `self` exists. The only failure is
        // a released handle, which cannot happen here, and cancelling a
        // finished request is harmless, so the status carries nothing.
        let _ = unsafe { sys::mw_request_cancel(self.ptr.as_ptr()) };
    }
}

impl Drop for RequestHandle {
    fn drop(&mut self) {
        // SAFETY: released exactly once; this cancels the request if it still
        // runs. The engine field is dropped only after this.
        unsafe { sys::mw_request_release(self.ptr.as_ptr()) }
    }
}

/// The events of one request: an `Iterator<Item = Result<Event, Error>>`
/// that yields tokens, then one `Event::Finished` (or one `Err` if the request
/// failed), then `None`. Each call blocks until the next event.
///
/// Dropping the stream cancels the request if it is still running and
/// releases it. The stream keeps its engine and model alive.
pub struct Stream {
    handle: Arc<RequestHandle>,
    done: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("handle", &self.handle.ptr).field("done", &self.done).finish()
    }
}

/// Cancels a request from any thread. Holds no resources: once the stream is
/// dropped, `cancel` does nothing.
#[derive(Debug, Clone)]
pub struct CancelHandle {
    handle: Weak<RequestHandle>,
}

impl CancelHandle {
    /// Asks the engine to stop the request: it finishes with
    /// [`FinishReason::Cancelled`] within one forward step. Harmless on a
    /// finished request or a dropped stream.
    pub fn cancel(&self) {
        if let Some(h) = self.handle.upgrade() {
            h.cancel();
        }
    }
}

impl Stream {
    pub(crate) fn submit(engine: Arc<EngineHandle>, request: &Request) -> Result<Stream, Error> {
        let mut c = c_request_options();
        match &request.prompt {
            Prompt::Text(text) => {
                c.prompt = text.as_ptr().cast();
                c.prompt_len = text.len();
            }
            Prompt::Tokens(ids) => {
                c.prompt_tokens = ids.as_ptr();
                c.n_prompt_tokens = ids.len();
            }
        }
        c.add_special = request.add_special as i32;
        c.parse_special = request.parse_special as i32;
        c.max_tokens = request.max_tokens;
        c.temperature = request.temperature;
        c.top_k = request.top_k;
        c.top_p = request.top_p;
        c.min_p = request.min_p;
        c.repeat_penalty = request.repeat_penalty;
        c.repeat_last_n = request.repeat_last_n;
        c.seed = request.seed.unwrap_or(sys::MW_SEED_RANDOM);
        let stop: Vec<sys::mw_text> =
            request.stop.iter().map(|s| sys::mw_text { data: s.as_ptr().cast(), len: s.len() }).collect();
        if !stop.is_empty() {
            c.stop = stop.as_ptr();
            c.n_stop = stop.len();
        }
        c.ignore_eos = request.ignore_eos as i32;
        c.priority = request.priority;
        // Pull API only: no callback, so no Rust code runs on engine threads.
        c.callback = None;
        c.user_data = ptr::null_mut();

        let mut out: *mut sys::mw_request = ptr::null_mut();
        // SAFETY: every pointer in c borrows from `request` or `stop`, both
        // alive for the call; mw_submit copies what it keeps.
        check(unsafe { sys::mw_submit(engine.as_ptr(), &c, &mut out) })?;
        let ptr = NonNull::new(out).ok_or_else(|| Error::Internal("mw_submit returned NULL".into()))?;
        Ok(Stream { handle: Arc::new(RequestHandle { ptr, _engine: engine }), done: false })
    }

    /// Asks the engine to stop this request (see [`CancelHandle::cancel`]).
    /// The stream then yields the remaining events and a `Cancelled` finish.
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// A handle that cancels this request from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle { handle: Arc::downgrade(&self.handle) }
    }

    /// Reads the rest of the stream: every token, all the text and the finish.
    pub fn read_all(mut self) -> Result<Completion, Error> {
        let mut tokens = Vec::new();
        let mut text = Vec::new();
        loop {
            match self.next() {
                Some(Ok(Event::Token(t))) => {
                    tokens.push(t.id);
                    text.extend_from_slice(&t.text);
                }
                Some(Ok(Event::Finished(finish))) => {
                    text.extend_from_slice(&finish.text);
                    return Ok(Completion { tokens, text, finish });
                }
                Some(Err(e)) => return Err(e),
                None => return Err(Error::State("the stream has already ended".into())),
            }
        }
    }
}

impl Iterator for Stream {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // SAFETY: all-zero is a valid mw_event (NULL text, zero counts).
        let mut ev: sys::mw_event = unsafe { std::mem::zeroed() };
        let status = loop {
            ev.struct_size = std::mem::size_of::<sys::mw_event>() as u32;
            // SAFETY: the handle is live; `&mut self` makes this the only
            // consumer, as the C API requires. A negative timeout waits forever.
            let st = unsafe { sys::mw_request_next(self.handle.ptr.as_ptr(), -1, &mut ev) };
            if st != sys::MW_TIMEOUT {
                break st;
            }
        };
        if status != sys::MW_OK {
            self.done = true;
            return Some(Err(Error::last(status)));
        }
        let text = if ev.text.is_null() || ev.text_len == 0 {
            Vec::new()
        } else {
            // SAFETY: ev.text holds text_len bytes, valid until the next call
            // on this request; copied at once.
            unsafe { std::slice::from_raw_parts(ev.text.cast::<u8>(), ev.text_len) }.to_vec()
        };
        match ev.kind as u32 {
            sys::MW_EVENT_TOKEN => Some(Ok(Event::Token(Token { id: ev.token, text }))),
            sys::MW_EVENT_FINISHED => {
                self.done = true;
                if ev.finish_reason as u32 == sys::MW_FINISH_ERROR {
                    let message = String::from_utf8_lossy(&text).into_owned();
                    let status = if ev.status < 0 { ev.status } else { sys::MW_ERR_INTERNAL };
                    return Some(Err(Error::from_status(status, message)));
                }
                Some(Ok(Event::Finished(Finish {
                    reason: FinishReason::from_c(ev.finish_reason),
                    text,
                    prompt_tokens: ev.n_prompt_tokens,
                    generated_tokens: ev.n_generated_tokens,
                })))
            }
            kind => {
                self.done = true;
                Some(Err(Error::Internal(format!("unknown event kind {kind}"))))
            }
        }
    }
}

impl std::iter::FusedIterator for Stream {}
