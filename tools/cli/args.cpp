#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace cli {

ArgReader::ArgReader(const char* command, int argc, char** argv)
    : command_(command), argc_(argc), argv_(argv) {}

bool ArgReader::next() {
    if (!ok()) return false;
    if (++index_ >= argc_) return false;
    cur_ = argv_[index_];
    after_dashdash_ = false;
    inline_value_ = nullptr;
    name_.clear();
    if (!options_done_ && strcmp(cur_, "--") == 0) {
        options_done_ = true;
        return next();
    }
    if (options_done_) {
        after_dashdash_ = true;
        return true;
    }
    if (cur_[0] == '-' && cur_[1] != '\0') {
        const char* eq = cur_[1] == '-' ? strchr(cur_, '=') : nullptr;
        if (eq) {
            name_.assign(cur_, size_t(eq - cur_));
            inline_value_ = eq + 1;
        } else {
            name_ = cur_;
        }
    }
    return true;
}

// "-" alone is a positional (conventionally stdin); so is anything after "--".
bool ArgReader::positional() const { return after_dashdash_ || name_.empty(); }

bool ArgReader::matches(const char* long_name, const char* short_name) {
    if (positional() || !ok()) return false;
    if (long_name && name_ == long_name) return true;
    if (short_name && name_ == short_name) return true;
    return false;
}

const char* ArgReader::take_value() {
    if (inline_value_) return inline_value_;
    if (index_ + 1 >= argc_) {
        fail(name_ + " needs a value");
        return nullptr;
    }
    return argv_[++index_];
}

bool ArgReader::flag(const char* long_name, const char* short_name) {
    if (!matches(long_name, short_name)) return false;
    if (inline_value_) fail(name_ + " takes no value");
    return true;
}

bool ArgReader::text(const char* long_name, const char* short_name, std::string* out) {
    if (!matches(long_name, short_name)) return false;
    const char* v = take_value();
    if (v) *out = v;
    return true;
}

// Whole decimal number in [min, max], nothing else in the string.
static bool parse_integer(const char* s, long long min, unsigned long long max, unsigned long long* out,
                          long long* out_signed) {
    if (!*s) return false;
    char* end = nullptr;
    errno = 0;
    if (s[0] == '-') {
        long long v = strtoll(s, &end, 10);
        if (errno || *end || v < min) return false;
        *out_signed = v;
        *out = 0;
        return true;
    }
    if (s[0] < '0' || s[0] > '9') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    *out_signed = v > (unsigned long long)INT64_MAX ? INT64_MAX : (long long)v;
    return true;
}

bool ArgReader::u32(const char* long_name, const char* short_name, uint32_t* out, uint32_t min) {
    if (!matches(long_name, short_name)) return false;
    std::string name = name_;
    const char* v = take_value();
    if (!v) return true;
    unsigned long long u;
    long long s;
    if (!parse_integer(v, 0, UINT32_MAX, &u, &s) || u < min) {
        fail(name + " expects a whole number from " + std::to_string(min) + " to " +
             std::to_string(UINT32_MAX) + ", got '" + v + "'");
        return true;
    }
    *out = uint32_t(u);
    return true;
}

bool ArgReader::i32(const char* long_name, const char* short_name, int32_t* out, int32_t min, int32_t max) {
    if (!matches(long_name, short_name)) return false;
    std::string name = name_;
    const char* v = take_value();
    if (!v) return true;
    unsigned long long u;
    long long s;
    if (!parse_integer(v, min, (unsigned long long)(max < 0 ? 0 : max), &u, &s) || s < min || s > max) {
        fail(name + " expects a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
             ", got '" + v + "'");
        return true;
    }
    *out = int32_t(s);
    return true;
}

bool ArgReader::u64(const char* long_name, const char* short_name, uint64_t* out) {
    if (!matches(long_name, short_name)) return false;
    std::string name = name_;
    const char* v = take_value();
    if (!v) return true;
    unsigned long long u;
    long long s;
    if (!parse_integer(v, 0, UINT64_MAX, &u, &s)) {
        fail(name + " expects a whole number from 0 to " + std::to_string(UINT64_MAX) + ", got '" + v + "'");
        return true;
    }
    *out = uint64_t(u);
    return true;
}

bool ArgReader::f32(const char* long_name, const char* short_name, float* out, float min, float max,
                    bool min_exclusive) {
    if (!matches(long_name, short_name)) return false;
    std::string name = name_;
    const char* v = take_value();
    if (!v) return true;
    char* end = nullptr;
    errno = 0;
    double d = strtod(v, &end);
    bool bad = !*v || errno || *end || !isfinite(d) || d > max || d < min || (min_exclusive && d == min);
    if (bad) {
        char range[96];
        snprintf(range, sizeof range, "%s%g, %g]", min_exclusive ? "(" : "[", double(min), double(max));
        fail(name + " expects a number in " + range + ", got '" + v + "'");
        return true;
    }
    *out = float(d);
    return true;
}

void ArgReader::unknown() {
    if (positional())
        fail(std::string("unexpected argument '") + cur_ + "'");
    else
        fail("unknown option '" + name_ + "'");
}

void ArgReader::fail(const std::string& message) {
    if (error_.empty()) error_ = message;
}

int usage_error(const char* command, const std::string& message) {
    fprintf(stderr, "memwise %s: %s\nTry 'memwise %s --help'.\n", command, message.c_str(), command);
    return 2;
}

}  // namespace cli
