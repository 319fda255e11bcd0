package memwise

// #include <stdlib.h>
// #include <memwise/memwise.h>
import "C"

import (
	"context"
	"io"
	"iter"
	"runtime"
	"sync"
	"unsafe"
)

// FinishReason says why a request ended.
type FinishReason int

const (
	FinishNone       FinishReason = C.MW_FINISH_NONE        // a token event: not finished
	FinishEOS        FinishReason = C.MW_FINISH_EOS         // end-of-sequence or end-of-turn token
	FinishLength     FinishReason = C.MW_FINISH_LENGTH      // MaxTokens reached
	FinishStopString FinishReason = C.MW_FINISH_STOP_STRING // a stop string was generated
	FinishContext    FinishReason = C.MW_FINISH_CONTEXT     // the sequence filled the context
	FinishCancelled  FinishReason = C.MW_FINISH_CANCELLED   // cancelled: context, Cancel, Close, engine closed
	FinishError      FinishReason = C.MW_FINISH_ERROR       // failed; the stream's error says why
)

func (f FinishReason) String() string {
	switch f {
	case FinishNone:
		return "none"
	case FinishEOS:
		return "eos"
	case FinishLength:
		return "length"
	case FinishStopString:
		return "stop_string"
	case FinishContext:
		return "context"
	case FinishCancelled:
		return "cancelled"
	case FinishError:
		return "error"
	}
	return "unknown"
}

// Event is one step of a request: a generated token, or the finish.
// Concatenating Text over all events, the finish event included, gives the
// whole output.
type Event struct {
	Token           int32        // the generated token id; -1 on the finish event
	Text            []byte       // bytes this event makes final; may be empty (held back inside a UTF-8 character or a possible stop string)
	Finish          FinishReason // FinishNone on token events
	PromptTokens    int          // prompt length in tokens
	GeneratedTokens int          // tokens generated so far
}

// Done reports whether this is the finish event, the last of a stream.
func (ev Event) Done() bool { return ev.Finish != FinishNone }

// pollMs bounds each wait in mw_request_next, so that a Close from another
// goroutine or a missed context cancellation is noticed within this time.
const pollMs = 100

// Stream is the sequence of events of one request. Read it with one of Next,
// All or Events, from one goroutine at a time; Cancel and Close may be
// called from any goroutine. Close it when done: it cancels the request if
// it still runs and frees the C handle.
type Stream struct {
	engine *Engine // keeps the engine (and its finalizer) away while the stream is used
	ctx    context.Context
	stop   func() bool // unregisters the context watcher

	pullMu sync.Mutex // one consumer at a time (Next)

	hmu sync.RWMutex // read: mw_request_next / mw_request_cancel on req; write: release
	req *C.mw_request
	ev  *C.mw_event // C memory: the event mw_request_next fills

	resMu    sync.Mutex // the result, readable while a consumer waits in Next
	finished bool
	final    Event
	err      error

	closeOnce sync.Once
	closed    chan struct{}
	closing   bool // set by Close under resMu: a cancellation is then reported as ErrClosed

	chOnce sync.Once
	ch     chan Event
}

func newStream(ctx context.Context, e *Engine, r *C.mw_request) *Stream {
	s := &Stream{engine: e, ctx: ctx, req: r, closed: make(chan struct{})}
	s.ev = (*C.mw_event)(C.calloc(1, C.size_t(unsafe.Sizeof(C.mw_event{}))))
	s.ev.struct_size = C.uint32_t(unsafe.Sizeof(C.mw_event{}))
	// Cancel at once when the context ends, even while nobody reads.
	s.stop = context.AfterFunc(ctx, func() { s.Cancel() })
	runtime.SetFinalizer(s, (*Stream).Close)
	return s
}

// Cancel asks the engine to stop the request; it then finishes within one
// forward step with FinishCancelled. Harmless after the finish or Close.
func (s *Stream) Cancel() {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	if s.req != nil {
		C.mw_request_cancel(s.req)
	}
}

// Close cancels the request if it still runs and frees its C handle. It is
// idempotent and may be called from any goroutine, also while another one
// reads the stream: that reader then gets the finish event (FinishCancelled)
// with an error matching ErrCancelled and ErrClosed.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.resMu.Lock()
		s.closing = true
		s.resMu.Unlock()
		close(s.closed)
	})
	s.Cancel()
	s.release()
	return nil
}

// release frees the C request; it waits for a mw_request_next in progress
// (which returns within pollMs, or at once after a cancel).
func (s *Stream) release() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.req == nil {
		return
	}
	s.stop()
	C.mw_request_release(s.req)
	C.free(unsafe.Pointer(s.ev))
	s.req, s.ev = nil, nil
	runtime.SetFinalizer(s, nil)
}

// Next waits for the next event. The finish event (ev.Done()) comes last,
// with a nil error for a normal finish (EOS, length, stop string, context
// full) or an *Error for a cancelled (ErrCancelled, wrapping ctx.Err() when
// the context did it) or failed request. After the finish event Next returns
// io.EOF.
func (s *Stream) Next() (Event, error) {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	s.resMu.Lock()
	done := s.finished
	s.resMu.Unlock()
	if done {
		return Event{Token: -1}, io.EOF
	}
	for {
		ev, got, err := s.pull()
		if err != nil {
			if !got {
				ev = Event{Finish: FinishError}
			}
			return s.finish(ev, err)
		}
		if !got {
			if s.ctx.Err() != nil {
				s.Cancel() // normally done already by the context watcher
			}
			continue
		}
		if ev.Done() {
			return s.finish(ev, nil)
		}
		return ev, nil
	}
}

// pull makes one bounded mw_request_next call. got is false on a timeout or
// when no event could be read. A failed request's finish event comes with an
// *Error holding the message (which is not put in Text).
func (s *Stream) pull() (ev Event, got bool, err error) {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	if s.req == nil {
		return Event{}, false, closedErr("Stream.Next")
	}
	st := C.mw_request_next(s.req, pollMs, s.ev)
	if st == C.MW_TIMEOUT {
		return Event{}, false, nil
	}
	if st != C.MW_OK {
		return Event{}, false, &Error{Status: Status(st), Op: "mw_request_next"}
	}
	c := s.ev
	ev = Event{
		Token:           int32(c.token),
		Finish:          FinishReason(c.finish_reason),
		PromptTokens:    int(c.n_prompt_tokens),
		GeneratedTokens: int(c.n_generated_tokens),
	}
	if c.kind != C.MW_EVENT_FINISHED {
		ev.Finish = FinishNone
	} else if ev.Finish == FinishNone {
		ev.Finish = FinishError // defensive: a finish always has a reason
	}
	text := C.GoBytes(unsafe.Pointer(c.text), C.int(c.text_len))
	if ev.Finish == FinishError {
		status := Status(c.status)
		if status == StatusOK {
			status = StatusInternal
		}
		return ev, true, &Error{Status: status, Op: "request", Message: string(text)}
	}
	ev.Text = text
	return ev, true, nil
}

// finish records the final event and error, frees the C handle (the finish
// event is kept here, so the handle is no longer needed) and returns them.
func (s *Stream) finish(ev Event, err error) (Event, error) {
	ev.Token = -1
	s.resMu.Lock()
	closing := s.closing
	s.resMu.Unlock()
	if isStatus(err, StatusInvalidArgument) && closing {
		// The handle was released by Close before the finish was read.
		ev.Finish = FinishCancelled
		err = &Error{Status: StatusCancelled, Op: "Stream.Next", Message: "stream closed", cause: ErrClosed}
	} else if ev.Finish == FinishCancelled && err == nil {
		err = s.cancelError()
	}
	s.resMu.Lock()
	s.finished, s.final, s.err = true, ev, err
	s.resMu.Unlock()
	s.release()
	return ev, err
}

// cancelError says who cancelled the request.
func (s *Stream) cancelError() error {
	e := &Error{Status: StatusCancelled, Op: "Stream.Next", Message: "request cancelled"}
	s.resMu.Lock()
	closing := s.closing
	s.resMu.Unlock()
	switch {
	case s.ctx.Err() != nil:
		e.Message, e.cause = "request cancelled through its context", context.Cause(s.ctx)
	case closing:
		e.Message, e.cause = "stream closed", ErrClosed
	case s.engine.closed.Load():
		e.Message, e.cause = "engine closed", ErrClosed
	}
	return e
}

// All returns an iterator over the events, the finish event last (see Next
// for its error). Breaking out of the loop early closes the stream, which
// cancels the request.
//
//	for ev, err := range stream.All() { ... }
func (s *Stream) All() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := s.Next()
			if err == io.EOF {
				return
			}
			if !yield(ev, err) {
				s.Close()
				return
			}
			if ev.Done() {
				return
			}
		}
	}
}

// Events returns a channel of the events, the finish event last; the channel
// is closed after it. Err then gives the stream's error. Close the stream to
// stop early (the channel is closed then too).
func (s *Stream) Events() <-chan Event {
	s.chOnce.Do(func() {
		s.ch = make(chan Event, 16)
		go func() {
			defer close(s.ch)
			for {
				ev, err := s.Next()
				if err == io.EOF {
					return
				}
				select {
				case s.ch <- ev:
				case <-s.closed:
					return
				}
				if ev.Done() {
					return
				}
			}
		}()
	})
	return s.ch
}

// Err returns the stream's final error once it has finished (nil for a normal
// finish, and nil while it still runs).
func (s *Stream) Err() error {
	s.resMu.Lock()
	defer s.resMu.Unlock()
	return s.err
}

// Final returns the finish event and true once the stream has finished.
func (s *Stream) Final() (Event, bool) {
	s.resMu.Lock()
	defer s.resMu.Unlock()
	return s.final, s.finished
}

// Collect reads the rest of the stream and returns it as one Completion,
// together with the stream's error.
func (s *Stream) Collect() (*Completion, error) {
	c := &Completion{}
	for ev, err := range s.All() {
		c.Text = append(c.Text, ev.Text...)
		if !ev.Done() {
			c.Tokens = append(c.Tokens, ev.Token)
		}
		c.Finish = ev.Finish
		c.PromptTokens, c.GeneratedTokens = ev.PromptTokens, ev.GeneratedTokens
		if err != nil {
			return c, err
		}
	}
	if f, ok := s.Final(); ok && c.Finish == FinishNone {
		// Collect on a stream already finished: report how it ended.
		c.Finish = f.Finish
		return c, s.Err()
	}
	return c, nil
}
