// memwise: the command-line tool. Dispatches to one subcommand; every
// subcommand uses only the public C API (memwise/memwise.h).
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "memwise/memwise.h"

namespace {

struct Command {
    const char* name;
    int (*run)(int argc, char** argv);
    const char* summary;
};

const Command kCommands[] = {
    {"run", cli::cmd_run, "generate a completion of a prompt, streamed to stdout"},
    {"chat", cli::cmd_chat, "chat interactively using the model's chat template"},
    {"inspect", cli::cmd_inspect, "describe a model file: geometry, tensors, tokenizer, KV cost"},
    {"bench", cli::cmd_bench, "measure load time, prefill and decode speed, peak memory"},
    {"eval", cli::cmd_eval, "perplexity; KL and top-1 agreement against a teacher or an export"},
    {"distill-export", cli::cmd_distill_export, "write a teacher's top-K next-token distributions for distillation"},
    {"quantize", cli::cmd_quantize, "quantize a model: one type, importance-weighted, or mixed precision"},
    {"prune", cli::cmd_prune, "remove the least important FFN channels and attention heads"},
};

void print_usage(FILE* f) {
    fprintf(f,
            "Usage: memwise COMMAND [options]\n"
            "\n"
            "memwise runs GGUF language models with as little memory as the job allows.\n"
            "\n"
            "Commands:\n");
    for (const Command& c : kCommands) fprintf(f, "  %-15s %s\n", c.name, c.summary);
    fprintf(f,
            "\n"
            "Options:\n"
            "  -h, --help      show this help\n"
            "  -V, --version   show the version\n"
            "\n"
            "Run 'memwise COMMAND --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char* cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        // "memwise help run" is "memwise run --help".
        if (strcmp(cmd, "help") == 0 && argc >= 3) {
            for (const Command& c : kCommands) {
                if (strcmp(argv[2], c.name) == 0) {
                    char help[] = "--help";
                    char* args[] = {help, nullptr};
                    return c.run(1, args);
                }
            }
            fprintf(stderr, "memwise: unknown command '%s'\n", argv[2]);
            return 2;
        }
        print_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        // The library actually loaded may be newer than the header we built with.
        printf("memwise %s (library %s)\n", MW_VERSION_STRING, mw_version_string());
        return 0;
    }
    for (const Command& c : kCommands) {
        if (strcmp(cmd, c.name) == 0) return c.run(argc - 2, argv + 2);
    }
    if (cmd[0] == '-')
        fprintf(stderr, "memwise: unknown option '%s'\n", cmd);
    else
        fprintf(stderr, "memwise: unknown command '%s'\n", cmd);
    fprintf(stderr, "Try 'memwise --help'.\n");
    return 2;
}
