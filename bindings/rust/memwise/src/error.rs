//! Errors: one variant per `mw_status` failure code, each with the library's
//! detail message (`mw_last_error`, read on the failing thread right after the
//! failing call).
use std::ffi::CStr;
use std::fmt;

use memwise_sys as sys;

/// A failed memwise call. The variant is the C status code; the string is the
/// library's detail message (it names the field, value or byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `MW_ERR_INVALID_ARGUMENT`: a bad value, token id or option.
    InvalidArgument(String),
    /// `MW_ERR_FORMAT`: the model file is malformed.
    Format(String),
    /// `MW_ERR_UNSUPPORTED`: valid but unsupported (architecture, tensor type, chat template).
    Unsupported(String),
    /// `MW_ERR_IO`: open, mmap, read or write failed.
    Io(String),
    /// `MW_ERR_OUT_OF_MEMORY`: an allocation failed.
    OutOfMemory(String),
    /// `MW_ERR_BUDGET`: does not fit the engine's memory budget.
    Budget(String),
    /// `MW_ERR_CONTEXT_OVERFLOW`: prompt plus generation longer than the context.
    ContextOverflow(String),
    /// `MW_ERR_BUFFER_TOO_SMALL` (the safe API sizes its buffers, so rare).
    BufferTooSmall(String),
    /// `MW_ERR_CANCELLED`.
    Cancelled(String),
    /// `MW_ERR_STATE`: the call is not valid in the object's current state.
    State(String),
    /// `MW_ERR_INTERNAL`: a bug in memwise.
    Internal(String),
    /// A status code this version of the crate does not know.
    Unknown { status: i32, message: String },
}

impl Error {
    /// Maps a C status code and a message to an error. `MW_OK` and
    /// `MW_TIMEOUT` are not errors; given one anyway, this returns `Unknown`.
    pub fn from_status(status: i32, message: impl Into<String>) -> Error {
        let m = message.into();
        match status {
            sys::MW_ERR_INVALID_ARGUMENT => Error::InvalidArgument(m),
            sys::MW_ERR_FORMAT => Error::Format(m),
            sys::MW_ERR_UNSUPPORTED => Error::Unsupported(m),
            sys::MW_ERR_IO => Error::Io(m),
            sys::MW_ERR_OUT_OF_MEMORY => Error::OutOfMemory(m),
            sys::MW_ERR_BUDGET => Error::Budget(m),
            sys::MW_ERR_CONTEXT_OVERFLOW => Error::ContextOverflow(m),
            sys::MW_ERR_BUFFER_TOO_SMALL => Error::BufferTooSmall(m),
            sys::MW_ERR_CANCELLED => Error::Cancelled(m),
            sys::MW_ERR_STATE => Error::State(m),
            sys::MW_ERR_INTERNAL => Error::Internal(m),
            status => Error::Unknown { status, message: m },
        }
    }

    /// The C status code (`MW_ERR_*`).
    pub fn status(&self) -> i32 {
        match self {
            Error::InvalidArgument(_) => sys::MW_ERR_INVALID_ARGUMENT,
            Error::Format(_) => sys::MW_ERR_FORMAT,
            Error::Unsupported(_) => sys::MW_ERR_UNSUPPORTED,
            Error::Io(_) => sys::MW_ERR_IO,
            Error::OutOfMemory(_) => sys::MW_ERR_OUT_OF_MEMORY,
            Error::Budget(_) => sys::MW_ERR_BUDGET,
            Error::ContextOverflow(_) => sys::MW_ERR_CONTEXT_OVERFLOW,
            Error::BufferTooSmall(_) => sys::MW_ERR_BUFFER_TOO_SMALL,
            Error::Cancelled(_) => sys::MW_ERR_CANCELLED,
            Error::State(_) => sys::MW_ERR_STATE,
            Error::Internal(_) => sys::MW_ERR_INTERNAL,
            Error::Unknown { status, .. } => *status,
        }
    }

    /// The detail message.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidArgument(m)
            | Error::Format(m)
            | Error::Unsupported(m)
            | Error::Io(m)
            | Error::OutOfMemory(m)
            | Error::Budget(m)
            | Error::ContextOverflow(m)
            | Error::BufferTooSmall(m)
            | Error::Cancelled(m)
            | Error::State(m)
            | Error::Internal(m) => m,
            Error::Unknown { message, .. } => message,
        }
    }

    /// The error of the call that just returned `status` on this thread.
    /// Must be called before any other memwise call on the same thread.
    pub(crate) fn last(status: sys::mw_status) -> Error {
        // SAFETY: mw_last_error never returns NULL; the string is valid until
        // the next memwise call on this thread and is copied at once.
        let msg = unsafe { CStr::from_ptr(sys::mw_last_error()) };
        Error::from_status(status, msg.to_string_lossy().into_owned())
    }
}

/// `Ok(())` for `MW_OK`, otherwise the thread's last error.
pub(crate) fn check(status: sys::mw_status) -> Result<(), Error> {
    if status == sys::MW_OK {
        Ok(())
    } else {
        Err(Error::last(status))
    }
}

/// The C name of a status code ("MW_ERR_FORMAT").
pub fn status_name(status: i32) -> &'static str {
    // SAFETY: mw_status_string returns a static NUL-terminated string, never NULL.
    let name = unsafe { CStr::from_ptr(sys::mw_status_string(status)) };
    name.to_str().unwrap_or("MW_ERR_UNKNOWN")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = status_name(self.status());
        if self.message().is_empty() {
            f.write_str(name)
        } else {
            write!(f, "{name}: {}", self.message())
        }
    }
}

impl std::error::Error for Error {}
