// mw::Error: the one exception type used inside the engine. It carries the
// mw_status the C API will return and a message naming what went wrong. The C
// API layer catches it (and everything else) at the boundary.
#pragma once

#include <memwise/memwise.h>

#include <stdexcept>
#include <string>

namespace mw {

class Error : public std::runtime_error {
public:
    Error(mw_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    mw_status status() const { return status_; }

private:
    mw_status status_;
};

[[noreturn]] inline void fail(mw_status status, const std::string& message) { throw Error(status, message); }

}  // namespace mw
