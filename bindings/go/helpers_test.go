package memwise

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	storiesModel = "stories260K.gguf"
	smolModel    = "SmolLM2-135M-Instruct.Q4_1.gguf"
)

// repoRoot is the memwise checkout this package lives in (bindings/go).
func repoRoot() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return filepath.Join("..", "..")
	}
	return abs
}

// findModel looks where the C tests look: $MEMWISE_TEST_MODELS,
// ../shared/models next to the repository, $MEMWISE_MODEL_CACHE,
// ~/.cache/memwise/models. It skips the test when the model is absent.
func findModel(t testing.TB, name string) string {
	t.Helper()
	dirs := []string{os.Getenv("MEMWISE_TEST_MODELS"), filepath.Join(repoRoot(), "..", "shared", "models"),
		os.Getenv("MEMWISE_MODEL_CACHE")}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "memwise", "models"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	t.Skipf("SKIP: model %s not found ($MEMWISE_TEST_MODELS, ../shared/models, ~/.cache/memwise/models); run scripts/setup.sh", name)
	return ""
}

// greedyCase is one line of tests/data/greedy_*.txt (llama.cpp's greedy
// continuation, which the C API reproduces token for token).
type greedyCase struct {
	addSpecial, parseSpecial bool
	prompt                   string
	promptIDs, generated     []int32
}

func parseIDs(t testing.TB, s string) []int32 {
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			t.Fatalf("bad token id %q: %v", f, err)
		}
		ids = append(ids, int32(v))
	}
	return ids
}

func readGreedyCases(t testing.TB, file string) []greedyCase {
	t.Helper()
	path := filepath.Join(repoRoot(), "tests", "data", file)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	defer f.Close()
	var cases []greedyCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 5 {
			t.Fatalf("fixture %s: want 5 fields, got %d: %q", file, len(fields), line)
		}
		text, err := hex.DecodeString(fields[2])
		if err != nil {
			t.Fatalf("fixture %s: bad hex: %v", file, err)
		}
		cases = append(cases, greedyCase{
			addSpecial:   fields[0] == "1",
			parseSpecial: fields[1] == "1",
			prompt:       string(text),
			promptIDs:    parseIDs(t, fields[3]),
			generated:    parseIDs(t, fields[4]),
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("fixture %s is empty", path)
	}
	return cases
}

// expected returns the tokens memwise emits for the case, and whether the
// fixture ends with an end-of-generation token (which finishes the request
// instead of being emitted).
func (c greedyCase) expected(info ModelInfo) (want []int32, endsWithEOG bool) {
	want = c.generated
	if n := len(want); n > 0 && (want[n-1] == info.EOS || want[n-1] == info.EOT) {
		return want[:n-1], true
	}
	return want, false
}

// checkGreedy generates the case's continuation through one of the three
// stream forms and compares the token ids with the fixture.
func checkGreedy(t testing.TB, e *Engine, c greedyCase, form int) error {
	want, eog := c.expected(e.ModelInfo())
	// With an end-of-generation token, leave room for it; else stop exactly at the fixture's end.
	req := Request{Tokens: c.promptIDs, MaxTokens: len(want) + btoi(eog)}
	s, err := e.Generate(context.Background(), req)
	if err != nil {
		return err
	}
	defer s.Close()
	var got []int32
	var final Event
	switch form % 3 {
	case 0:
		for ev, err := range s.All() {
			if err != nil {
				return err
			}
			if ev.Done() {
				final = ev
			} else {
				got = append(got, ev.Token)
			}
		}
	case 1:
		for ev := range s.Events() {
			if ev.Done() {
				final = ev
			} else {
				got = append(got, ev.Token)
			}
		}
		if err := s.Err(); err != nil {
			return err
		}
	case 2:
		for {
			ev, err := s.Next()
			if err != nil {
				return err
			}
			if ev.Done() {
				final = ev
				break
			}
			got = append(got, ev.Token)
		}
	}
	if !equalIDs(got, want) {
		return &mismatch{got: got, want: want}
	}
	wantFinish := FinishLength
	if eog {
		wantFinish = FinishEOS
	}
	if final.Finish != wantFinish {
		return &mismatch{got: got, want: want, finish: final.Finish, wantFinish: wantFinish}
	}
	if final.PromptTokens != len(c.promptIDs) || final.GeneratedTokens != len(want)+btoi(eog) {
		return fmt.Errorf("finish event counts: %d prompt, %d generated tokens; want %d, %d",
			final.PromptTokens, final.GeneratedTokens, len(c.promptIDs), len(want)+btoi(eog))
	}
	return nil
}

type mismatch struct {
	got, want          []int32
	finish, wantFinish FinishReason
}

func (m *mismatch) Error() string {
	return "greedy tokens " + idsString(m.got) + " want " + idsString(m.want) +
		" (finish " + m.finish.String() + ", want " + m.wantFinish.String() + ")"
}

func idsString(ids []int32) string {
	parts := make([]string, len(ids))
	for i, v := range ids {
		parts[i] = strconv.Itoa(int(v))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// openStories opens stories260K (or skips) and creates an engine on it; both
// are closed when the test ends.
func openStories(t testing.TB, opts *EngineOptions) (*Model, *Engine) {
	t.Helper()
	m, err := OpenModel(findModel(t, storiesModel), nil)
	if err != nil {
		t.Fatalf("OpenModel: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if opts == nil {
		opts = &EngineOptions{}
	}
	if opts.Threads == 0 {
		opts.Threads = 2
	}
	e, err := m.NewEngine(opts)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return m, e
}
