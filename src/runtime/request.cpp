#include "runtime/request.h"

namespace mw {

void Request::deliver(RequestEvent ev) {
    const bool is_finish = ev.kind == MW_EVENT_FINISHED;
    if (callback) {
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
        callback(user_data, handle, &e);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
    if (is_finish) {
        finished_ = true;
        finish_ = ev;
    }
    // With a callback, token events went there; only the finish is queued.
    if (!callback || is_finish) queue_.push_back(std::move(ev));
    cv_.notify_all();
}

bool Request::finished() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return finished_;
}

bool Request::next(int32_t timeout_ms, RequestEvent* out) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto ready = [&] { return !queue_.empty() || (finished_ && queue_.empty()); };
    if (timeout_ms < 0) {
        cv_.wait(lock, ready);
    } else if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) {
        return false;
    }
    if (!queue_.empty()) {
        *out = std::move(queue_.front());
        queue_.pop_front();
    } else {
        *out = finish_;
    }
    return true;
}

}  // namespace mw
