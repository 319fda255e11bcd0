// Command-line argument reading shared by every subcommand: options in
// "--name VALUE", "--name=VALUE" or "-x VALUE" form, positionals anywhere,
// "--" ends the options. Values are checked strictly (a number must be a whole
// number in range); the first problem is kept as the error message.
#pragma once

#include <stdint.h>

#include <string>

namespace cli {

class ArgReader {
public:
    // argv[0..argc) are the arguments after the subcommand's name.
    ArgReader(const char* command, int argc, char** argv);

    // Moves to the next argument. False at the end or once an error is recorded.
    bool next();
    // The current argument is a positional (not an option, or after "--").
    bool positional() const;
    const char* arg() const { return cur_; }

    // Each matcher returns true when the current argument is this option
    // (long_name like "--temp", short_name like "-n" or nullptr). When it
    // matches but the value is missing or malformed, an error is recorded.
    bool flag(const char* long_name, const char* short_name = nullptr);
    bool text(const char* long_name, const char* short_name, std::string* out);
    bool u32(const char* long_name, const char* short_name, uint32_t* out, uint32_t min = 0);
    bool i32(const char* long_name, const char* short_name, int32_t* out, int32_t min, int32_t max);
    bool u64(const char* long_name, const char* short_name, uint64_t* out);
    bool f32(const char* long_name, const char* short_name, float* out, float min, float max,
             bool min_exclusive = false);

    // Records "unknown option" for the current argument.
    void unknown();
    void fail(const std::string& message);

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    const char* command() const { return command_; }

private:
    bool matches(const char* long_name, const char* short_name);
    const char* take_value();

    const char* command_;
    int argc_;
    char** argv_;
    int index_ = -1;
    const char* cur_ = nullptr;
    std::string name_;            // option name of the current argument ("--temp")
    const char* inline_value_ = nullptr;  // value after '=' in "--temp=0.5"
    bool options_done_ = false;
    bool after_dashdash_ = false;
    std::string error_;
};

// Prints "memwise CMD: MESSAGE" and a pointer to --help on stderr; returns 2,
// the exit status of a usage error.
int usage_error(const char* command, const std::string& message);

}  // namespace cli
