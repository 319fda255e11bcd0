package memwise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// longRequest runs until the context is full unless something stops it.
var longRequest = Request{Prompt: "Once upon a time", MaxTokens: -1, IgnoreEOS: true}

// firstToken reads events until the first token event.
func firstToken(t *testing.T, s *Stream) {
	t.Helper()
	for {
		ev, err := s.Next()
		if err != nil || ev.Done() {
			t.Fatalf("stream ended before its first token: %v %v", ev.Finish, err)
		}
		if ev.Token >= 0 {
			return
		}
	}
}

// drain reads to the finish event and returns it, or gives up with an error
// after a deadline (cancellation must be prompt). Safe in any goroutine.
func drain(s *Stream, within time.Duration) (Event, error) {
	deadline := time.Now().Add(within)
	for {
		ev, err := s.Next()
		if ev.Done() || err != nil {
			return ev, err
		}
		if time.Now().After(deadline) {
			return ev, fmt.Errorf("no finish event within %v", within)
		}
	}
}

func TestCancelThroughContext(t *testing.T) {
	_, e := openStories(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := e.Generate(ctx, longRequest)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	firstToken(t, s)
	start := time.Now()
	cancel()
	ev, err := drain(s, 5*time.Second)
	if ev.Finish != FinishCancelled {
		t.Fatalf("finish %v, want cancelled", ev.Finish)
	}
	if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v: want ErrCancelled wrapping context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancellation took %v", d)
	}
	if _, err := s.Next(); err == nil {
		t.Error("Next after the finish: want io.EOF")
	}
	if s.Err() == nil {
		t.Error("Err() nil after a cancelled finish")
	}
}

// A deadline cancels too, also while nobody reads the stream (the channel
// form then reports the finish and closes).
func TestCancelByDeadlineWithChannel(t *testing.T) {
	_, e := openStories(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s, err := e.Generate(ctx, longRequest)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var last Event
	n := 0
	for ev := range s.Events() {
		last = ev
		n++
	}
	if !last.Done() || last.Finish != FinishCancelled {
		t.Fatalf("last event %+v, want a cancelled finish", last)
	}
	if err := s.Err(); !errors.Is(err, ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, want ErrCancelled wrapping DeadlineExceeded", err)
	}
}

func TestGenerateWithDoneContext(t *testing.T) {
	_, e := openStories(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Generate(ctx, Request{Prompt: "x"}); !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate with a done context: %v", err)
	}
}

// Breaking out of the iterator closes the stream (and cancels the request).
func TestBreakClosesStream(t *testing.T) {
	_, e := openStories(t, nil)
	s, err := e.Generate(context.Background(), longRequest)
	if err != nil {
		t.Fatal(err)
	}
	for range s.All() {
		break
	}
	if _, err := s.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after break: %v, want ErrClosed", err)
	}
}

func TestBadModelFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenModel(filepath.Join(dir, "missing.gguf"), nil); !errors.Is(err, ErrIO) {
		t.Errorf("missing file: %v, want ErrIO", err)
	}
	if _, err := OpenModel(dir, nil); !errors.Is(err, ErrIO) {
		t.Errorf("directory: %v, want ErrIO", err)
	}
	garbage := filepath.Join(dir, "garbage.gguf")
	if err := os.WriteFile(garbage, []byte("this is not a GGUF file at all, just text"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenModel(garbage, nil)
	if !errors.Is(err, ErrFormat) {
		t.Errorf("garbage: %v, want ErrFormat", err)
	}
	var me *Error
	if !errors.As(err, &me) || me.Status != StatusFormat || me.Message == "" || me.Op != "mw_model_open" {
		t.Errorf("garbage: error %#v should carry the status, op and message", err)
	}
	// A real model cut short: the header reads, the tensor data is missing.
	full, err := os.ReadFile(findModel(t, storiesModel))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "truncated.gguf")
	if err := os.WriteFile(cut, full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenModel(cut, nil); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "MW_ERR_FORMAT") {
		t.Errorf("truncated: %v, want ErrFormat", err)
	}
}

func TestBadRequests(t *testing.T) {
	m, e := openStories(t, &EngineOptions{ContextLength: 64})
	ctx := context.Background()
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"negative temperature", Request{Prompt: "Once", Sampling: Sampling{Temperature: -1}}, ErrInvalidArgument},
		{"top_p above 1", Request{Prompt: "Once", Sampling: Sampling{Temperature: 1, TopP: 2}}, ErrInvalidArgument},
		{"empty prompt", Request{}, ErrInvalidArgument},
		{"text and tokens", Request{Prompt: "Once", Tokens: []int32{1}}, ErrInvalidArgument},
		{"token out of range", Request{Tokens: []int32{1, 100000}}, ErrInvalidArgument},
		{"empty stop string", Request{Prompt: "Once", Stop: []string{""}}, ErrInvalidArgument},
		{"prompt too long", Request{Tokens: make([]int32, 100), MaxTokens: 1}, ErrContextOverflow},
		{"prompt plus max tokens too long", Request{Prompt: "Once upon a time", MaxTokens: 100}, ErrContextOverflow},
	}
	for _, tc := range tests {
		s, err := e.Generate(ctx, tc.req)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The engine still works after refusing bad requests.
	if c, err := e.Complete(ctx, Request{Prompt: "Once", MaxTokens: 4}); err != nil || len(c.Tokens) == 0 {
		t.Errorf("good request after bad ones: %v", err)
	}
	// A budget too small for one sequence.
	if _, err := m.NewEngine(&EngineOptions{MemoryBudget: 4096, Threads: 1}); !errors.Is(err, ErrBudget) {
		t.Errorf("tiny budget: %v, want ErrBudget", err)
	}
	if _, err := m.NewEngine(&EngineOptions{MaxSequences: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative option: %v, want ErrInvalidArgument", err)
	}
	// stories260K has no chat template.
	if _, err := m.ChatFormat([]ChatMessage{{Role: "user", Content: "hi"}}, true); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ChatFormat without template: %v, want ErrUnsupported", err)
	}
	if _, err := m.Detokenize([]int32{-5}, false); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Detokenize bad id: %v, want ErrInvalidArgument", err)
	}
}

func TestCloseTwice(t *testing.T) {
	m, e := openStories(t, nil)
	s, err := e.Generate(context.Background(), Request{Prompt: "Once", MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []interface{ Close() error }{s, s, e, e, m, m} {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if _, err := m.Tokenize("x", false, false); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Tokenize after Close: %v", err)
	}
	if _, err := m.NewEngine(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("NewEngine after Close: %v", err)
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Generate after Close: %v", err)
	}
	if m.Info().VocabSize != 512 {
		t.Error("Info after Close lost")
	}
}

// Closing the engine while streams are open ends them as cancelled; closing
// the model first does not disturb the engine.
func TestCloseEngineWhileStreaming(t *testing.T) {
	m, e := openStories(t, &EngineOptions{MaxSequences: 2})
	if err := m.Close(); err != nil { // the engine keeps the C model alive
		t.Fatal(err)
	}
	ctx := context.Background()
	reading, err := e.Generate(ctx, longRequest)
	if err != nil {
		t.Fatal(err)
	}
	defer reading.Close()
	idle, err := e.Generate(ctx, longRequest) // nobody reads this one before the close
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	queued, err := e.Generate(ctx, longRequest) // waits for a free sequence slot
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()
	firstToken(t, reading)

	type result struct {
		ev  Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		ev, err := drain(reading, 10*time.Second)
		done <- result{ev, err}
	}()
	time.Sleep(20 * time.Millisecond) // let the reader block inside Next
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.ev.Finish != FinishCancelled || !errors.Is(r.err, ErrCancelled) {
		t.Errorf("reading stream: finish %v, err %v; want cancelled", r.ev.Finish, r.err)
	}
	for name, s := range map[string]*Stream{"idle": idle, "queued": queued} {
		ev, err := drain(s, 5*time.Second)
		if ev.Finish != FinishCancelled || !errors.Is(err, ErrCancelled) {
			t.Errorf("%s stream: finish %v, err %v; want cancelled", name, ev.Finish, err)
		}
	}
}

// Closing a stream while another goroutine is blocked reading it ends the
// read with a cancelled finish instead of a crash.
func TestCloseStreamWhileReading(t *testing.T) {
	_, e := openStories(t, &EngineOptions{MaxSequences: 1})
	ctx := context.Background()
	blocker, err := e.Generate(ctx, longRequest) // holds the only sequence slot
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	firstToken(t, blocker)
	s, err := e.Generate(ctx, longRequest) // queued: its reader waits
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := drain(s, 10*time.Second)
		errc <- err
	}()
	time.Sleep(150 * time.Millisecond)
	s.Close()
	s.Close()
	if err := <-errc; !errors.Is(err, ErrCancelled) {
		t.Errorf("reader got %v, want ErrCancelled", err)
	}
	blocker.Close()
	// The engine serves new requests after all this.
	if _, err := e.Complete(ctx, Request{Prompt: "Once", MaxTokens: 4}); err != nil {
		t.Errorf("request after closes: %v", err)
	}
}
