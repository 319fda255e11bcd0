package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// metrics counts what the server did, for GET /metrics (Prometheus text
// format), next to the engine's memory report (weights, KV cache,
// activations, heap, process RSS/PSS).
type metrics struct {
	mu              sync.Mutex
	requests        map[[2]string]uint64 // {endpoint, outcome} -> count
	promptTokens    atomic.Uint64
	generatedTokens atomic.Uint64
	active          atomic.Int64
}

func newMetrics() metrics { return metrics{requests: map[[2]string]uint64{}} }

func (m *metrics) request(endpoint, outcome string) {
	m.mu.Lock()
	m.requests[[2]string{endpoint, outcome}]++
	m.mu.Unlock()
}

func (m *metrics) tokens(prompt, generated int) {
	m.promptTokens.Add(uint64(prompt))
	m.generatedTokens.Add(uint64(generated))
}

func label(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) }

func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	info := s.engine.ModelInfo()
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP memwise_model_info The model served (value 1).\n# TYPE memwise_model_info gauge\n")
	fmt.Fprintf(&b, "memwise_model_info{name=\"%s\",architecture=\"%s\",file_type=\"%s\",chat_template=\"%s\"} 1\n",
		label(s.name), label(info.Architecture), label(info.FileType), label(info.ChatTemplate))
	gauges := []struct {
		name, help string
		v          uint64
	}{
		{"memwise_model_parameters", "Weight elements of the model.", info.Params},
		{"memwise_model_file_bytes", "Size of the model file.", info.FileBytes},
		{"memwise_model_weight_bytes", "Bytes of tensor data (memory-mapped, shared).", info.WeightBytes},
		{"memwise_model_vocab_size", "Vocabulary size.", uint64(info.VocabSize)},
		{"memwise_model_kv_bytes_per_token", "KV cache bytes one token costs at F16.", uint64(info.KVBytesPerToken)},
	}
	for _, g := range gauges {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", g.name, g.help, g.name, g.name, g.v)
	}
	if mem, err := s.engine.Memory(); err == nil {
		memGauges := []struct {
			name, help string
			v          uint64
		}{
			{"memwise_memory_weights_mapped_bytes", "Model file mapping (shared, file-backed).", mem.WeightsMapped},
			{"memwise_memory_weights_resident_bytes", "Pages of the model mapping in RAM.", mem.WeightsResident},
			{"memwise_memory_kv_resident_bytes", "KV pool pages in RAM.", mem.KVResident},
			{"memwise_memory_kv_used_bytes", "KV blocks held by sequences.", mem.KVUsed},
			{"memwise_memory_kv_free_bytes", "KV blocks free.", mem.KVFree},
			{"memwise_memory_activations_bytes", "Step arena pages in RAM (high-water).", mem.ActivationsHighWater},
			{"memwise_memory_scratch_bytes", "Sampling, request state and tokenizer tables.", mem.Scratch},
			{"memwise_memory_engine_bytes", "The engine's own anonymous memory in RAM.", mem.EngineTotal},
			{"memwise_process_rss_bytes", "Resident set of the process.", mem.ProcessRSS},
			{"memwise_process_pss_bytes", "Proportional set size of the process.", mem.ProcessPSS},
			{"memwise_process_anonymous_bytes", "Anonymous (private) memory of the process.", mem.ProcessAnonymous},
		}
		for _, g := range memGauges {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", g.name, g.help, g.name, g.name, g.v)
		}
	}
	fmt.Fprintf(&b, "# HELP memwise_requests_active Requests being generated or queued.\n# TYPE memwise_requests_active gauge\n")
	fmt.Fprintf(&b, "memwise_requests_active %d\n", s.metrics.active.Load())

	fmt.Fprintf(&b, "# HELP memwise_requests_total Requests served, by endpoint and outcome.\n# TYPE memwise_requests_total counter\n")
	s.metrics.mu.Lock()
	keys := make([][2]string, 0, len(s.metrics.requests))
	for k := range s.metrics.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(&b, "memwise_requests_total{endpoint=\"%s\",outcome=\"%s\"} %d\n", k[0], k[1], s.metrics.requests[k])
	}
	s.metrics.mu.Unlock()

	fmt.Fprintf(&b, "# HELP memwise_prompt_tokens_total Prompt tokens processed.\n# TYPE memwise_prompt_tokens_total counter\n")
	fmt.Fprintf(&b, "memwise_prompt_tokens_total %d\n", s.metrics.promptTokens.Load())
	fmt.Fprintf(&b, "# HELP memwise_generated_tokens_total Tokens generated.\n# TYPE memwise_generated_tokens_total counter\n")
	fmt.Fprintf(&b, "memwise_generated_tokens_total %d\n", s.metrics.generatedTokens.Load())

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}
