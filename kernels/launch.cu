#include "kernels/launch.h"

#include <atomic>

namespace llama::kernels {
namespace {
std::atomic<bool> g_pdl{true};
std::atomic<int> g_carveout{-1};
}
void SetProgrammaticLaunch(bool on) { g_pdl.store(on); }
bool ProgrammaticLaunch() { return g_pdl.load(); }
void SetLaunchCarveout(int percent) { g_carveout.store(percent); }
int LaunchCarveout() { return g_carveout.load(); }

int SmCount() {
  static int cached[64] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 0;
  if (cached[dev] == 0) cudaDeviceGetAttribute(&cached[dev], cudaDevAttrMultiProcessorCount, dev);
  return cached[dev];
}
}  // namespace llama::kernels
