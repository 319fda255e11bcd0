// make_lora BASE.gguf OUT.gguf [RANK [SEED [MAGNITUDE [f32|f16 [ONLY]]]]]:
// writes a random LoRA adapter (every attention and FFN matrix of every
// layer, and the output head when it is not tied; with ONLY, just the tensors
// whose names contain it) for the base model, as llama.cpp writes adapters. For the CLI test and for comparing with llama.cpp by hand.
#include "base/error.h"
#include "gguf/gguf_file.h"
#include "synthetic_lora.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: make_lora BASE.gguf OUT.gguf [RANK [SEED [MAGNITUDE [f32|f16 [ONLY]]]]]\n");
        return 2;
    }
    try {
        auto base = mw::gguf::File::open(argv[1]);
        mw::test::LoraSpec s;
        s.arch = std::string(base->get_string("general.architecture", "llama"));
        if (argc > 3) s.rank = std::atoi(argv[3]);
        if (argc > 4) s.seed = (uint32_t)std::strtoul(argv[4], nullptr, 10);
        if (argc > 5) s.magnitude = std::strtof(argv[5], nullptr);
        const bool f16 = argc > 6 && std::strcmp(argv[6], "f16") == 0;
        const auto type = f16 ? mw::gguf::TensorType::F16 : mw::gguf::TensorType::F32;
        int n_layer = 0;
        while (base->find_tensor("blk." + std::to_string(n_layer) + ".ffn_down.weight")) n_layer++;
        s.targets = mw::test::all_layer_targets(n_layer, type);
        if (!base->find_tensor("output.weight")) s.targets.pop_back();
        if (argc > 7) {
            std::vector<mw::test::LoraTarget> only;
            for (const auto& t : s.targets)
                if (t.name.find(argv[7]) != std::string::npos) only.push_back(t);
            s.targets = only;
        }
        s.alpha = 2.0f * (float)s.rank;
        const std::vector<uint8_t> bytes = mw::test::synthetic_lora(*base, s);
        FILE* f = std::fopen(argv[2], "wb");
        if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
            std::perror(argv[2]);
            return 1;
        }
    } catch (const mw::Error& e) {
        std::fprintf(stderr, "make_lora: %s\n", e.what());
        return 1;
    }
    return 0;
}
