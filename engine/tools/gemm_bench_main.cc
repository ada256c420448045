// gemm_bench: TFLOP/s of the prefill projection GEMMs (cuBLAS, fp16 inputs, fp32 compute) on
// the Llama-2-7B shapes, with the fp32 output the engine writes (beta 0 and beta 1, the
// residual add) against an fp16 output: is a narrower output worth a kernel change?
//
//   gemm_bench [--rows 2048] [--repeat 20] [--lt_algos 24] [--sustain_ms 300]
//
// --lt_algos N: also times the first N algorithms cublasLt's heuristic offers per shape
// (fp32 and fp16 output, 32 MiB workspace) against cublasGemmEx's default choice: is a
// tuned algorithm per shape worth it for prefill?
//
// Weights as W^T [N, K] (the prefill path's layout), x [rows, K], both random; time from
// CUDA events, median of --repeat after a warm-up; FLOP = 2 rows N K.
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "engine/tools/bench_util.h"
#ifdef LLAMA_HAVE_CUDA
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#endif

ABSL_FLAG(int, rows, 2048, "rows M (prompt tokens)");
ABSL_FLAG(int, repeat, 20, "timed repetitions (median)");
ABSL_FLAG(int, lt_algos, 0, "also time this many cublasLt heuristic algorithms per shape (0: skip)");
ABSL_FLAG(int, sustain_ms, 0,
          "run each GEMM back to back this long before timing it, so that it is timed at the clocks of a "
          "sustained prefill (an H200 at its power cap runs GEMMs at ~1.5 GHz, not 1.98; session 14)");

#ifdef LLAMA_HAVE_CUDA
namespace llama {
namespace {

struct Shape {
  const char* name;
  int N, K;
};

// Median time in ms of `repeat` calls of f, after --sustain_ms of calls (else one).
template <typename F>
double MedianMs(int repeat, F f) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  f();
  const auto start = std::chrono::steady_clock::now();
  const auto sustain = std::chrono::milliseconds(absl::GetFlag(FLAGS_sustain_ms));
  while (std::chrono::steady_clock::now() - start < sustain) {
    for (int i = 0; i < 8; ++i) f();
    cudaDeviceSynchronize();
  }
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return bench::Median(ms);
}

// cublasLt's first `n` heuristic algorithms for C[N, M] (col-major) = W^T x, each timed; prints
// the fastest against `base_ms` (cublasGemmEx's default on the same operands).
void SweepLt(cublasLtHandle_t lt, const Shape& s, int M, int n, int repeat, cudaDataType ct, const void* w,
             const void* x, void* c, void* ws, size_t ws_bytes, double base_ms) {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
  cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, s.K, s.N, s.K);
  cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, s.K, M, s.K);
  cublasLtMatrixLayoutCreate(&lc, ct, s.N, M, s.N);
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes));
  std::vector<cublasLtMatmulHeuristicResult_t> res(n);
  int got = 0;
  cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, n, res.data(), &got);
  const float one = 1.f, zero = 0.f;
  double best = 1e30, first = 0;
  int best_i = -1;
  for (int i = 0; i < got; ++i) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS) continue;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    const double ms = MedianMs(repeat, [&] {
      st = cublasLtMatmul(lt, op, &one, w, la, x, lb, &zero, c, lc, c, lc, &res[i].algo, ws, ws_bytes, nullptr);
    });
    if (st != CUBLAS_STATUS_SUCCESS) continue;
    if (absl::GetFlag(FLAGS_sustain_ms) > 0) {  // each algorithm's config: which tiles save power
      int id = 0, tile = 0, stages = 0;
      uint16_t cluster = 0;
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id), nullptr);
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile), nullptr);
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages),
                                           nullptr);
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster,
                                           sizeof(cluster), nullptr);
      std::printf("    #%d algo %d tile %d stages %d cluster %d: %.3f ms\n", i, id, tile, stages, cluster, ms);
    }
    if (i == 0) first = ms;
    if (ms < best) best = ms, best_i = i;
  }
  const double flop = 2.0 * M * s.N * s.K;
  std::printf("  lt %-8s %s out: %d algorithms, heuristic #0 %.3f ms, best #%d %.3f ms %3.0fT (GemmEx %.3f ms): %+.1f%%\n",
              s.name, ct == CUDA_R_16F ? "fp16" : "fp32", got, first, best_i, best, flop / best * 1e-9, base_ms,
              (base_ms / best - 1) * 100);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
}

int Run() {
  const int M = absl::GetFlag(FLAGS_rows), repeat = absl::GetFlag(FLAGS_repeat);
  const Shape shapes[] = {{"q|k|v", 12288, 4096}, {"o", 4096, 4096}, {"gate|up", 22016, 4096}, {"down", 4096, 11008}};
  size_t max_w = 0, max_x = 0, max_c = 0;
  for (const Shape& s : shapes) {
    max_w = std::max(max_w, static_cast<size_t>(s.N) * s.K);
    max_x = std::max(max_x, static_cast<size_t>(M) * s.K);
    max_c = std::max(max_c, static_cast<size_t>(M) * s.N);
  }
  void *w = nullptr, *x = nullptr, *c32 = nullptr, *c16 = nullptr;
  if (cudaMalloc(&w, max_w * 2) != cudaSuccess || cudaMalloc(&x, max_x * 2) != cudaSuccess ||
      cudaMalloc(&c32, max_c * 4) != cudaSuccess || cudaMalloc(&c16, max_c * 2) != cudaSuccess) {
    std::fprintf(stderr, "gemm_bench: cudaMalloc failed (no device?)\n");
    return 1;
  }
  // Random operands: a GEMM over constant or zero operands draws less power and runs at
  // higher clocks on an H200 (session 6's figures were taken with one constant), so they
  // would overstate what the model's GEMMs see.
  auto fill = [](void* dst, size_t n, float scale) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<__half> h(n);
    for (auto& v : h) v = __float2half(u(rng));
    cudaMemcpy(dst, h.data(), n * 2, cudaMemcpyHostToDevice);
  };
  fill(w, max_w, 0.05f);
  fill(x, max_x, 1.f);
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return 1;
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device %s, rows %d, median of %d\n", prop.name, M, repeat);
  std::printf("%-8s %6s %6s %14s %14s %14s\n", "gemm", "N", "K", "fp32 out", "fp32 += (b=1)", "fp16 out");
  double total[3] = {0, 0, 0};
  struct LtRow {
    Shape s;
    double fp32_ms, fp16_ms;
  };
  std::vector<LtRow> lt_rows;
  for (const Shape& s : shapes) {
    const float one = 1.f, zero = 0.f;
    auto gemm = [&](cudaDataType ct, void* c, const float* beta) {
      return MedianMs(repeat, [&] {
        cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, s.N, M, s.K, &one, w, CUDA_R_16F, s.K, x, CUDA_R_16F, s.K, beta, c,
                     ct, s.N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      });
    };
    const double ms[3] = {gemm(CUDA_R_32F, c32, &zero), gemm(CUDA_R_32F, c32, &one), gemm(CUDA_R_16F, c16, &zero)};
    const double flop = 2.0 * M * s.N * s.K;
    std::printf("%-8s %6d %6d", s.name, s.N, s.K);
    for (int i = 0; i < 3; ++i) {
      std::printf(" %7.3f ms %3.0fT", ms[i], flop / ms[i] * 1e-9);
      total[i] += ms[i];
    }
    std::printf("\n");
    lt_rows.push_back({s, ms[0], ms[2]});
  }
  if (const int n = absl::GetFlag(FLAGS_lt_algos); n > 0) {
    cublasLtHandle_t lt;
    void* ws = nullptr;
    const size_t ws_bytes = size_t{32} << 20;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS || cudaMalloc(&ws, ws_bytes) != cudaSuccess) return 1;
    for (const LtRow& r : lt_rows) {
      SweepLt(lt, r.s, M, n, repeat, CUDA_R_32F, w, x, c32, ws, ws_bytes, r.fp32_ms);
      SweepLt(lt, r.s, M, n, repeat, CUDA_R_16F, w, x, c16, ws, ws_bytes, r.fp16_ms);
    }
    cudaFree(ws);
    cublasLtDestroy(lt);
  }
  std::printf("layer sum: fp32 out %.3f ms, fp32 += %.3f ms, fp16 out %.3f ms\n", total[0], total[1], total[2]);
  cublasDestroy(h);
  return 0;
}

}  // namespace
}  // namespace llama
#endif

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
#ifdef LLAMA_HAVE_CUDA
  return llama::Run();
#else
  std::fprintf(stderr, "gemm_bench: this build has no CUDA backend\n");
  return 1;
#endif
}
