package memwise

// #include <stdlib.h>
// #include <memwise/memwise.h>
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// ModelOptions tunes OpenModel. The zero value (or nil) gives the defaults.
type ModelOptions struct {
	// Prefault touches every weight page at open (MAP_POPULATE), trading a
	// slower open for no page faults during the first requests.
	Prefault bool
}

// ModelInfo describes an open model (mw_model_info).
type ModelInfo struct {
	Architecture    string // "llama", "qwen2"
	Name            string // general.name, or ""
	GGUFVersion     int
	VocabSize       int
	ContextTrain    int // context length the model was trained for
	EmbeddingSize   int
	Layers          int
	Heads           int // layer 0
	HeadsKV         int // layer 0
	FFNSize         int // layer 0
	HeadDim         int
	Params          uint64 // number of weight elements
	FileBytes       uint64
	WeightBytes     uint64
	BOS             int32 // -1 if none
	EOS             int32 // -1 if none
	EOT             int32 // end-of-turn token, -1 if none
	KVBytesPerToken int   // KV cache bytes per token at F16
	AddBOS          bool  // the tokenizer adds BOS to text prompts
	TokenizerModel  string
	TokenizerPre    string
	ChatTemplate    string // "chatml", "llama2", "llama3", "mistral", or "" when not recognised
	FileType        string // dominant weight type, e.g. "Q4_1"
}

// ChatMessage is one turn of a conversation for ChatFormat.
type ChatMessage struct {
	Role    string // "system", "user", "assistant"
	Content string
}

// Model is an open GGUF model file: memory-mapped, immutable, and safe to use
// from any number of goroutines. Close it when done; engines created from it
// keep the C model alive on their own, so it may be closed right after
// NewEngine.
type Model struct {
	mu   sync.RWMutex // read: a C call on h is running; write: Close
	h    *C.mw_model
	info ModelInfo
}

// OpenModel opens and validates a GGUF model file. opts may be nil.
// A missing or unreadable file fails with ErrIO, a malformed one with
// ErrFormat, an unsupported architecture or tensor type with ErrUnsupported.
func OpenModel(path string, opts *ModelOptions) (*Model, error) {
	var o C.mw_model_options
	C.mw_model_options_init(&o)
	if opts != nil && opts.Prefault {
		o.prefault = 1
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var h *C.mw_model
	if err := call("mw_model_open", func() C.mw_status { return C.mw_model_open(cpath, &o, &h) }); err != nil {
		return nil, err
	}
	m := &Model{h: h}
	if err := m.readInfo(); err != nil {
		C.mw_model_close(h)
		return nil, err
	}
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

// Close releases the model. It is idempotent, and safe while engines created
// from the model still run: the C library frees the weights when the last of
// them is closed. Later calls on the Model fail with ErrClosed.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		C.mw_model_close(m.h)
		m.h = nil
		runtime.SetFinalizer(m, nil)
	}
	return nil
}

// Info describes the model. It stays available after Close.
func (m *Model) Info() ModelInfo { return m.info }

func (m *Model) readInfo() error {
	var ci C.mw_model_info
	ci.struct_size = C.uint32_t(unsafe.Sizeof(ci))
	if err := call("mw_model_info_get", func() C.mw_status { return C.mw_model_info_get(m.h, &ci) }); err != nil {
		return err
	}
	m.info = ModelInfo{
		Architecture:    C.GoString(&ci.architecture[0]),
		Name:            C.GoString(&ci.name[0]),
		GGUFVersion:     int(ci.gguf_version),
		VocabSize:       int(ci.n_vocab),
		ContextTrain:    int(ci.n_ctx_train),
		EmbeddingSize:   int(ci.n_embd),
		Layers:          int(ci.n_layer),
		Heads:           int(ci.n_head),
		HeadsKV:         int(ci.n_head_kv),
		FFNSize:         int(ci.n_ff),
		HeadDim:         int(ci.head_dim),
		Params:          uint64(ci.n_params),
		FileBytes:       uint64(ci.file_bytes),
		WeightBytes:     uint64(ci.weight_bytes),
		BOS:             int32(ci.bos_token),
		EOS:             int32(ci.eos_token),
		EOT:             int32(ci.eot_token),
		KVBytesPerToken: int(ci.kv_bytes_per_token),
		AddBOS:          ci.add_bos != 0,
		TokenizerModel:  C.GoString(&ci.tokenizer_model[0]),
		TokenizerPre:    C.GoString(&ci.tokenizer_pre[0]),
		ChatTemplate:    C.GoString(&ci.chat_template[0]),
		FileType:        C.GoString(&ci.file_type[0]),
	}
	return nil
}

// with runs f with the C handle while holding the read lock, so Close waits
// for f to return before it releases the handle.
func (m *Model) with(op string, f func(h *C.mw_model) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.h == nil {
		return closedErr(op)
	}
	return f(m.h)
}

// Tokenize converts text to token ids. addSpecial adds BOS/EOS as the model's
// metadata says; parseSpecial recognises special tokens written as text
// ("<|im_start|>"): pass false for untrusted input.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	var out []int32
	err := m.with("Tokenize", func(h *C.mw_model) error {
		ctext := C.CString(text) // a copy: the length is passed, so embedded NULs are fine
		defer C.free(unsafe.Pointer(ctext))
		ids := make([]int32, len(text)+2) // a guess that nearly always fits; the call says when not
		for {
			var n C.size_t
			var ptr *C.int32_t
			if len(ids) > 0 {
				ptr = (*C.int32_t)(unsafe.Pointer(&ids[0]))
			}
			err := call("mw_tokenize", func() C.mw_status {
				return C.mw_tokenize(h, ctext, C.size_t(len(text)), cbool(addSpecial), cbool(parseSpecial),
					ptr, C.size_t(len(ids)), &n)
			})
			if err == nil {
				out = ids[:n]
				return nil
			}
			if !isStatus(err, StatusBufferTooSmall) || int(n) <= len(ids) {
				return err
			}
			ids = make([]int32, n)
		}
	})
	return out, err
}

// Detokenize converts token ids to bytes. The bytes of a partial sequence
// may end inside a UTF-8 character. renderSpecial writes special tokens as
// their text; otherwise they are skipped.
func (m *Model) Detokenize(tokens []int32, renderSpecial bool) ([]byte, error) {
	var out []byte
	err := m.with("Detokenize", func(h *C.mw_model) error {
		var tptr *C.int32_t
		if len(tokens) > 0 {
			tptr = (*C.int32_t)(unsafe.Pointer(&tokens[0]))
		}
		return growBytes(8*len(tokens)+16, func(buf *C.char, capacity C.size_t, n *C.size_t) error {
			return call("mw_detokenize", func() C.mw_status {
				return C.mw_detokenize(h, tptr, C.size_t(len(tokens)), cbool(renderSpecial), buf, capacity, n)
			})
		}, &out)
	})
	return out, err
}

// ChatFormat formats a conversation with the model's chat template.
// addGenerationPrompt appends the assistant header so the model continues
// with the reply. Submit the result with special-token parsing on (the
// default). Fails with ErrUnsupported when the model has no template memwise
// recognises (ModelInfo.ChatTemplate is "").
func (m *Model) ChatFormat(messages []ChatMessage, addGenerationPrompt bool) (string, error) {
	var out []byte
	err := m.with("ChatFormat", func(h *C.mw_model) error {
		// The message array holds pointers, so it and the strings live in C memory.
		n := len(messages)
		var cmsgs *C.mw_chat_message
		if n > 0 {
			cmsgs = (*C.mw_chat_message)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.mw_chat_message{}))))
			defer C.free(unsafe.Pointer(cmsgs))
		}
		arr := unsafe.Slice(cmsgs, n)
		total := 0
		for i, msg := range messages {
			arr[i].role = C.CString(msg.Role)
			arr[i].role_len = C.size_t(len(msg.Role))
			arr[i].content = C.CString(msg.Content)
			arr[i].content_len = C.size_t(len(msg.Content))
			defer C.free(unsafe.Pointer(arr[i].role))
			defer C.free(unsafe.Pointer(arr[i].content))
			total += len(msg.Role) + len(msg.Content)
		}
		return growBytes(total+256, func(buf *C.char, capacity C.size_t, tl *C.size_t) error {
			return call("mw_chat_format", func() C.mw_status {
				return C.mw_chat_format(h, cmsgs, C.size_t(n), cbool(addGenerationPrompt), buf, capacity, tl)
			})
		}, &out)
	})
	return string(out), err
}

// growBytes calls f with a C buffer, growing it once when the call reports
// MW_ERR_BUFFER_TOO_SMALL with the needed size, and copies the result to *out.
func growBytes(guess int, f func(buf *C.char, capacity C.size_t, n *C.size_t) error, out *[]byte) error {
	capacity := guess
	for {
		buf := (*C.char)(C.malloc(C.size_t(capacity) + 1))
		var n C.size_t
		err := f(buf, C.size_t(capacity), &n)
		if err == nil {
			*out = C.GoBytes(unsafe.Pointer(buf), C.int(n))
			C.free(unsafe.Pointer(buf))
			return nil
		}
		C.free(unsafe.Pointer(buf))
		if !isStatus(err, StatusBufferTooSmall) || int(n) <= capacity {
			return err
		}
		capacity = int(n)
	}
}

func isStatus(err error, s Status) bool {
	e, ok := err.(*Error)
	return ok && e.Status == s
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// ChatRequest formats messages with the model's chat template (with the
// assistant header appended) and returns a Request for the reply: special
// tokens in the template are parsed, and BOS is not added a second time when
// the template already writes it. Only the prompt fields are set.
func (m *Model) ChatRequest(messages []ChatMessage) (Request, error) {
	prompt, err := m.ChatFormat(messages, true)
	if err != nil {
		return Request{}, err
	}
	req := Request{Prompt: prompt}
	if m.info.AddBOS && m.info.BOS >= 0 {
		bos, err := m.Detokenize([]int32{m.info.BOS}, true)
		if err != nil {
			return Request{}, err
		}
		req.NoAddSpecial = len(bos) > 0 && len(prompt) >= len(bos) && prompt[:len(bos)] == string(bos)
	}
	return req, nil
}
