// Package memwise is the Go binding of memwise, a memory-frugal LLM
// inference engine (libmemwise, a C library found with pkg-config).
//
//	model, err := memwise.OpenModel("model.gguf", nil)
//	engine, err := model.NewEngine(&memwise.EngineOptions{MaxSequences: 4})
//	stream, err := engine.Generate(ctx, memwise.Request{Prompt: "Once upon a time", MaxTokens: 64})
//	defer stream.Close()
//	for ev, err := range stream.All() {
//		if err != nil { return err }
//		os.Stdout.Write(ev.Text)
//	}
//
// Handles: a Model is immutable and shared; an Engine is safe for any number
// of goroutines; a Stream is read by one goroutine at a time. Close every
// handle when done (Close is idempotent, and closing a Model or Engine while
// streams are open is safe: their requests end as cancelled). Finalizers
// release forgotten handles only as a safety net.
//
// Token text is bytes ([]byte): a token may end inside a UTF-8 character;
// the engine holds such bytes back, so concatenated event texts are whole.
//
// Errors from the library are *Error values carrying the C status and
// message; errors.Is(err, memwise.ErrBudget) and the other Err* sentinels
// test the status.
//
// Build: the default build runs pkg-config (set PKG_CONFIG_PATH to
// PREFIX/lib/pkgconfig for a non-system install). With the build tag
// memwise_nopkgconfig it does not, and CGO_CFLAGS / CGO_LDFLAGS must point
// at the header and library instead.
package memwise
