#include "runtime/request.h"

#include <new>
#include <utility>

namespace mw {

namespace {
void copy_event(const RequestEvent& from, RequestEvent* to) {
    to->kind = from.kind;
    to->token = from.token;
    to->text.assign(from.text);  // reuses the slot's capacity
    to->finish_reason = from.finish_reason;
    to->status = from.status;
    to->n_prompt_tokens = from.n_prompt_tokens;
    to->n_generated_tokens = from.n_generated_tokens;
}
}  // namespace

mw_event to_mw_event(const RequestEvent& ev) {
    mw_event e;
    e.struct_size = sizeof(mw_event);
    e.kind = ev.kind;
    e.token = ev.token;
    e.text = ev.text.data();
    e.text_len = ev.text.size();
    e.finish_reason = ev.finish_reason;
    e.status = ev.status;
    e.n_prompt_tokens = ev.n_prompt_tokens;
    e.n_generated_tokens = ev.n_generated_tokens;
    return e;
}

void Request::push_locked(const RequestEvent& ev) {
    if (count_ == ring_.size()) {  // full: double, keeping order (rare; warm-up only)
        std::pmr::vector<RequestEvent> bigger(ring_.size() * 2, ring_.get_allocator());
        for (size_t i = 0; i < count_; i++) bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
        ring_ = std::move(bigger);
        head_ = 0;
    }
    copy_event(ev, &ring_[(head_ + count_) % ring_.size()]);
    count_++;
}

void Request::deliver(const RequestEvent& ev) {
    const bool is_finish = ev.kind == MW_EVENT_FINISHED;
    if (callback) {
        const mw_event e = to_mw_event(ev);
        callback(user_data, handle, &e);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    try {
        if (is_finish) {
            finished_ = true;
            finish_ = ev;
        }
        // With a callback, token events went there; only the finish is queued.
        if (!callback || is_finish) push_locked(ev);
    } catch (const std::bad_alloc&) {
        // Queueing needed memory that is not there: the request ends here, with
        // a finish event that needs none (no text). The engine thread goes on.
        finished_ = true;
        finish_.kind = MW_EVENT_FINISHED;
        finish_.token = -1;
        finish_.text.clear();
        finish_.finish_reason = MW_FINISH_ERROR;
        finish_.status = MW_ERR_OUT_OF_MEMORY;
        finish_.n_prompt_tokens = ev.n_prompt_tokens;
        finish_.n_generated_tokens = ev.n_generated_tokens;
    }
    cv_.notify_all();
}

bool Request::finished() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return finished_;
}

bool Request::next(int32_t timeout_ms, RequestEvent* out) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto ready = [&] { return count_ > 0 || finished_; };
    if (timeout_ms < 0) {
        cv_.wait(lock, ready);
    } else if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) {
        return false;
    }
    if (count_ > 0) {
        std::swap(*out, ring_[head_]);
        head_ = (head_ + 1) % ring_.size();
        count_--;
    } else {
        copy_event(finish_, out);
    }
    return true;
}

}  // namespace mw
