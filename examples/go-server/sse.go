package main

import (
	"encoding/json"
	"net/http"
)

// sseWriter writes server-sent events: one "data: JSON" line per chunk, each
// flushed at once, and "data: [DONE]" at the end, as OpenAI's streaming does.
type sseWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
}

func newSSE(w http.ResponseWriter) (*sseWriter, bool) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sseWriter{w: w, flusher: f}, true
}

// send writes one event; a write error means the client left, which cancels
// the request through its context, so it is not reported here.
func (s *sseWriter) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	s.w.Write([]byte("data: "))
	s.w.Write(b)
	s.w.Write([]byte("\n\n"))
	s.flusher.Flush()
}

func (s *sseWriter) done() {
	s.w.Write([]byte("data: [DONE]\n\n"))
	s.flusher.Flush()
}
