#include "kernels/launch.h"

#include <atomic>

namespace llama::kernels {
namespace {
std::atomic<bool> g_pdl{true};
}
void SetProgrammaticLaunch(bool on) { g_pdl.store(on); }
bool ProgrammaticLaunch() { return g_pdl.load(); }
}  // namespace llama::kernels
