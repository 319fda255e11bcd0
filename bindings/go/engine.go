package memwise

// #include <memwise/memwise.h>
import "C"

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// KVType is the element type of the KV cache.
type KVType int

const (
	KVF16 KVType = C.MW_KV_F16 // default: half the memory of F32
	KVF32 KVType = C.MW_KV_F32
)

// EngineOptions tunes NewEngine. Zero values give the C library's defaults.
type EngineOptions struct {
	Threads        int    // compute threads; 0 = number of physical cores
	ContextLength  int    // max tokens (prompt + generated) per sequence; 0 = min(training context, 4096)
	MaxSequences   int    // requests generating at once (more wait in a queue); 0 = 1
	KVBlockTokens  int    // tokens per KV block; 0 = 16
	KVType         KVType // KV cache element type; default F16
	MaxBatchTokens int    // tokens per forward step (prefill chunk); 0 = 512
	MemoryBudget   uint64 // bytes for KV blocks and activations; 0 = what MaxSequences full-context sequences need
}

// Engine runs requests on one model: it owns the KV cache, the compute
// threads and a scheduler that batches all running requests. It is safe to
// use from any number of goroutines. Close it when done.
type Engine struct {
	mu     sync.RWMutex // read: a C call on h is running; write: Close
	h      *C.mw_engine
	info   ModelInfo
	closed atomic.Bool // set by Close, so streams can say why they were cancelled
}

// NewEngine creates an engine over the model and starts its threads. opts may
// be nil. A MemoryBudget too small for one full-context sequence fails with
// ErrBudget; the message says the smallest budget that would work.
func (m *Model) NewEngine(opts *EngineOptions) (*Engine, error) {
	var o C.mw_engine_options
	C.mw_engine_options_init(&o)
	if opts != nil {
		fields := []struct {
			v   int
			dst *C.uint32_t
		}{
			{opts.Threads, &o.n_threads}, {opts.ContextLength, &o.n_ctx}, {opts.MaxSequences, &o.max_sequences},
			{opts.KVBlockTokens, &o.kv_block_tokens}, {opts.MaxBatchTokens, &o.max_batch_tokens},
		}
		for _, f := range fields {
			if f.v < 0 || f.v > math.MaxUint32 {
				return nil, &Error{Status: StatusInvalidArgument, Op: "NewEngine", Message: "engine option out of range"}
			}
			if f.v != 0 {
				*f.dst = C.uint32_t(f.v)
			}
		}
		o.kv_type = C.int32_t(opts.KVType)
		o.memory_budget_bytes = C.uint64_t(opts.MemoryBudget)
	}
	var h *C.mw_engine
	err := m.with("NewEngine", func(mh *C.mw_model) error {
		return call("mw_engine_create", func() C.mw_status { return C.mw_engine_create(mh, &o, &h) })
	})
	if err != nil {
		return nil, err
	}
	e := &Engine{h: h, info: m.info}
	runtime.SetFinalizer(e, (*Engine).Close)
	return e, nil
}

// ModelInfo describes the engine's model (available even after the Model
// was closed).
func (e *Engine) ModelInfo() ModelInfo { return e.info }

// Close stops the engine: requests still running finish at once with
// FinishCancelled (their streams end with an error matching ErrCancelled),
// the threads are joined and the memory is freed. Idempotent; safe while
// streams are open (they stay valid until their own Close).
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h != nil {
		e.closed.Store(true)
		C.mw_engine_destroy(e.h)
		e.h = nil
		runtime.SetFinalizer(e, nil)
	}
	return nil
}

// Generate submits a request and returns the stream of its events. The
// prompt and options are checked at once: bad values fail with
// ErrInvalidArgument, a prompt plus MaxTokens longer than the context with
// ErrContextOverflow, a request that can never fit the memory budget with
// ErrBudget. Cancelling ctx cancels the request promptly. Always Close the
// stream (All and a fully drained Events do it for you).
func (e *Engine) Generate(ctx context.Context, req Request) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Status: StatusCancelled, Op: "Generate", Message: "context done before submit", cause: err}
	}
	c := req.toC()
	defer c.free()
	var r *C.mw_request
	e.mu.RLock()
	if e.h == nil {
		e.mu.RUnlock()
		return nil, closedErr("Generate")
	}
	err := call("mw_submit", func() C.mw_status { return C.mw_submit(e.h, c.opts, &r) })
	e.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return newStream(ctx, e, r), nil
}

// Completion is the whole result of a request, as collected by Complete.
type Completion struct {
	Text            []byte  // all generated text (the stop string excluded)
	Tokens          []int32 // generated token ids (an end-of-generation token is not included)
	Finish          FinishReason
	PromptTokens    int
	GeneratedTokens int
}

// Complete runs a request to its end and returns everything it generated.
// On a cancelled or failed request it returns what was generated so far
// together with the error.
func (e *Engine) Complete(ctx context.Context, req Request) (*Completion, error) {
	s, err := e.Generate(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Collect()
}
