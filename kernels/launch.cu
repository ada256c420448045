#include "kernels/launch.h"

#include <atomic>

namespace llama::kernels {
namespace {
std::atomic<bool> g_pdl{true};
}
void SetProgrammaticLaunch(bool on) { g_pdl.store(on); }
bool ProgrammaticLaunch() { return g_pdl.load(); }

int SmCount() {
  static int cached[64] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 0;
  if (cached[dev] == 0) cudaDeviceGetAttribute(&cached[dev], cudaDevAttrMultiProcessorCount, dev);
  return cached[dev];
}
}  // namespace llama::kernels
