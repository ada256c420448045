// gemv_bench: achieved memory bandwidth of the GPTQ decode GEMV kernels on the Llama-2-7B
// projection shapes (random weights), against the device-to-device copy bandwidth.
//
//   gemv_bench [--group 128] [--act_order [--no_perm down,...]] [--rows 1] [--variants "split;warp:16;..."]
//
// Each variant (split = split-K kernel; warp:<largest K unit, 64-row blocks>[:<target blocks>]
// = the warp GEMV with RMSNorm x from an input kernel;
// warprms:<unit>[:<target>[:<one trip 0|1|2>[:<row gather 0|1>[:<group slots mask>[:<g32 wide 0|1>
//   [:<one kernel 0|1>]]]]]] =
// RMSNorm computed in every block (the engine's default; GemvTuning::warp_one_trip,
// warp_row_gather, warp_group_slots; the engine runs warprms:32:0:2:1:7 with zero points
// all 8: --uniform_zeros);
// warpnp:<unit> = no input work at all (x assumed ready);
// stream:<blocks/SM>:<L2 prefetch tiles>:<ring 4|8>)
// runs the four projections of a layer (q|k|v fused, o, gate|up fused, down, each with the
// input kind the engine uses) back to back over enough copies of the weights that nothing is
// served from L2, with PDL as in the engine; time from CUDA events, median of --repeat.
// Bytes: 4-bit weights + fp16 scales + uint8 zeros (none with --uniform_zeros) + group map
// (+ act-order perms) + x.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "engine/tools/bench_util.h"
#ifdef LLAMA_HAVE_CUDA
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "kernels/gptq_matmul.h"
#endif

ABSL_FLAG(int, group, 128, "GPTQ group size");
ABSL_FLAG(bool, act_order, false, "random act-order permutation per projection");
ABSL_FLAG(std::string, no_perm, "",
          "with --act_order, projections left without a permutation (comma-separated of qkv,o,gate_up,down; "
          "down: what the engine's fold_down_permutation does)");
ABSL_FLAG(int, rows, 1, "batch rows M");
ABSL_FLAG(bool, uniform_zeros, false,
          "every zero point 8 (AutoGPTQ sym=True, as the engine's checkpoints), read by no kernel: "
          "GptqMatrix::uniform_zero, GemvTuning::warp_uniform_zeros");
ABSL_FLAG(int, repeat, 20, "timed repetitions (median)");
ABSL_FLAG(std::string, variants, "split;warp:16;warpnp:16",
          "kernel variants, ';'-separated");

#ifdef LLAMA_HAVE_CUDA
namespace {

template <typename T>
T* Upload(const std::vector<T>& v) {
  T* p = nullptr;
  CK(cudaMalloc(reinterpret_cast<void**>(&p), v.size() * sizeof(T)));
  CK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

struct Proj {
  const char* name;
  int K;
  std::vector<int> parts;  // N of each fused part
  llama::kernels::GemvSource kind;
};

// One device copy of a projection's weights.
llama::kernels::GptqMatrix MakeMatrix(const Proj& p, int G, bool act_order, std::mt19937& rng, size_t* bytes) {
  using namespace llama::kernels;
  const int K = p.K, N = std::accumulate(p.parts.begin(), p.parts.end(), 0), groups = K / G;
  std::vector<uint32_t> q(static_cast<size_t>(K / 8) * N), tiles(q.size());
  for (auto& v : q) v = rng();
  RepackGptqForMma(q.data(), K, N, tiles.data());
  std::vector<__half> scales(static_cast<size_t>(groups) * N);
  for (auto& s : scales) s = __float2half(0.002f + 0.001f * (rng() % 16));
  std::vector<uint8_t> zeros(scales.size());
  const bool uniform = absl::GetFlag(FLAGS_uniform_zeros);
  for (auto& z : zeros) z = uniform ? 8 : static_cast<uint8_t>(rng() % 17);
  std::vector<uint16_t> wg(K / 8);
  for (int w = 0; w < K / 8; ++w) wg[w] = static_cast<uint16_t>(w * 8 / G);
  GptqMatrix m;
  m.K = K;
  m.N = N;
  m.qtiles = Upload(tiles);
  m.scales = Upload(scales);
  m.zeros = Upload(zeros);
  m.uniform_zero = uniform ? 8 : -1;
  m.num_groups = groups;
  m.min_group_rows = G;
  m.group_rows = G;
  m.num_segments = static_cast<int>(p.parts.size());
  const uint16_t* dwg = Upload(wg);
  *bytes = tiles.size() * 4 + scales.size() * 2 + (uniform ? 0 : zeros.size()) + wg.size() * 2;
  int c0 = 0;
  for (size_t i = 0; i < p.parts.size(); ++i) {
    const int32_t* perm = nullptr;
    if (act_order) {
      std::vector<int32_t> pv(K);
      std::iota(pv.begin(), pv.end(), 0);
      std::shuffle(pv.begin(), pv.end(), rng);
      perm = Upload(pv);
      *bytes += static_cast<size_t>(K) * 4;
    }
    m.seg[i] = {c0, c0 + p.parts[i], perm, dwg};
    c0 += p.parts[i];
  }
  return m;
}

int Main() {
  using namespace llama::kernels;
  const int G = absl::GetFlag(FLAGS_group), M = absl::GetFlag(FLAGS_rows);
  const bool act = absl::GetFlag(FLAGS_act_order);
  const std::vector<std::string> no_perm = absl::StrSplit(absl::GetFlag(FLAGS_no_perm), ',', absl::SkipEmpty());
  const char* const keys[] = {"qkv", "o", "gate_up", "down"};
  for (const std::string& k : no_perm)
    if (std::find(std::begin(keys), std::end(keys), k) == std::end(keys)) {
      std::fprintf(stderr, "--no_perm: unknown projection %s (qkv, o, gate_up, down)\n", k.c_str());
      return 2;
    }
  const std::vector<Proj> projs = {{"q|k|v 4096->3x4096", 4096, {4096, 4096, 4096}, GemvSource::kRmsNorm},
                                   {"o 4096->4096", 4096, {4096}, GemvSource::kHalf},
                                   {"gate|up 4096->2x11008", 4096, {11008, 11008}, GemvSource::kRmsNorm},
                                   {"down 11008->4096", 11008, {4096}, GemvSource::kSwiGlu}};
  std::mt19937 rng(1234);
  const double copy_bw = llama::bench::CopyBandwidth(0);
  if (copy_bw <= 0) {
    std::fprintf(stderr, "could not measure the copy bandwidth (2 GiB of device memory needed)\n");
    return 1;
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, copy bandwidth %.0f GB/s, group %d%s%s%s, M=%d\n", prop.name, copy_bw / 1e9, G,
              act ? " act-order" : "", act && !no_perm.empty() ? ", no permutation: " : "",
              act ? absl::GetFlag(FLAGS_no_perm).c_str() : "", M);
  // Inputs (shared by all copies): x fp16, resid fp32, norm weight, gate_up fp32; outputs.
  std::vector<float> f(static_cast<size_t>(M) * 2 * 11008);
  for (auto& v : f) v = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 1e-3f;
  std::vector<__half> h(static_cast<size_t>(M) * 11008);
  for (size_t i = 0; i < h.size(); ++i) h[i] = __float2half(f[i]);
  const float* d_src = Upload(f);
  const __half* d_x = Upload(h);
  std::vector<float> ones(11008, 1.f);
  const float* d_nw = Upload(ones);
  float* d_out = nullptr;
  CK(cudaMalloc(reinterpret_cast<void**>(&d_out), sizeof(float) * M * 22016));
  __half* d_xfrag = nullptr;
  CK(cudaMalloc(reinterpret_cast<void**>(&d_xfrag), sizeof(__half) * 3 * 11008));
  CK(cudaMemset(d_xfrag, 0, sizeof(__half) * 3 * 11008));
  float* d_xsum = nullptr;
  CK(cudaMalloc(reinterpret_cast<void**>(&d_xsum), sizeof(float) * 3 * 11008 / 32));
  CK(cudaMemset(d_xsum, 0, sizeof(float) * 3 * 11008 / 32));
  // Copies of one layer's weights: > 4x the L2.
  const int copies = 6;
  std::vector<std::vector<GptqMatrix>> layers(copies);
  size_t layer_bytes = 0;
  std::vector<size_t> proj_bytes(projs.size());
  for (int c = 0; c < copies; ++c)
    for (size_t i = 0; i < projs.size(); ++i) {
      size_t b = 0;
      const bool permuted = act && std::find(no_perm.begin(), no_perm.end(), keys[i]) == no_perm.end();
      layers[c].push_back(MakeMatrix(projs[i], G, permuted, rng, &b));
      layers[c].back().act_order_layer = act;  // as UploadModel: the layer's GEMVs in one kernel
      proj_bytes[i] = b + static_cast<size_t>(M) * projs[i].K * 2;
    }
  for (size_t b : proj_bytes) layer_bytes += b;
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  auto input = [&](const Proj& p) {
    GemvInput in;
    in.kind = p.kind;
    in.x = d_x;
    in.ldx = p.K;
    in.src = d_src;
    in.norm_weight = d_nw;
    in.eps = 1e-5f;
    in.xfrag = d_xfrag;
    in.xsum = d_xsum;
    return in;
  };
  std::printf("%-22s %-24s %10s %10s %8s\n", "variant", "projection", "us", "GB/s", "% copy");
  const std::vector<std::string> variants = absl::StrSplit(absl::GetFlag(FLAGS_variants), ';');
  for (const std::string& v : variants) {
    GemvTuning t;
    if (v == "split") {
      t.stream = false;
    } else if (v.rfind("warp:", 0) == 0 || v.rfind("warpnp:", 0) == 0 || v.rfind("warprms:", 0) == 0) {
      t.warp = true;
      t.warp_skip_prepare = v[4] == 'n';
      t.warp_rms_in_block = v[4] == 'r';
      const std::vector<std::string> f = absl::StrSplit(v, ':');
      t.warp_kb = std::stoi(f[1]);
      if (f.size() > 2) t.warp_target_blocks = std::stoi(f[2]);
      if (f.size() > 3) t.warp_one_trip = std::stoi(f[3]);
      if (f.size() > 4) t.warp_row_gather = std::stoi(f[4]) != 0;
      if (f.size() > 5) t.warp_group_slots = std::stoi(f[5]);
      if (f.size() > 6) t.warp_g32_wide = std::stoi(f[6]) != 0;
      if (f.size() > 7) t.warp_single_kernel = std::stoi(f[7]) != 0;
    } else {
      std::vector<std::string> f3 = absl::StrSplit(v, ':');
      if (f3.size() != 4 || f3[0] != "stream") {
        std::fprintf(stderr, "bad variant %s\n", v.c_str());
        return 1;
      }
      t.blocks_per_sm = std::stoi(f3[1]);
      t.l2_prefetch = std::stoi(f3[2]);
      t.ring_deep = std::stoi(f3[3]) == 8;
      t.stream = true;
    }
    t.warp_uniform_zeros = absl::GetFlag(FLAGS_uniform_zeros);
    SetGemvTuning(t);
    // Per projection alone (each copy once per repetition), then the whole layer sequence.
    for (size_t i = 0; i <= projs.size(); ++i) {
      const double t_us = 1e6 / copies * llama::bench::MedianSeconds(s, absl::GetFlag(FLAGS_repeat), [] {}, [&] {
        for (int c = 0; c < copies; ++c)
          for (size_t j = 0; j < projs.size(); ++j)
            if (i == projs.size() || i == j) CK(LaunchGptqGemv(layers[c][j], input(projs[j]), d_out, 22016, M, s));
      });
      const double bytes = i == projs.size() ? layer_bytes : proj_bytes[i];
      std::printf("%-22s %-24s %10.2f %10.0f %7.1f%%\n", v.c_str(), i == projs.size() ? "layer (4 GEMVs)" : projs[i].name,
                  t_us, bytes / (t_us * 1e-6) / 1e9, 100.0 * bytes / (t_us * 1e-6) / copy_bw);
    }
  }
  CK(cudaDeviceSynchronize());
  return 0;
}

}  // namespace
#endif

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
#ifdef LLAMA_HAVE_CUDA
  return Main();
#else
  std::fprintf(stderr, "gemv_bench needs a CUDA build\n");
  return 1;
#endif
}
