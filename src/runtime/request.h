// Request: what a caller submitted, and the queue of events the engine sends
// back. Shared (std::shared_ptr) between the caller's handle and the engine,
// so either side may finish first.
#pragma once

#include "model/lora_adapter.h"
#include "runtime/sampler.h"

#include <memwise/memwise.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <string>
#include <vector>

namespace mw {

struct Sequence;

// The n requests of one mw_submit_n: the first member admitted computes the
// prompt; the others fork from it (sharing its prompt blocks) once it has.
struct ForkGroup {
    Sequence* leader = nullptr;  // engine thread only: the member computing or holding the prompt
};

struct RequestEvent {
    int32_t kind = MW_EVENT_TOKEN;
    int32_t token = -1;
    std::string text;
    int32_t finish_reason = MW_FINISH_NONE;
    mw_status status = MW_OK;
    uint32_t n_prompt_tokens = 0;
    uint32_t n_generated_tokens = 0;
};

// The C view of an event; its text points into ev (valid while ev is).
mw_event to_mw_event(const RequestEvent& ev);

class Request {
public:
    // The event ring comes from mr. A request may outlive its engine, so the
    // C API gives it the process heap (the default), not the engine's.
    explicit Request(std::pmr::memory_resource* mr = std::pmr::get_default_resource()) : ring_(16, mr) {}

    // Set at submit, read-only afterwards.
    std::vector<int32_t> prompt;
    SamplingParams sampling;
    uint32_t max_tokens = 0;      // 0 = until the context is full
    bool ignore_eos = false;
    int32_t priority = 0;
    uint64_t arrival = 0;         // submission order
    std::chrono::steady_clock::time_point submitted;  // for aging in admission
    std::shared_ptr<ForkGroup> group;  // mw_submit_n members; null otherwise
    std::vector<std::string> stops;
    mw_event_callback callback = nullptr;
    void* user_data = nullptr;
    const mw_request* handle = nullptr;  // what the callback is given
    // LoRA adapter the request runs with (null: the base model); the request
    // keeps it alive, so closing the adapter handle while it runs is safe.
    std::shared_ptr<const LoraAdapter> adapter;
    LoraBinding lora;          // {adapter.get(), scale}: what the executor reads (set by Engine::submit)
    // Part of the request's prefix identity: K/V computed under an adapter
    // differ from the base model's, so a prefix cache must key blocks by tokens
    // AND this. 0 without an adapter, else the adapter's id mixed with the scale.
    uint64_t adapter_key = 0;

    std::atomic<bool> cancel_requested{false};

    // Engine side: deliver an event (to the callback and/or the queue). The
    // event is copied into a reused slot: once the slots' text buffers have
    // grown to the longest piece, delivering allocates nothing. Never throws:
    // when queueing runs out of memory the request finishes at once with
    // MW_FINISH_ERROR / MW_ERR_OUT_OF_MEMORY (check finished() after).
    void deliver(const RequestEvent& ev);
    bool finished() const;

    // Caller side: wait up to timeout_ms (<0 forever) for the next event and
    // swap it into *out (whose buffers go back into the ring, so a steady
    // pull loop allocates nothing). Returns false on timeout. After the finish
    // event, returns it again.
    bool next(int32_t timeout_ms, RequestEvent* out);

private:
    void push_locked(const RequestEvent& ev);

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::pmr::vector<RequestEvent> ring_;  // grows by doubling when full
    size_t head_ = 0, count_ = 0;
    bool finished_ = false;
    RequestEvent finish_;
};

}  // namespace mw
