package memwise

// #include <memwise/memwise.h>
import "C"

import (
	"runtime"
)

// Status is a C API status code (mw_status). The values are those of
// memwise.h and never change.
type Status int32

const (
	StatusOK              Status = C.MW_OK
	StatusTimeout         Status = C.MW_TIMEOUT
	StatusInvalidArgument Status = C.MW_ERR_INVALID_ARGUMENT
	StatusFormat          Status = C.MW_ERR_FORMAT
	StatusUnsupported     Status = C.MW_ERR_UNSUPPORTED
	StatusIO              Status = C.MW_ERR_IO
	StatusOutOfMemory     Status = C.MW_ERR_OUT_OF_MEMORY
	StatusBudget          Status = C.MW_ERR_BUDGET
	StatusContextOverflow Status = C.MW_ERR_CONTEXT_OVERFLOW
	StatusBufferTooSmall  Status = C.MW_ERR_BUFFER_TOO_SMALL
	StatusCancelled       Status = C.MW_ERR_CANCELLED
	StatusState           Status = C.MW_ERR_STATE
	StatusInternal        Status = C.MW_ERR_INTERNAL
)

// String returns the C name of the status, e.g. "MW_ERR_BUDGET".
func (s Status) String() string {
	return C.GoString(C.mw_status_string(C.mw_status(s)))
}

// statusSentinel is the type of the Err* values: comparable, and matched by
// *Error.Is on the status alone.
type statusSentinel Status

func (s statusSentinel) Error() string { return "memwise: " + Status(s).String() }

// Sentinel errors, one per failure status. Every error this package returns
// for a C failure is an *Error whose status matches one of them:
//
//	if errors.Is(err, memwise.ErrBudget) { ... }
var (
	ErrInvalidArgument error = statusSentinel(StatusInvalidArgument)
	ErrFormat          error = statusSentinel(StatusFormat)
	ErrUnsupported     error = statusSentinel(StatusUnsupported)
	ErrIO              error = statusSentinel(StatusIO)
	ErrOutOfMemory     error = statusSentinel(StatusOutOfMemory)
	ErrBudget          error = statusSentinel(StatusBudget)
	ErrContextOverflow error = statusSentinel(StatusContextOverflow)
	ErrBufferTooSmall  error = statusSentinel(StatusBufferTooSmall)
	ErrCancelled       error = statusSentinel(StatusCancelled)
	ErrState           error = statusSentinel(StatusState)
	ErrInternal        error = statusSentinel(StatusInternal)
)

// ErrClosed is matched (with errors.Is) by the error of any call on a Model,
// Engine or Stream after its Close. Such errors also match ErrInvalidArgument,
// as the C API reports a released handle.
var ErrClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string { return "memwise: handle is closed" }

// Error is a failure reported by the C library (or by this package on its
// behalf): the status, the operation, and the detail message of mw_last_error
// or of the request's finish event.
type Error struct {
	Status  Status
	Op      string // the C function or Go method that failed, e.g. "mw_model_open"
	Message string // detail from the library; may be empty
	cause   error  // an underlying Go error (context.Canceled, ErrClosed), or nil
}

func (e *Error) Error() string {
	s := "memwise: " + e.Op + ": " + e.Status.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.cause != nil {
		s += " (" + e.cause.Error() + ")"
	}
	return s
}

// Is reports whether target is the sentinel of e's status.
func (e *Error) Is(target error) bool {
	s, ok := target.(statusSentinel)
	return ok && Status(s) == e.Status
}

// Unwrap returns the underlying cause, such as context.Canceled when a
// request was cancelled through its context.
func (e *Error) Unwrap() error { return e.cause }

func closedErr(op string) error {
	return &Error{Status: StatusInvalidArgument, Op: op, Message: "handle is closed", cause: ErrClosed}
}

// call runs one fallible C call and turns a failure into an *Error carrying
// mw_last_error. The goroutine is locked to its OS thread so that the
// thread-local detail is read on the thread that made the call.
func call(op string, f func() C.mw_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := f()
	if st == C.MW_OK {
		return nil
	}
	return &Error{Status: Status(st), Op: op, Message: C.GoString(C.mw_last_error())}
}

// Version returns the version string of the loaded C library, e.g. "0.1.0".
func Version() string { return C.GoString(C.mw_version_string()) }
