// Kernel timeline of replayed decode steps, from CUPTI's concurrent-kernel activity records
// (start and end of every kernel as the GPU ran it, PDL overlaps and graph replays included;
// ncu, by contrast, times each kernel alone). Used by llama_bench --timeline.
//
//   KernelTimeline t;           // starts recording (before the runner whose graphs are traced)
//   ... decode steps ...
//   std::vector<KernelSpan> k = t.Stop();
//   std::string table = DescribeSteps(k, "GreedyAdvance");
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace llama::bench {

struct KernelSpan {
  std::string name;  // demangled, namespaces and parameter list dropped
  uint64_t start = 0, end = 0;  // ns, GPU timestamps
  int grid[3] = {0, 0, 0}, block[3] = {0, 0, 0}, cluster[3] = {0, 0, 0};
  int registers = 0, dynamic_smem = 0;
};

// Records kernels from construction until Stop() (or destruction). One at a time per process.
class KernelTimeline {
 public:
  KernelTimeline();
  ~KernelTimeline();
  KernelTimeline(const KernelTimeline&) = delete;
  KernelTimeline& operator=(const KernelTimeline&) = delete;
  absl::Status status() const { return status_; }
  // Drops what was recorded so far (e.g. the warm-up's kernels); recording goes on.
  void Clear();
  // Stops recording; the kernels in start order.
  std::vector<KernelSpan> Stop();

 private:
  absl::Status status_;
  bool running_ = false;
};

// The steps in `kernels`, each ending with a kernel whose name contains `step_end` (the last
// step counted whole is the last one that ends so): per kernel (name, grid, cluster, and the
// kernel before it: one kernel in two places of a layer gets two rows), in first-launch
// order, the launches per step and the medians over every launch of
//   dur: end - start;  lead: how long before its predecessor ended it started (PDL);
//   adds: end - the predecessor's end, its share of the step's critical path.
// Then the step: median first start to last end, the gap to the next step's first kernel,
// and the sum of the adds.
std::string DescribeSteps(const std::vector<KernelSpan>& kernels, absl::string_view step_end);

}  // namespace llama::bench
