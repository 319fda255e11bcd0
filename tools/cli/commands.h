// The subcommands. Each takes the arguments after its name and returns the
// process exit status (0 ok, 1 failure, 2 usage error, 130 interrupted).
#pragma once

namespace cli {

int cmd_run(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_distill_export(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_prune(int argc, char** argv);

}  // namespace cli
