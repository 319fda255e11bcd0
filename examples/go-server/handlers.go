package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"memwise.dev/memwise"
)

const maxBodyBytes = 8 << 20

type server struct {
	model   *memwise.Model // kept open for the chat template
	engine  *memwise.Engine
	name    string
	metrics metrics
}

func newServer(model *memwise.Model, engine *memwise.Engine, name string) *server {
	return &server{model: model, engine: engine, name: name, metrics: newMetrics()}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/completions", s.completions)
	mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	return mux
}

// toRequest maps the shared OpenAI fields onto a memwise request.
// OpenAI's defaults: temperature 1, top_p 1, a random seed.
func (s *server) toRequest(p *samplingParams, maxTokens *int, defaultMax int) (memwise.Request, error) {
	var req memwise.Request
	if p.N != nil && *p.N != 1 {
		return req, errors.New("only n=1 is supported")
	}
	req.MaxTokens = defaultMax
	if maxTokens != nil {
		if *maxTokens < 1 {
			return req, errors.New("max_tokens must be at least 1")
		}
		req.MaxTokens = *maxTokens
	}
	req.Sampling = memwise.Sampling{Temperature: 1, TopP: 1, Seed: memwise.RandomSeed}
	if p.Temperature != nil {
		req.Sampling.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		req.Sampling.TopP = *p.TopP
	}
	if p.Seed != nil {
		req.Sampling.Seed = *p.Seed
	}
	req.Stop = p.Stop
	return req, nil
}

func (s *server) completions(w http.ResponseWriter, r *http.Request) {
	var body completionRequest
	if !decode(w, r, &body) {
		s.metrics.request("completions", "bad_request")
		return
	}
	req, err := s.toRequest(&body.samplingParams, body.MaxTokens, 16)
	if err == nil && len(body.Prompt) != 1 {
		err = errors.New("prompt: give exactly one string")
	}
	if err != nil {
		s.metrics.request("completions", "bad_request")
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req.Prompt = body.Prompt[0]
	// Client text: special-token text ("</s>") stays plain text.
	req.NoParseSpecial = true
	prefix := ""
	if body.Echo {
		prefix = req.Prompt
	}
	s.run(w, r, "completions", req, body.Stream, body.StreamOptions != nil && body.StreamOptions.IncludeUsage,
		&completionFormat{id: newID("cmpl-"), created: time.Now().Unix(), model: s.name, prefix: prefix})
}

func (s *server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var body chatRequest
	if !decode(w, r, &body) {
		s.metrics.request("chat", "bad_request")
		return
	}
	maxTokens := body.MaxCompletionTokens
	if maxTokens == nil {
		maxTokens = body.MaxTokens
	}
	// Without max_tokens a reply runs to its end-of-turn token or the context's end.
	req, err := s.toRequest(&body.samplingParams, maxTokens, -1)
	if err == nil && len(body.Messages) == 0 {
		err = errors.New("messages: at least one message is required")
	}
	if err != nil {
		s.metrics.request("chat", "bad_request")
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	msgs := make([]memwise.ChatMessage, len(body.Messages))
	for i, m := range body.Messages {
		msgs[i] = memwise.ChatMessage{Role: m.Role, Content: string(m.Content)}
	}
	chat, err := s.model.ChatRequest(msgs)
	if err != nil {
		s.metrics.request("chat", "bad_request")
		writeAPIError(w, err)
		return
	}
	req.Prompt, req.NoAddSpecial = chat.Prompt, chat.NoAddSpecial
	s.run(w, r, "chat", req, body.Stream, body.StreamOptions != nil && body.StreamOptions.IncludeUsage,
		&chatFormat{id: newID("chatcmpl-"), created: time.Now().Unix(), model: s.name})
}

// format writes one endpoint's response shapes.
type format interface {
	whole(text string, finish string, u usage) any
	start() any // the first streamed chunk, or nil
	delta(text string) any
	end(finish string) any
	usageChunk(u usage) any
}

// run generates the request and answers as one JSON document or as a stream
// of server-sent events. A client that goes away cancels the request through
// r.Context().
func (s *server) run(w http.ResponseWriter, r *http.Request, endpoint string, req memwise.Request,
	streaming, includeUsage bool, f format) {
	stream, err := s.engine.Generate(r.Context(), req)
	if err != nil {
		s.metrics.request(endpoint, outcome(err))
		writeAPIError(w, err)
		return
	}
	defer stream.Close()
	s.metrics.active.Add(1)
	defer s.metrics.active.Add(-1)

	if !streaming {
		c, err := stream.Collect()
		s.metrics.tokens(c.PromptTokens, c.GeneratedTokens)
		s.metrics.request(endpoint, outcome(err))
		if err != nil {
			writeAPIError(w, err)
			return
		}
		u := usage{c.PromptTokens, c.GeneratedTokens, c.PromptTokens + c.GeneratedTokens}
		writeJSON(w, http.StatusOK, f.whole(string(c.Text), finishReason(c.Finish), u))
		return
	}

	sse, ok := newSSE(w)
	if !ok {
		s.metrics.request(endpoint, "error")
		writeError(w, http.StatusInternalServerError, "streaming unsupported by this connection")
		return
	}
	if first := f.start(); first != nil {
		sse.send(first)
	}
	for ev, err := range stream.All() {
		if len(ev.Text) > 0 {
			sse.send(f.delta(string(ev.Text)))
		}
		if !ev.Done() {
			continue
		}
		s.metrics.tokens(ev.PromptTokens, ev.GeneratedTokens)
		s.metrics.request(endpoint, outcome(err))
		if err != nil {
			if r.Context().Err() == nil { // the client is still there: tell it
				sse.send(errorBody(err.Error(), "server_error"))
			}
			return
		}
		sse.send(f.end(finishReason(ev.Finish)))
		if includeUsage {
			sse.send(f.usageChunk(usage{ev.PromptTokens, ev.GeneratedTokens, ev.PromptTokens + ev.GeneratedTokens}))
		}
		sse.done()
	}
}

// finishReason maps memwise's reasons onto OpenAI's.
func finishReason(f memwise.FinishReason) string {
	switch f {
	case memwise.FinishLength, memwise.FinishContext:
		return "length"
	default:
		return "stop"
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, memwise.ErrCancelled):
		return "cancelled"
	case errors.Is(err, memwise.ErrInvalidArgument), errors.Is(err, memwise.ErrContextOverflow),
		errors.Is(err, memwise.ErrUnsupported), errors.Is(err, memwise.ErrBudget):
		return "bad_request"
	}
	return "error"
}

func (s *server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   []map[string]any{{"id": s.name, "object": "model", "created": 0, "owned_by": "memwise"}},
	})
}

// decode reads a JSON body, answering 400 itself when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Printf("writing response: %v", err)
	}
}

func errorBody(message, typ string) apiError {
	var e apiError
	e.Error.Message, e.Error.Type = message, typ
	return e
}

func writeError(w http.ResponseWriter, status int, message string) {
	typ := "invalid_request_error"
	if status >= 500 {
		typ = "server_error"
	}
	writeJSON(w, status, errorBody(message, typ))
}

// writeAPIError answers a memwise error: the client's fault is a 400.
func writeAPIError(w http.ResponseWriter, err error) {
	switch outcome(err) {
	case "bad_request":
		writeError(w, http.StatusBadRequest, err.Error())
	case "cancelled":
		// The client went away (or the server is stopping): nobody reads an answer.
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func newID(prefix string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano())
	}
	return prefix + hex.EncodeToString(b)
}
