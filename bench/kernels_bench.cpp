// Google Benchmark of the CPU kernels: gemv (decode) and gemm (prefill) per
// weight type, shape and every ISA level this CPU supports, single-threaded.
// bytes_per_second counts the weight bytes streamed per call, so memory-bound
// kernels can be compared with the machine's bandwidth (bench/bandwidth_probe);
// the FLOP/s counter counts 2 * rows * width * tokens per call (a multiply and
// an add per weight and token), for compute-bound prefill.
//
//   kernels_bench --benchmark_filter='gemv/Q4_1/avx512'
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/kernels.h"
#include "quant/quant.h"

#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using namespace mw;
using gguf::TensorType;

namespace {

struct Matrix {
    std::vector<uint8_t> w;  // nrows rows of row_bytes
    size_t row_bytes;
};

size_t row_bytes_of(TensorType t, size_t n) { return gguf::row_bytes(*gguf::tensor_type_info((uint32_t)t), n); }

// Random weights: 256 distinct quantized rows repeated (quantizing 49152 K-quant
// rows would dominate start-up; the kernels cannot tell).
const Matrix& matrix(TensorType t, size_t nrows, size_t n) {
    static std::map<std::tuple<uint32_t, size_t, size_t>, std::unique_ptr<Matrix>> cache;
    auto& slot = cache[{(uint32_t)t, nrows, n}];
    if (!slot) {
        slot = std::make_unique<Matrix>();
        slot->row_bytes = row_bytes_of(t, n);
        slot->w.resize(slot->row_bytes * nrows);
        std::mt19937 rng(42);
        std::normal_distribution<float> dist(0.0f, 0.05f);
        std::vector<float> x(n);
        const size_t distinct = nrows < 256 ? nrows : 256;
        for (size_t r = 0; r < distinct; r++) {
            for (float& v : x) v = dist(rng);
            quant::quantize_row(t, x.data(), slot->w.data() + r * slot->row_bytes, n);
        }
        for (size_t r = distinct; r < nrows; r++)
            std::memcpy(slot->w.data() + r * slot->row_bytes, slot->w.data() + (r % distinct) * slot->row_bytes,
                        slot->row_bytes);
    }
    return *slot;
}

std::vector<uint8_t> activations(const cpu::KernelTable& kt, TensorType t, size_t n, size_t ntok) {
    const TensorType at = quant::vec_dot_type(t);
    const size_t arb = row_bytes_of(at, n);
    std::vector<uint8_t> a(arb * ntok);
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(n);
    for (size_t k = 0; k < ntok; k++) {
        for (float& v : x) v = dist(rng);
        kt.quantize_act[(uint32_t)at](x.data(), a.data() + k * arb, n);
    }
    return a;
}

void bench_gemv(benchmark::State& state, cpu::IsaLevel level, TensorType t, size_t nrows, size_t n) {
    const cpu::KernelTable& kt = cpu::kernels_for(level);
    const Matrix& m = matrix(t, nrows, n);
    const std::vector<uint8_t> a = activations(kt, t, n, 1);
    std::vector<float> y(nrows);
    const cpu::GemvFn gemv = kt.gemv[(uint32_t)t];
    for (auto _ : state) {
        gemv(n, m.w.data(), m.row_bytes, nrows, a.data(), y.data());
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)(m.row_bytes * nrows));
    state.counters["FLOP/s"] =
        benchmark::Counter(2.0 * (double)nrows * (double)n * (double)state.iterations(), benchmark::Counter::kIsRate);
}

void bench_gemm(benchmark::State& state, cpu::IsaLevel level, TensorType t, size_t nrows, size_t n, size_t ntok) {
    const cpu::KernelTable& kt = cpu::kernels_for(level);
    const Matrix& m = matrix(t, nrows, n);
    const std::vector<uint8_t> a = activations(kt, t, n, ntok);
    const size_t arb = row_bytes_of(quant::vec_dot_type(t), n);
    std::vector<float> y(nrows * ntok);
    const cpu::GemmFn gemm = kt.gemm[(uint32_t)t];
    for (auto _ : state) {
        gemm(n, m.w.data(), m.row_bytes, nrows, a.data(), arb, ntok, y.data(), nrows);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)(m.row_bytes * nrows));
    state.counters["tok/s"] =
        benchmark::Counter((double)ntok * (double)state.iterations(), benchmark::Counter::kIsRate);
    state.counters["FLOP/s"] = benchmark::Counter(2.0 * (double)nrows * (double)n * (double)ntok * (double)state.iterations(),
                                                  benchmark::Counter::kIsRate);
}

void bench_quantize_act(benchmark::State& state, cpu::IsaLevel level, TensorType at, size_t n) {
    const cpu::KernelTable& kt = cpu::kernels_for(level);
    std::vector<float> x(n);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (float& v : x) v = dist(rng);
    std::vector<uint8_t> a(row_bytes_of(at, n));
    for (auto _ : state) {
        kt.quantize_act[(uint32_t)at](x.data(), a.data(), n);
        benchmark::DoNotOptimize(a.data());
    }
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)(n * sizeof(float)));
}

}  // namespace

int main(int argc, char** argv) {
    const TensorType types[] = {TensorType::Q4_1, TensorType::Q8_0, TensorType::F32,  TensorType::Q4_K, TensorType::Q6_K,
                                TensorType::Q5_K, TensorType::Q4_0, TensorType::Q5_0, TensorType::Q5_1,
                                TensorType::F16,  TensorType::BF16};
    // (rows, width): SmolLM2-135M's attention/FFN and output shapes (K-quants need
    // widths of 256), then TinyLlama-1.1B's FFN up and down (larger than L2).
    const size_t shapes32[][2] = {{1536, 576}, {576, 1536}, {49152, 576}, {5632, 2048}, {2048, 5632}};
    const size_t shapesK[][2] = {{1536, 768}, {768, 1536}, {49152, 512}, {5632, 2048}, {2048, 5632}};
    for (int l = 0; l <= (int)cpu::best_isa(); l++) {
        const cpu::IsaLevel level = (cpu::IsaLevel)l;
        const std::string isa = cpu::isa_name(level);
        for (TensorType t : types) {
            const std::string tn = gguf::tensor_type_info((uint32_t)t)->name;
            const bool k = gguf::tensor_type_info((uint32_t)t)->block_elems == 256;
            for (int s = 0; s < 5; s++) {
                const size_t rows = k ? shapesK[s][0] : shapes32[s][0], n = k ? shapesK[s][1] : shapes32[s][1];
                const std::string shape = std::to_string(rows) + "x" + std::to_string(n);
                benchmark::RegisterBenchmark(("gemv/" + tn + "/" + isa + "/" + shape).c_str(), bench_gemv, level, t,
                                             rows, n)
                    ->Unit(benchmark::kMicrosecond);
            }
            // An L1-sized tile (64 rows, 6 tokens): the kernel's arithmetic alone.
            benchmark::RegisterBenchmark(("gemm/" + tn + "/" + isa + "/64x" + std::to_string(k ? 768 : 576) + "/tok6").c_str(),
                                         bench_gemm, level, t, (size_t)64, (size_t)(k ? 768 : 576), (size_t)6)
                ->Unit(benchmark::kMicrosecond);
            // TinyLlama-1.1B's FFN up at a prefill chunk of 64 tokens (one thread's share: half the rows).
            benchmark::RegisterBenchmark(("gemm/" + tn + "/" + isa + "/2816x2048/tok64").c_str(), bench_gemm, level, t,
                                         (size_t)2816, (size_t)2048, (size_t)64)
                ->Unit(benchmark::kMicrosecond);
            for (size_t ntok : {(size_t)16, (size_t)64, (size_t)256}) {
                const size_t rows = 1536, n = k ? 768 : 576;
                benchmark::RegisterBenchmark(("gemm/" + tn + "/" + isa + "/" + std::to_string(rows) + "x" +
                                              std::to_string(n) + "/tok" + std::to_string(ntok))
                                                 .c_str(),
                                             bench_gemm, level, t, rows, n, ntok)
                    ->Unit(benchmark::kMicrosecond);
            }
        }
        for (TensorType at : {TensorType::Q8_0, TensorType::Q8_1, TensorType::Q8_K, TensorType::F16}) {
            const std::string tn = gguf::tensor_type_info((uint32_t)at)->name;
            benchmark::RegisterBenchmark(("quantize_act/" + tn + "/" + isa + "/1536").c_str(), bench_quantize_act,
                                         level, at, (size_t)1536)
                ->Unit(benchmark::kMicrosecond);
        }
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
