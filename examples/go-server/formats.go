package main

// completionFormat shapes /v1/completions answers ("text_completion").
type completionFormat struct {
	id      string
	created int64
	model   string
	prefix  string // the prompt, when echo was asked for
}

func (f *completionFormat) chunk(text string, finish *string) completionResponse {
	return completionResponse{ID: f.id, Object: "text_completion", Created: f.created, Model: f.model,
		Choices: []completionChoice{{Text: text, FinishReason: finish}}}
}

func (f *completionFormat) whole(text, finish string, u usage) any {
	r := f.chunk(f.prefix+text, &finish)
	r.Usage = &u
	return r
}

func (f *completionFormat) start() any {
	if f.prefix == "" {
		return nil
	}
	return f.chunk(f.prefix, nil)
}

func (f *completionFormat) delta(text string) any { return f.chunk(text, nil) }
func (f *completionFormat) end(finish string) any { return f.chunk("", &finish) }
func (f *completionFormat) usageChunk(u usage) any {
	r := completionResponse{ID: f.id, Object: "text_completion", Created: f.created, Model: f.model,
		Choices: []completionChoice{}, Usage: &u}
	return r
}

// chatFormat shapes /v1/chat/completions answers ("chat.completion" and
// "chat.completion.chunk").
type chatFormat struct {
	id      string
	created int64
	model   string
}

func (f *chatFormat) whole(text, finish string, u usage) any {
	return chatResponse{ID: f.id, Object: "chat.completion", Created: f.created, Model: f.model,
		Choices: []chatChoice{{Message: assistantMessage{Role: "assistant", Content: text}, FinishReason: finish}},
		Usage:   u}
}

func (f *chatFormat) chunk(d chatDelta, finish *string) chatChunk {
	return chatChunk{ID: f.id, Object: "chat.completion.chunk", Created: f.created, Model: f.model,
		Choices: []chatChunkChoice{{Delta: d, FinishReason: finish}}}
}

func (f *chatFormat) start() any {
	empty := ""
	return f.chunk(chatDelta{Role: "assistant", Content: &empty}, nil)
}

func (f *chatFormat) delta(text string) any { return f.chunk(chatDelta{Content: &text}, nil) }
func (f *chatFormat) end(finish string) any { return f.chunk(chatDelta{}, &finish) }
func (f *chatFormat) usageChunk(u usage) any {
	return chatChunk{ID: f.id, Object: "chat.completion.chunk", Created: f.created, Model: f.model,
		Choices: []chatChunkChoice{}, Usage: &u}
}
