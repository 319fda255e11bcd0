// memwise inspect: what a model file holds and what running it costs.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "common.h"

namespace cli {

static const char* const kCommand = "inspect";

static void print_help() {
    printf("Usage: memwise inspect MODEL [options]\n"
           "\n"
           "Describes the GGUF model MODEL: architecture, size, geometry, tensor types,\n"
           "tokenizer, and the KV cache memory a context costs. Nothing is computed;\n"
           "the file is only mapped.\n"
           "\n"
           "Options:\n"
           "  --ctx N                show the KV cost of a context of N tokens\n"
           "                         (default: 4096 and the training context)\n"
           "  --budget SIZE          what fits in SIZE bytes of RAM (e.g. 1GiB, 512MiB,\n"
           "                         2000000000): weights + step arena + KV, as sequences\n"
           "                         of 512 ... 8192 tokens\n"
           "  --tensors              list every tensor (name, type, shape, bytes)\n"
           "  -h, --help             show this help\n");
}

// "1GiB", "512MiB", "64KiB", "1G", "100M", or plain bytes. 0 on a malformed value.
static uint64_t parse_size(const std::string& text) {
    char* end = nullptr;
    const double v = strtod(text.c_str(), &end);
    if (end == text.c_str() || !(v > 0)) return 0;
    const std::string unit(end);
    double mult = 1;
    if (unit == "" || unit == "B") mult = 1;
    else if (unit == "KiB" || unit == "K" || unit == "k") mult = 1024.0;
    else if (unit == "MiB" || unit == "M") mult = 1024.0 * 1024;
    else if (unit == "GiB" || unit == "G") mult = 1024.0 * 1024 * 1024;
    else if (unit == "KB") mult = 1e3;
    else if (unit == "MB") mult = 1e6;
    else if (unit == "GB") mult = 1e9;
    else return 0;
    return (uint64_t)(v * mult);
}

// "123.4 MiB" style, binary units.
static std::string human_bytes(uint64_t n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = double(n);
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    char buf[64];
    if (u == 0)
        snprintf(buf, sizeof buf, "%" PRIu64 " B", n);
    else
        snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
    return buf;
}

// "134.5 M" style, decimal units.
static std::string human_count(uint64_t n) {
    char buf[64];
    if (n >= 1000000000ull)
        snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
    else if (n >= 1000000ull)
        snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
    else if (n >= 1000ull)
        snprintf(buf, sizeof buf, "%.2f K", n / 1e3);
    else
        snprintf(buf, sizeof buf, "%" PRIu64, n);
    return buf;
}

static std::string token_text(const mw_model* model, int32_t token) {
    if (token < 0) return "none";
    char buf[128];
    size_t len = 0;
    std::string s = std::to_string(token);
    if (mw_detokenize(model, &token, 1, 1, buf, sizeof buf, &len) == MW_OK) {
        s += " '";
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)buf[i];
            if (c == '\n') s += "\\n";
            else if (c < 0x20) {
                char esc[8];
                snprintf(esc, sizeof esc, "\\x%02x", c);
                s += esc;
            } else s += char(c);
        }
        s += "'";
    }
    return s;
}

static void print_kv_line(const char* label, uint32_t n_ctx, uint64_t per_token_f16) {
    printf("  %-26s F16 %-12s F32 %s\n", label, human_bytes(per_token_f16 * n_ctx).c_str(),
           human_bytes(per_token_f16 * 2 * n_ctx).c_str());
}

// What a RAM budget holds: the weights (file-backed, resident when used), the
// step arena, and as many full-context sequences of KV as remain, for a few
// context lengths, using the engine's own planner.
static void print_budget(const mw_model* model, const mw_model_info& info, uint64_t budget) {
    printf("\nbudget %s:\n", human_bytes(budget).c_str());
    printf("  weights:        %s (mapped from the file, shared between processes)\n",
           human_bytes(info.weight_bytes).c_str());
    printf("  KV per token:   F16 %s, F32 %s\n", human_bytes(info.kv_bytes_per_token).c_str(),
           human_bytes(2ull * info.kv_bytes_per_token).c_str());
    const uint32_t contexts[] = {512, 2048, 4096, 8192};
    std::string summary;
    for (uint32_t n_ctx : contexts) {
        if (info.n_ctx_train && n_ctx > info.n_ctx_train) continue;
        // Weights + KV + step arena of an engine holding seqs sequences of n_ctx
        // tokens, from the engine's own planner; 0 when it cannot be planned.
        auto total_for = [&](uint32_t seqs) -> uint64_t {
            mw_engine_options eo;
            mw_engine_options_init(&eo);
            eo.n_ctx = n_ctx;
            eo.max_sequences = seqs;
            mw_engine_plan plan;
            plan.struct_size = sizeof plan;
            if (mw_engine_plan_memory(model, &eo, &plan) != MW_OK) return 0;
            return info.weight_bytes + plan.kv_bytes + plan.activation_bytes;
        };
        // Largest number of sequences that fits: double, then step up one at a time.
        uint32_t best = 0;
        uint64_t best_total = 0;
        for (uint32_t seqs = 1; seqs <= 4096; seqs *= 2) {
            const uint64_t total = total_for(seqs);
            if (total == 0 || total > budget) break;
            best = seqs;
            best_total = total;
        }
        for (uint32_t seqs = best + 1; best && seqs < 2 * best; seqs++) {
            const uint64_t total = total_for(seqs);
            if (total == 0 || total > budget) break;
            best = seqs;
            best_total = total;
        }
        if (best == 0) {
            printf("  context %-6u  does not fit (one sequence needs more)\n", n_ctx);
            continue;
        }
        printf("  context %-6u  %u sequence%s (%s of %s)\n", n_ctx, best, best == 1 ? "" : "s",
               human_bytes(best_total).c_str(), human_bytes(budget).c_str());
        summary += (summary.empty() ? "" : " or ") + std::to_string(best) + " sequence" + (best == 1 ? "" : "s") +
                   " of " + std::to_string(n_ctx) + " tokens";
    }
    if (!summary.empty()) printf("  fits: %s (F16 KV, step arena for 512-token prefill chunks)\n", summary.c_str());
}

int cmd_inspect(int argc, char** argv) {
    ArgReader a(kCommand, argc, argv);
    std::string model_path;
    uint32_t ctx = 0;
    bool tensors = false;
    std::string budget_text;
    while (a.next()) {
        if (a.positional()) {
            if (!model_path.empty()) a.fail(std::string("unexpected argument '") + a.arg() + "' (one MODEL only)");
            model_path = a.arg();
        } else if (a.flag("--help", "-h")) {
            print_help();
            return kExitOk;
        } else if (a.u32("--ctx", "-c", &ctx, 1)) {
        } else if (a.text("--budget", nullptr, &budget_text)) {
        } else if (a.flag("--tensors")) {
            tensors = true;
        } else {
            a.unknown();
        }
    }
    if (!a.ok()) return usage_error(kCommand, a.error());
    if (model_path.empty()) return usage_error(kCommand, "missing MODEL (a .gguf file)");
    const uint64_t budget = budget_text.empty() ? 0 : parse_size(budget_text);
    if (!budget_text.empty() && budget == 0)
        return usage_error(kCommand, "--budget: '" + budget_text + "' is not a size (e.g. 1GiB, 512MiB, 1000000)");

    mw_model* model = open_model(kCommand, model_path);
    if (!model) return kExitError;
    mw_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    mw_status st = mw_model_info_get(model, &info);
    if (st != MW_OK) {
        print_api_error(kCommand, "cannot describe the model", st);
        mw_model_close(model);
        return kExitError;
    }

    printf("file:             %s\n", model_path.c_str());
    printf("architecture:     %s\n", info.architecture);
    printf("name:             %s\n", info.name[0] ? info.name : "(none)");
    printf("file type:        %s\n", info.file_type[0] ? info.file_type : "(unknown)");
    printf("parameters:       %s (%" PRIu64 ")\n", human_count(info.n_params).c_str(), info.n_params);
    printf("file size:        %s (%" PRIu64 " bytes)\n", human_bytes(info.file_bytes).c_str(), info.file_bytes);
    printf("tensor data:      %s (%" PRIu64 " bytes)\n", human_bytes(info.weight_bytes).c_str(),
           info.weight_bytes);
    printf("GGUF version:     %u\n", info.gguf_version);
    printf("\ngeometry:\n");
    printf("  layers:         %u\n", info.n_layer);
    printf("  heads:          %u\n", info.n_head);
    printf("  kv heads:       %u\n", info.n_head_kv);
    printf("  head dim:       %u\n", info.head_dim);
    printf("  ffn:            %u\n", info.n_ff);
    printf("  embedding:      %u\n", info.n_embd);
    printf("  vocabulary:     %u\n", info.n_vocab);
    printf("  ctx train:      %u\n", info.n_ctx_train);

    // Tensor type histogram, in order of bytes.
    size_t n_tensors = mw_model_tensor_count(model);
    struct TypeStats {
        uint64_t count = 0, bytes = 0;
    };
    std::map<std::string, TypeStats> by_type;
    std::vector<mw_tensor_info> all;
    for (size_t i = 0; i < n_tensors; i++) {
        mw_tensor_info ti;
        memset(&ti, 0, sizeof ti);
        ti.struct_size = sizeof ti;
        st = mw_model_tensor_info(model, i, &ti);
        if (st != MW_OK) {
            print_api_error(kCommand, "cannot describe tensor " + std::to_string(i), st);
            mw_model_close(model);
            return kExitError;
        }
        TypeStats& s = by_type[ti.type_name];
        s.count++;
        s.bytes += ti.n_bytes;
        all.push_back(ti);
    }
    std::vector<std::pair<std::string, TypeStats>> types(by_type.begin(), by_type.end());
    std::stable_sort(types.begin(), types.end(),
                     [](const auto& x, const auto& y) { return x.second.bytes > y.second.bytes; });
    printf("\ntensor types (%zu tensors):\n", n_tensors);
    for (const auto& t : types)
        printf("  %-8s %6" PRIu64 " tensors  %12s\n", t.first.c_str(), t.second.count,
               human_bytes(t.second.bytes).c_str());

    printf("\ntokenizer:\n");
    printf("  model:          %s\n", info.tokenizer_model[0] ? info.tokenizer_model : "(none)");
    printf("  pre-tokenizer:  %s\n", info.tokenizer_pre[0] ? info.tokenizer_pre : "(none)");
    printf("  bos:            %s\n", token_text(model, info.bos_token).c_str());
    printf("  eos:            %s\n", token_text(model, info.eos_token).c_str());
    printf("  eot:            %s\n", token_text(model, info.eot_token).c_str());
    printf("  add bos:        %s\n", info.add_bos ? "yes" : "no");
    printf("  chat template:  %s\n", info.chat_template[0] ? info.chat_template : "(none recognised)");

    uint64_t per_tok = info.kv_bytes_per_token;
    printf("\nKV cache:\n");
    printf("  per token:                 F16 %-12s F32 %s\n", human_bytes(per_tok).c_str(),
           human_bytes(per_tok * 2).c_str());
    char label[64];
    if (ctx) {
        snprintf(label, sizeof label, "context %u:", ctx);
        print_kv_line(label, ctx, per_tok);
    } else {
        print_kv_line("context 4096:", 4096, per_tok);
        if (info.n_ctx_train && info.n_ctx_train != 4096) {
            snprintf(label, sizeof label, "context %u (training):", info.n_ctx_train);
            print_kv_line(label, info.n_ctx_train, per_tok);
        }
    }

    if (budget) print_budget(model, info, budget);

    if (tensors) {
        printf("\ntensors:\n");
        for (const mw_tensor_info& ti : all) {
            std::string shape = "[";
            for (uint32_t d = 0; d < ti.n_dims && d < 4; d++) {
                if (d) shape += ", ";
                shape += std::to_string(ti.ne[d]);
            }
            shape += "]";
            printf("  %-36s %-6s %-22s %12" PRIu64 "\n", ti.name ? ti.name : "?", ti.type_name, shape.c_str(),
                   ti.n_bytes);
        }
    }
    mw_model_close(model);
    return kExitOk;
}

}  // namespace cli
