#include "engine/tools/kernel_timeline.h"

#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "engine/tools/bench_util.h"

namespace llama::bench {
namespace {

std::mutex g_mu;
std::vector<KernelSpan>* g_spans = nullptr;  // where the completed buffers go (under g_mu)

constexpr size_t kBufferBytes = 8 << 20;

std::string ShortName(const char* mangled) {
  int st = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &st);
  std::string s = st == 0 && d ? d : mangled;
  std::free(d);
  s = absl::StrReplaceAll(s, {{"(anonymous namespace)::", ""}, {"llama::kernels::", ""}, {"void ", ""}});
  // Drop the parameter list: the last '(' whose ')' ends the name.
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (size_t i = s.size(); i-- > 0;) {
      if (s[i] == ')') ++depth;
      if (s[i] == '(' && --depth == 0) {
        s.resize(i);
        break;
      }
    }
  }
  return s;
}

void CUPTIAPI BufferRequested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = kBufferBytes;
  *max_records = 0;
}

void CUPTIAPI BufferCompleted(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::vector<KernelSpan> got;
  CUpti_Activity* rec = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    KernelSpan s;
    s.name = ShortName(k->name);
    s.start = k->start;
    s.end = k->end;
    s.grid[0] = k->gridX, s.grid[1] = k->gridY, s.grid[2] = k->gridZ;
    s.block[0] = k->blockX, s.block[1] = k->blockY, s.block[2] = k->blockZ;
    s.cluster[0] = k->clusterX, s.cluster[1] = k->clusterY, s.cluster[2] = k->clusterZ;
    s.registers = k->registersPerThread;
    s.dynamic_smem = k->dynamicSharedMemory;
    got.push_back(std::move(s));
  }
  std::free(buffer);
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_spans) g_spans->insert(g_spans->end(), got.begin(), got.end());
}

absl::Status CuptiStatus(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return absl::OkStatus();
  const char* s = "?";
  cuptiGetResultString(r, &s);
  return absl::InternalError(absl::StrCat(what, ": ", s));
}

}  // namespace

KernelTimeline::KernelTimeline() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_spans) {
      status_ = absl::FailedPreconditionError("a kernel timeline is already recording");
      return;
    }
    g_spans = new std::vector<KernelSpan>();
  }
  status_ = CuptiStatus(cuptiActivityRegisterCallbacks(BufferRequested, BufferCompleted), "cupti callbacks");
  if (status_.ok()) status_ = CuptiStatus(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cupti enable");
  running_ = status_.ok();
}

KernelTimeline::~KernelTimeline() { Stop(); }

void KernelTimeline::Clear() {
  if (!running_) return;
  cudaDeviceSynchronize();
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  std::lock_guard<std::mutex> lock(g_mu);
  g_spans->clear();
}

std::vector<KernelSpan> KernelTimeline::Stop() {
  std::vector<KernelSpan> out;
  if (!running_) return out;
  running_ = false;
  cudaDeviceSynchronize();
  cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    out.swap(*g_spans);
    delete g_spans;
    g_spans = nullptr;
  }
  std::stable_sort(out.begin(), out.end(), [](const KernelSpan& a, const KernelSpan& b) { return a.start < b.start; });
  return out;
}

std::string DescribeSteps(const std::vector<KernelSpan>& kernels, absl::string_view step_end) {
  // Cut the record into steps.
  std::vector<std::vector<const KernelSpan*>> steps(1);
  for (const KernelSpan& k : kernels) {
    steps.back().push_back(&k);
    if (absl::string_view(k.name).find(step_end) != absl::string_view::npos) steps.emplace_back();
  }
  steps.pop_back();  // the unfinished tail (empty when the record ends with a step)
  if (steps.empty()) return absl::StrCat("  timeline: no step ends with a kernel named *", step_end, "* (",
                                         kernels.size(), " kernels recorded)\n");
  // name, grid x, y, z, cluster x, and the previous kernel's name and grid x (one kernel in
  // two places of a step, e.g. o_proj and down_proj with the same grid, gets two rows).
  using Key = std::tuple<std::string, int, int, int, int, std::string>;
  struct Agg {
    int order = 0, launches = 0, registers = 0, smem = 0, block = 0;
    std::vector<double> dur, lead, adds;
  };
  std::map<Key, Agg> agg;
  std::vector<double> step_us, gap_us, adds_us;
  for (size_t s = 0; s < steps.size(); ++s) {
    const auto& st = steps[s];
    uint64_t prev_end = st.front()->start;  // the first kernel adds its whole duration
    double adds = 0;
    std::string after = "(step start)";
    for (const KernelSpan* k : st) {
      Agg& a = agg[Key{k->name, k->grid[0], k->grid[1], k->grid[2], k->cluster[0], after}];
      after = absl::StrFormat("%s %d", k->name.substr(0, k->name.find('<')), k->grid[0]);
      if (a.launches == 0) a.order = static_cast<int>(agg.size());
      ++a.launches;
      a.registers = k->registers, a.smem = k->dynamic_smem, a.block = k->block[0] * k->block[1] * k->block[2];
      a.dur.push_back((k->end - k->start) * 1e-3);
      a.lead.push_back((static_cast<double>(prev_end) - static_cast<double>(k->start)) * 1e-3);
      const double add = (static_cast<double>(k->end) - static_cast<double>(prev_end)) * 1e-3;
      a.adds.push_back(add);
      adds += add;
      prev_end = std::max(prev_end, k->end);
    }
    const uint64_t last = prev_end;  // the step's last end
    step_us.push_back((last - st.front()->start) * 1e-3);
    adds_us.push_back(adds);
    if (s + 1 < steps.size()) gap_us.push_back((static_cast<double>(steps[s + 1].front()->start) - last) * 1e-3);
  }
  std::vector<std::pair<int, const std::pair<const Key, Agg>*>> rows;
  for (const auto& kv : agg) rows.emplace_back(kv.second.order, &kv);
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const double n = static_cast<double>(steps.size());
  std::string out = absl::StrFormat("  timeline of %d replayed steps (CUPTI, us; medians over launches)\n",
                                    static_cast<int>(steps.size()));
  absl::StrAppendFormat(&out, "  %-58s %14s %4s %5s %4s %6s %7s %7s %7s %8s  %s\n", "kernel", "grid", "clus", "thr",
                        "reg", "smemKB", "dur", "lead", "adds", "adds/step", "launches/step, after");
  for (const auto& [order, kv] : rows) {
    const Key& k = kv->first;
    const Agg& a = kv->second;
    std::string name = std::get<0>(k);
    if (name.size() > 58) name = name.substr(0, 55) + "...";
    double sum = 0;
    for (double x : a.adds) sum += x;
    absl::StrAppendFormat(&out, "  %-58s %14s %4d %5d %4d %6.1f %7.2f %7.2f %7.2f %8.1f  x%.0f after %s\n", name,
                          absl::StrFormat("%dx%dx%d", std::get<1>(k), std::get<2>(k), std::get<3>(k)), std::get<4>(k),
                          a.block, a.registers, a.smem / 1024.0, Median(a.dur), Median(a.lead), Median(a.adds),
                          sum / n, a.launches / n, std::get<5>(k));
  }
  absl::StrAppendFormat(&out, "  step: first start to last end %.1f us, adds %.1f us, then %.2f us to the next step\n",
                        Median(step_us), Median(adds_us), gap_us.empty() ? 0.0 : Median(gap_us));
  // Each step's time in the order run: a drift (e.g. the clocks after a long prefill) shows here.
  out += "  steps in order (us):";
  for (double t : step_us) absl::StrAppendFormat(&out, " %.0f", t);
  out += "\n";
  return out;
}

}  // namespace llama::bench
