// sol_bench: the speed of light of a batch-1 decode step's weight stream on this GPU. It
// reads, with no arithmetic (kernels/read_stream.h), exactly the bytes the four GPTQ GEMVs
// of each Llama-2-7B layer read, laid out as 32 layers (several times the L2), and times
// four shapes of the same stream, each captured in a CUDA graph and replayed:
//   chain   one kernel per projection (+ --attn_mb: a small kernel after q|k|v, where
//           attention runs), PDL between them: the floor of the engine's layered decode;
//   layer   one kernel per layer (the layer's projections as one run): what kernel
//           boundaries inside a layer cost is chain - layer;
//   flat    one kernel for all layers: the bandwidth the stream itself reaches;
//   phases  one persistent (cooperative) kernel, each projection a phase behind a software
//           grid barrier, the next phase's first loads issued before it: the floor of a
//           barrier-synchronized persistent decode kernel.
// Each figure is printed as µs per layer, GB/s, % of the copy bandwidth, and the decode
// tok/s a step would give if its layers took that long, plus --fixed_us for the rest of the
// step (lm_head, embedding, final norm, argmax). With --attn_mb 0 attention's own cost in
// the step (its kernel boundary included) is in neither.
//
// A config's optional fifth field is ReadStreamTuning::dyn_chunk_lines (0: each warp one
// static run; > 0: chunks taken from a counter, work stealing; "s": each warp every W-th set
// of the grid's W warps, ReadStreamTuning::strided; "xC" / "pC": each chunk of C lines of a
// warp's run read in sets of single lines / pairs from equal parts of it,
// ReadStreamTuning::spread), its sixth "SxL" a TMA ring of S stages
// of L lines per warp (ReadStreamTuning::bulk_stages / bulk_stage_lines). --spread_layer
// prints, for the chain, when each kernel of that layer released its warps and when they
// ended (%globaltimer per warp, one replay), relative to the end of the kernel before it.
//
//   sol_bench [--group 128] [--attn_mb 0] [--configs "2:4:1:1;2:4:1:1:8;..."] [--fixed_us 74]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "engine/tools/bench_util.h"
#ifdef LLAMA_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/read_stream.h"
#endif

ABSL_FLAG(int, group, 128, "GPTQ group size: fp16 scales per group and column are read with the weights");
ABSL_FLAG(int, layers, 32, "layers of the step");
ABSL_FLAG(double, attn_mb, 0, "chain: a read kernel of this many MB after q|k|v (0: none)");
ABSL_FLAG(double, fixed_us, 74,
          "µs per step outside the layers' GEMVs for the tok/s column (H200: lm_head 63 + embedding, final "
          "RMSNorm and argmax 11; tests/bench/RESULTS.md)");
ABSL_FLAG(std::string, configs, "2:4:1:1;3:4:1:1;4:4:1:1;2:8:1:1;2:4:0:1;2:4:1:0",
          "blocks per SM : loads in flight per lane (2|4|8) : first loads before the PDL wait (0|1) : PDL wait (0|1) "
          "[: work-stealing chunk lines, s for strided sets, xC / pC for sets spread over chunks of C lines "
          "[: TMA ring SxL]], ';'-separated");
ABSL_FLAG(int, repeat, 20, "timed replays (median)");
ABSL_FLAG(int, spread_layer, 16, "chain: the layer whose kernels' warp release and end times are printed (-1: none)");

#ifdef LLAMA_HAVE_CUDA
namespace {

// Bytes of one projection: 4-bit weights and fp16 scales (zero points all equal: none read).
size_t ProjBytes(size_t K, size_t N, size_t G) { return K * N / 2 + K / G * N * 2; }

// Median time of a captured sequence of launches, replayed.
template <typename F>
double TimeGraph(cudaStream_t s, int repeat, F&& launches, int replays_only = 0) {
  cudaGraph_t graph = nullptr;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  launches();
  CK(cudaStreamEndCapture(s, &graph));
  cudaGraphExec_t exec = nullptr;
  CK(cudaGraphInstantiate(&exec, graph, 0));
  double t = 0;
  if (replays_only > 0) {
    for (int i = 0; i < replays_only; ++i) CK(cudaGraphLaunch(exec, s));
    CK(cudaStreamSynchronize(s));
  } else {
    t = llama::bench::MedianSeconds(s, repeat, [] {}, [&] { CK(cudaGraphLaunch(exec, s)); });
  }
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  return t;
}

// The chain's kernels k0 .. k0 + n - 1 from one replay's warp times (ReadStreamExtras::times,
// `warps` warps a launch): per kernel, relative to the last warp end of the kernel before it
// (µs): first entry, first / median / last release from the PDL wait, median / p90 / last end.
void PrintSpread(const std::vector<unsigned long long>& times, size_t warps, size_t k0, size_t n,
                 const std::vector<size_t>& bytes) {
  auto at = [&](size_t k, size_t w, int i) { return times[(k * warps + w) * 3 + i]; };
  auto pct = [](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
  };
  std::printf("  %-6s %8s %8s %8s %8s %8s %8s %8s %7s\n", "kernel", "MB", "entry", "rel.min", "rel.med", "rel.max",
              "end.med", "end.p90", "end.max");
  for (size_t k = k0; k < k0 + n; ++k) {
    unsigned long long ref = 0;
    for (size_t w = 0; w < warps; ++w) ref = std::max(ref, at(k - 1, w, 2));
    std::vector<double> entry, rel, end;
    for (size_t w = 0; w < warps; ++w) {
      entry.push_back((static_cast<double>(at(k, w, 0)) - ref) / 1e3);
      rel.push_back((static_cast<double>(at(k, w, 1)) - ref) / 1e3);
      end.push_back((static_cast<double>(at(k, w, 2)) - ref) / 1e3);
    }
    std::printf("  %-6zu %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %7.2f\n", k - k0, bytes[k] / 1e6,
                pct(entry, 0), pct(rel, 0), pct(rel, 0.5), pct(rel, 1), pct(end, 0.5), pct(end, 0.9), pct(end, 1));
  }
}

int Main() {
  using llama::kernels::ReadStreamTuning;
  const size_t G = absl::GetFlag(FLAGS_group);
  const int L = absl::GetFlag(FLAGS_layers), repeat = absl::GetFlag(FLAGS_repeat);
  const double fixed_us = absl::GetFlag(FLAGS_fixed_us);
  // q|k|v, (attention), o, gate|up, down: bytes of each kernel of a layer, 16-byte multiples.
  std::vector<size_t> kern = {ProjBytes(4096, 3 * 4096, G), ProjBytes(4096, 4096, G), ProjBytes(4096, 2 * 11008, G),
                              ProjBytes(11008, 4096, G)};
  const size_t attn = static_cast<size_t>(absl::GetFlag(FLAGS_attn_mb) * 1e6);
  if (attn > 0) kern.insert(kern.begin() + 1, attn);
  for (size_t& b : kern) b = (b + 511) / 512 * 512;
  size_t layer = 0;
  for (size_t b : kern) layer += b;
  const double copy_bw = llama::bench::CopyBandwidth(0);
  char* buf = nullptr;
  CK(cudaMalloc(reinterpret_cast<void**>(&buf), layer * L));
  CK(cudaMemset(buf, 0x5a, layer * L));
  uint32_t *sink = nullptr, *barrier = nullptr, *counters = nullptr;
  CK(cudaMalloc(reinterpret_cast<void**>(&sink), 4));
  CK(cudaMalloc(reinterpret_cast<void**>(&barrier), 4));
  // Every kernel of the step in order (the chain's launches; the persistent kernel's phases).
  std::vector<const void*> hp;
  std::vector<size_t> hn;
  for (int l = 0; l < L; ++l)
    for (size_t k = 0, off = 0; k < kern.size(); off += kern[k], ++k) {
      hp.push_back(buf + layer * l + off);
      hn.push_back(kern[k] / 16);
    }
  // One work-stealing counter per launch of the longest sequence (the chain), zeroed by a
  // memset at the head of each graph.
  const size_t n_counters = hp.size() + 1;
  CK(cudaMalloc(reinterpret_cast<void**>(&counters), n_counters * 4));
  const void** dp = nullptr;
  size_t* dn = nullptr;
  CK(cudaMalloc(reinterpret_cast<void**>(&dp), hp.size() * sizeof(void*)));
  CK(cudaMalloc(reinterpret_cast<void**>(&dn), hn.size() * sizeof(size_t)));
  CK(cudaMemcpy(dp, hp.data(), hp.size() * sizeof(void*), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dn, hn.data(), hn.size() * sizeof(size_t), cudaMemcpyHostToDevice));
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs, copy bandwidth %.0f GB/s\n", prop.name, prop.multiProcessorCount, copy_bw / 1e9);
  std::printf("group %zu, %d layers of %.2f MB (kernels:", G, L, layer / 1e6);
  for (size_t b : kern) std::printf(" %.2f", b / 1e6);
  std::printf(" MB), %.2f GB per step; tok/s column: GEMVs as measured + %.0f µs\n", layer * L / 1e9, fixed_us);
  std::printf("%-12s %-7s %10s %10s %8s %9s\n", "config", "mode", "us/layer", "GB/s", "% copy", "tok/s");
  const std::vector<std::string> configs = absl::StrSplit(absl::GetFlag(FLAGS_configs), ';', absl::SkipEmpty());
  for (const std::string& c : configs) {
    const std::vector<std::string> f = absl::StrSplit(c, ':');
    if (f.size() < 4 || f.size() > 6) {
      std::fprintf(stderr, "bad config %s\n", c.c_str());
      return 2;
    }
    ReadStreamTuning t;
    t.blocks_per_sm = std::stoi(f[0]);
    t.unroll = std::stoi(f[1]);
    t.pre_wait = f[2] == "1";
    t.wait = f[3] == "1";
    t.strided = f.size() >= 5 && f[4] == "s";
    const bool spread = f.size() >= 5 && !f[4].empty() && (f[4][0] == 'x' || f[4][0] == 'p');
    if (spread) {
      t.spread = f[4][0] == 'x' ? 1 : 2;
      t.spread_chunk = std::stoi(f[4].substr(1));
    }
    t.dyn_chunk_lines = f.size() >= 5 && !t.strided && !spread ? std::stoi(f[4]) : 0;
    if (f.size() == 6) {
      const std::vector<std::string> b = absl::StrSplit(f[5], 'x');
      t.bulk_stages = std::stoi(b[0]);
      t.bulk_stage_lines = b.size() > 1 ? std::stoi(b[1]) : 4;
    }
    const bool dyn = t.dyn_chunk_lines > 0;
    auto zero_counters = [&] {
      if (dyn) CK(cudaMemsetAsync(counters, 0, n_counters * 4, s));
    };
    // Launch i of a sequence: its work-stealing counter.
    auto extras = [&](size_t i, unsigned long long* times) {
      llama::kernels::ReadStreamExtras e;
      e.counter = counters + i;
      e.times = times;
      return e;
    };
    auto report = [&](const char* mode, double sec) {
      std::printf("%-12s %-7s %10.2f %10.0f %7.1f%% %9.1f\n", c.c_str(), mode, sec / L * 1e6, layer * L / sec / 1e9,
                  100.0 * layer * L / sec / copy_bw, 1.0 / (sec + fixed_us * 1e-6));
    };
    auto chain = [&](unsigned long long* times, size_t warps) {
      zero_counters();
      for (size_t i = 0; i < hp.size(); ++i)
        CK(llama::kernels::LaunchReadStream(hp[i], hn[i], t, sink, s,
                                            extras(i, times ? times + i * warps * 3 : nullptr)));
    };
    report("chain", TimeGraph(s, repeat, [&] { chain(nullptr, 0); }));
    const int spread_layer = absl::GetFlag(FLAGS_spread_layer);
    if (spread_layer >= 1 && spread_layer < L) {  // one replay with every warp's times
      const size_t warps = static_cast<size_t>(llama::kernels::ReadStreamGrid(t)) * 8;
      unsigned long long* dtimes = nullptr;
      CK(cudaMalloc(reinterpret_cast<void**>(&dtimes), hp.size() * warps * 3 * sizeof(unsigned long long)));
      TimeGraph(s, repeat, [&] { chain(dtimes, warps); }, 3);
      std::vector<unsigned long long> times(hp.size() * warps * 3);
      CK(cudaMemcpy(times.data(), dtimes, times.size() * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
      CK(cudaFree(dtimes));
      std::printf("  chain, layer %d, µs from the previous kernel's last warp end:\n", spread_layer);
      std::vector<size_t> bytes;
      for (size_t b : hn) bytes.push_back(b * 16);
      PrintSpread(times, warps, static_cast<size_t>(spread_layer) * kern.size(), kern.size(), bytes);
    }
    report("layer", TimeGraph(s, repeat, [&] {
             zero_counters();
             for (int l = 0; l < L; ++l)
               CK(llama::kernels::LaunchReadStream(buf + layer * l, layer / 16, t, sink, s, extras(l, nullptr)));
           }));
    report("flat", TimeGraph(s, repeat, [&] {
             zero_counters();
             CK(llama::kernels::LaunchReadStream(buf, layer * L / 16, t, sink, s, extras(0, nullptr)));
           }));
    if (dyn || t.bulk_stages > 0 || t.strided || spread) continue;  // the persistent phases have none of these variants
    // The persistent kernel, launched cooperatively (outside a graph: one launch per step).
    const cudaError_t probe = llama::kernels::LaunchReadPhases(dp, dn, 1, t, barrier, sink, s);
    if (probe != cudaSuccess) {
      std::printf("%-12s %-7s %s\n", c.c_str(), "phases", cudaGetErrorString(probe));
      cudaGetLastError();
      continue;
    }
    report("phases", llama::bench::MedianSeconds(
                         s, repeat, [&] { CK(cudaMemsetAsync(barrier, 0, 4, s)); },
                         [&] {
                           CK(llama::kernels::LaunchReadPhases(dp, dn, static_cast<int>(hp.size()), t, barrier, sink,
                                                               s));
                         }));
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
  std::fprintf(stderr, "sol_bench needs a CUDA build\n");
  return 1;
#endif
}
