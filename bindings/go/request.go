package memwise

// #include <stdlib.h>
// #include <string.h>
// #include <memwise/memwise.h>
import "C"

import (
	"math"
	"unsafe"
)

// RandomSeed asks for a seed drawn from a random source at submit
// (MW_SEED_RANDOM).
const RandomSeed uint64 = math.MaxUint64

// Sampling chooses the next token. The zero value is greedy decoding
// (temperature 0); DefaultSampling gives the C library's defaults.
type Sampling struct {
	Temperature   float32 // 0 = greedy; must be >= 0
	TopK          int     // 0 = off
	TopP          float32 // in (0, 1]; 0 or 1 = off
	MinP          float32 // in [0, 1]; 0 = off
	RepeatPenalty float32 // > 0; 0 or 1 = off
	RepeatLastN   int     // tokens the penalty looks back over; 0 = 64
	Seed          uint64  // a fixed seed makes sampling repeatable; RandomSeed for a random one
}

// DefaultSampling returns the C library's default sampling settings:
// temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, a random seed.
func DefaultSampling() Sampling {
	var o C.mw_request_options
	C.mw_request_options_init(&o)
	return Sampling{
		Temperature:   float32(o.temperature),
		TopK:          int(o.top_k),
		TopP:          float32(o.top_p),
		MinP:          float32(o.min_p),
		RepeatPenalty: float32(o.repeat_penalty),
		RepeatLastN:   int(o.repeat_last_n),
		Seed:          uint64(o.seed),
	}
}

// Request is one generation. Give exactly one of Prompt and Tokens.
// The zero values of the other fields are the defaults.
type Request struct {
	Prompt string  // text prompt, tokenized by the engine
	Tokens []int32 // or a prompt of token ids, used as they are (no BOS added)

	NoAddSpecial   bool // text prompts: do not add BOS/EOS (default: as the model's metadata says)
	NoParseSpecial bool // text prompts: treat "<|im_start|>" etc. as plain text (use for untrusted text)

	MaxTokens int      // tokens to generate; 0 = 256; negative = until the context is full
	Sampling  Sampling // zero value: greedy
	Stop      []string // stop strings: generation ends when one appears (it is not emitted)
	IgnoreEOS bool     // do not stop at end-of-sequence / end-of-turn tokens
	Priority  int      // higher is served first
}

// cRequest is a request's options in C memory: the C struct holds pointers,
// so neither it nor what it points to may be Go memory.
type cRequest struct {
	opts  *C.mw_request_options
	frees []unsafe.Pointer
}

func (c *cRequest) alloc(n uintptr) unsafe.Pointer {
	if n == 0 {
		n = 1
	}
	p := C.calloc(1, C.size_t(n))
	if p == nil {
		panic("memwise: out of C memory")
	}
	c.frees = append(c.frees, p)
	return p
}

func (c *cRequest) bytes(s string) *C.char {
	p := c.alloc(uintptr(len(s)))
	if len(s) > 0 {
		C.memcpy(p, unsafe.Pointer(unsafe.StringData(s)), C.size_t(len(s)))
	}
	return (*C.char)(p)
}

func (c *cRequest) free() {
	for _, p := range c.frees {
		C.free(p)
	}
	c.frees = nil
}

// toC builds the C options. The caller frees them after mw_submit, which
// copies everything it needs. Value checks are left to the C library so the
// errors are the same in every language.
func (r *Request) toC() *cRequest {
	c := &cRequest{}
	o := (*C.mw_request_options)(c.alloc(unsafe.Sizeof(C.mw_request_options{})))
	C.mw_request_options_init(o)
	c.opts = o
	if r.Prompt != "" {
		o.prompt = c.bytes(r.Prompt)
		o.prompt_len = C.size_t(len(r.Prompt))
	}
	if len(r.Tokens) > 0 {
		p := c.alloc(uintptr(len(r.Tokens)) * 4)
		copy(unsafe.Slice((*int32)(p), len(r.Tokens)), r.Tokens)
		o.prompt_tokens = (*C.int32_t)(p)
		o.n_prompt_tokens = C.size_t(len(r.Tokens))
	}
	o.add_special = cbool(!r.NoAddSpecial)
	o.parse_special = cbool(!r.NoParseSpecial)
	switch {
	case r.MaxTokens < 0:
		o.max_tokens = 0
	case r.MaxTokens > 0:
		o.max_tokens = C.uint32_t(min(r.MaxTokens, math.MaxUint32))
	}
	s := r.Sampling
	o.temperature = C.float(s.Temperature)
	o.top_k = C.int32_t(clampInt32(s.TopK))
	o.top_p = 1
	if s.TopP != 0 {
		o.top_p = C.float(s.TopP)
	}
	o.min_p = C.float(s.MinP)
	o.repeat_penalty = 1
	if s.RepeatPenalty != 0 {
		o.repeat_penalty = C.float(s.RepeatPenalty)
	}
	if s.RepeatLastN != 0 {
		o.repeat_last_n = C.int32_t(clampInt32(s.RepeatLastN))
	}
	o.seed = C.uint64_t(s.Seed)
	if len(r.Stop) > 0 {
		stops := unsafe.Slice((*C.mw_text)(c.alloc(uintptr(len(r.Stop))*unsafe.Sizeof(C.mw_text{}))), len(r.Stop))
		for i, st := range r.Stop {
			stops[i].data = c.bytes(st)
			stops[i].len = C.size_t(len(st))
		}
		o.stop = &stops[0]
		o.n_stop = C.size_t(len(r.Stop))
	}
	o.ignore_eos = cbool(r.IgnoreEOS)
	o.priority = C.int32_t(clampInt32(r.Priority))
	return c
}

func clampInt32(v int) int32 {
	return int32(max(min(v, math.MaxInt32), math.MinInt32))
}
