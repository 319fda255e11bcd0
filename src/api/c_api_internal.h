// What the C API's source files share (c_api.cpp and the tool entry points in
// c_api_*.cpp): the model handle, the handle registry, error translation and
// option-struct reading. Internal to libmemwise; never installed.
#pragma once

#include <memwise/memwise.h>

#include "base/error.h"
#include "model/model.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

struct mw_model {
    std::shared_ptr<const mw::Model> model;
};

namespace mw::capi {

// Sets the calling thread's mw_last_error() text; returns status.
mw_status set_error(mw_status status, const std::string& message);

// Registry of live handles: a released or foreign pointer is an error, not a crash.
void register_handle(const void* h);
bool unregister_handle(const void* h);  // false when h was not live
bool is_live(const void* h);
// Throws MW_ERR_INVALID_ARGUMENT naming `what` when h is NULL or not live.
void check_handle(const void* h, const char* what);

// Copies s into a fixed char array, NUL-terminated, truncated to cap - 1 bytes.
void copy_str(char* dst, size_t cap, const std::string& s);

// Runs body, mapping every exception to a status and mw_last_error().
template <class F>
mw_status guarded(F&& body) {
    try {
        body();
        return MW_OK;
    } catch (const mw::Error& e) {
        return set_error(e.status(), e.what());
    } catch (const std::bad_alloc&) {
        return set_error(MW_ERR_OUT_OF_MEMORY, "out of memory");
    } catch (const std::exception& e) {
        return set_error(MW_ERR_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
        return set_error(MW_ERR_INTERNAL, "internal error");
    }
}

// Copies a caller's option struct over defaults, honouring its struct_size.
template <class T>
T read_options(const T* user, void (*init)(T*), const char* what) {
    T o;
    init(&o);
    if (!user) return o;
    if (user->struct_size < sizeof(uint32_t) || user->struct_size > 65536)
        mw::fail(MW_ERR_INVALID_ARGUMENT, std::string(what) + ".struct_size " + std::to_string(user->struct_size) +
                                              " is not valid (use " + what + "_init)");
    std::memcpy(&o, user, std::min<size_t>(user->struct_size, sizeof(T)));
    o.struct_size = sizeof(T);
    return o;
}

// Copies a filled result struct to the caller's, only as far as its struct_size.
template <class T>
void write_result(const T& full, T* user) {
    const size_t n = std::min<size_t>(user->struct_size, sizeof(T));
    std::memcpy(user, &full, n);
    user->struct_size = (uint32_t)n;
}

}  // namespace mw::capi
