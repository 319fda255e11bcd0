package memwise

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestVersion(t *testing.T) {
	if v := Version(); v == "" {
		t.Fatal("empty version string")
	}
}

// The fixture's greedy continuations (llama.cpp's, reproduced by the C API)
// come out of the Go binding token for token, through each stream form.
func TestGreedyMatchesCAPI(t *testing.T) {
	m, e := openStories(t, &EngineOptions{ContextLength: 2048})
	cases := readGreedyCases(t, "greedy_stories260K.txt")
	for i, c := range cases {
		ids, err := m.Tokenize(c.prompt, c.addSpecial, c.parseSpecial)
		if err != nil {
			t.Fatalf("case %d: Tokenize: %v", i, err)
		}
		if !equalIDs(ids, c.promptIDs) {
			t.Fatalf("case %d: Tokenize(%q) = %v, want %v", i, c.prompt, ids, c.promptIDs)
		}
		for form := 0; form < 3; form++ {
			if err := checkGreedy(t, e, c, form); err != nil {
				t.Errorf("case %d form %d: %v", i, form, err)
			}
		}
	}
}

// The text of a greedy completion equals what the C library's own program
// (memwise run) prints for the same prompt. test.sh sets MEMWISE_CLI.
func TestGreedyTextMatchesCLI(t *testing.T) {
	cli := os.Getenv("MEMWISE_CLI")
	if cli == "" {
		t.Skip("SKIP: MEMWISE_CLI (path of the installed memwise program) not set")
	}
	path := findModel(t, storiesModel)
	_, e := openStories(t, nil)
	for _, prompt := range []string{"Once upon a time", "The cat sat on the mat. It was"} {
		out, err := exec.Command(cli, "run", path, "-p", prompt, "-n", "40", "--temp", "0", "--threads", "2").Output()
		if err != nil {
			t.Fatalf("%s run: %v", cli, err)
		}
		want := bytes.TrimSuffix(out, []byte("\n"))
		c, err := e.Complete(context.Background(), Request{Prompt: prompt, MaxTokens: 40})
		if err != nil {
			t.Fatalf("Complete: %v", err)
		}
		if !bytes.Equal(c.Text, want) {
			t.Errorf("prompt %q:\n Go:  %q\n CLI: %q", prompt, c.Text, want)
		}
		if c.Finish != FinishLength || len(c.Tokens) != 40 || c.GeneratedTokens != 40 {
			t.Errorf("prompt %q: finish %v, %d tokens, GeneratedTokens %d; want length, 40, 40",
				prompt, c.Finish, len(c.Tokens), c.GeneratedTokens)
		}
	}
}

// 32 goroutines generate at once on one engine that runs 4 sequences at a
// time; each gets exactly the greedy continuation of its prompt.
func TestConcurrentGoroutines(t *testing.T) {
	_, e := openStories(t, &EngineOptions{ContextLength: 256, MaxSequences: 4})
	cases := readGreedyCases(t, "greedy_stories260K.txt")
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c := cases[g%len(cases)]
			if err := checkGreedy(t, e, c, g); err != nil {
				errs <- fmt.Errorf("goroutine %d (case %d): %w", g, g%len(cases), err)
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStopString(t *testing.T) {
	_, e := openStories(t, nil)
	full, err := e.Complete(context.Background(), Request{Prompt: "Once upon a time", MaxTokens: 32})
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(full.Text, []byte("little"))
	if i < 0 {
		t.Skipf("SKIP: greedy text %q has no 'little' to stop at", full.Text)
	}
	c, err := e.Complete(context.Background(), Request{Prompt: "Once upon a time", MaxTokens: 32, Stop: []string{"little"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Finish != FinishStopString {
		t.Errorf("finish %v, want stop_string", c.Finish)
	}
	if !bytes.Equal(c.Text, full.Text[:i]) {
		t.Errorf("text %q, want %q", c.Text, full.Text[:i])
	}
}

func TestTokenizeDetokenize(t *testing.T) {
	m, _ := openStories(t, nil)
	info := m.Info()
	if info.VocabSize != 512 || info.Architecture != "llama" || info.BOS < 0 {
		t.Errorf("unexpected info %+v", info)
	}
	ids, err := m.Tokenize("Hello world", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 2 || ids[0] != info.BOS {
		t.Fatalf("ids %v: want BOS %d first", ids, info.BOS)
	}
	text, err := m.Detokenize(ids[1:], false)
	if err != nil {
		t.Fatal(err)
	}
	if string(text) != "Hello world" {
		t.Errorf("round trip gave %q", text)
	}
	// A long text needs more ids than the first guess of the buffer size.
	long := bytes.Repeat([]byte("a b c "), 200)
	ids, err = m.Tokenize(string(long), false, false)
	if err != nil || len(ids) < 600 {
		t.Errorf("long text: %d ids, %v", len(ids), err)
	}
	if _, err := m.Tokenize("", false, false); err != nil {
		t.Errorf("empty text: %v", err)
	}
}

// ChatFormat renders SmolLM2's ChatML as its Jinja template does (fixture
// tests/data/chat_smollm2.txt), and a chat request gets a reply.
func TestChatFormat(t *testing.T) {
	m, err := OpenModel(findModel(t, smolModel), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Info().ChatTemplate != "chatml" {
		t.Fatalf("chat template %q, want chatml", m.Info().ChatTemplate)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot(), "tests", "data", "chat_smollm2.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 || strings.HasPrefix(line, "#") {
			continue
		}
		msgJSON, err1 := hex.DecodeString(fields[0])
		want, err2 := hex.DecodeString(fields[1])
		var msgs []ChatMessage
		if err1 != nil || err2 != nil || json.Unmarshal(msgJSON, &msgs) != nil {
			t.Fatalf("bad fixture line %q", line)
		}
		got, err := m.ChatFormat(msgs, true)
		if err != nil {
			t.Fatalf("ChatFormat(%s): %v", msgJSON, err)
		}
		if got != string(want) {
			t.Errorf("ChatFormat(%s):\n got  %q\n want %q", msgJSON, got, want)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no chat fixture cases")
	}

	// A chat reply equals the one of the C library's own program (memwise run --chat).
	const question = "What is the capital of France?"
	req, err := m.ChatRequest([]ChatMessage{{Role: "user", Content: question}})
	if err != nil {
		t.Fatal(err)
	}
	req.MaxTokens = 24
	e, err := m.NewEngine(&EngineOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := e.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Text) == 0 {
		t.Fatal("empty chat reply")
	}
	cli := os.Getenv("MEMWISE_CLI")
	if cli == "" {
		t.Skip("SKIP: MEMWISE_CLI not set; chat reply not compared with memwise run --chat")
	}
	out, err := exec.Command(cli, "run", findModel(t, smolModel), "--chat", "-p", question, "-n", "24",
		"--temp", "0", "--threads", "2").Output()
	if err != nil {
		t.Fatalf("%s run --chat: %v", cli, err)
	}
	if want := bytes.TrimSuffix(out, []byte("\n")); !bytes.Equal(c.Text, want) {
		t.Errorf("chat reply:\n Go:  %q\n CLI: %q", c.Text, want)
	}
}
