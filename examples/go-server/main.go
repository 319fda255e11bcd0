// Command go-server is a small OpenAI-compatible HTTP service over memwise:
//
//	POST /v1/completions        text completion (streaming with server-sent events, or JSON)
//	POST /v1/chat/completions   chat completion with the model's chat template
//	GET  /v1/models             the one model served
//	GET  /healthz               liveness
//	GET  /metrics               Prometheus text: model info, requests, tokens
//
// Run: go-server -model model.gguf [-addr 127.0.0.1:8080] [-threads N] [-ctx N] [-max-seqs N]
// With -addr 127.0.0.1:0 the kernel picks a free port; the log line
// "listening on http://HOST:PORT" says which.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"memwise.dev/memwise"
)

func main() {
	modelPath := flag.String("model", "", "GGUF model file (required)")
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (port 0: any free port)")
	threads := flag.Int("threads", 0, "compute threads (0: number of physical cores)")
	ctxLen := flag.Int("ctx", 0, "context length per sequence in tokens (0: min(training context, 4096))")
	maxSeqs := flag.Int("max-seqs", 4, "requests generating at once; more wait in a queue")
	name := flag.String("name", "", "model name reported to clients (default: the file name without .gguf)")
	flag.Parse()
	if *modelPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(log.LstdFlags | log.Lmsgprefix)
	log.SetPrefix("go-server: ")

	model, err := memwise.OpenModel(*modelPath, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()
	engine, err := model.NewEngine(&memwise.EngineOptions{Threads: *threads, ContextLength: *ctxLen, MaxSequences: *maxSeqs})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(*modelPath), ".gguf")
	}

	srv := newServer(model, engine, *name)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	httpServer := &http.Server{Handler: srv.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("model %s (%s, %s), %d sequences at once", *name, model.Info().Architecture, model.Info().FileType, *maxSeqs)
	log.Printf("listening on http://%s", ln.Addr())

	// SIGINT/SIGTERM: stop accepting, let running requests finish (bounded),
	// then the deferred Close calls free the engine and the model.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Print(err)
		}
	case <-ctx.Done():
		log.Print("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := httpServer.Shutdown(shutdownCtx); err != nil {
			log.Print(err)
		}
	}
}
