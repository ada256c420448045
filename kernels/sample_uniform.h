// The uniform number behind a sequence's t-th sampled token: u = SampleUniform(seed, t), a pure
// function (splitmix64 finalizer over the seed, then over the seed's mix plus t), so that the
// host sampler (engine/sampler.cc) and the device kernel (kernels/sampling.cu) draw the same
// number for the same (seed, t) with no shared state. Usable from host C++ and CUDA device code.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define LLAMA_HOST_DEVICE __host__ __device__
#else
#define LLAMA_HOST_DEVICE
#endif

namespace llama::kernels {

// splitmix64's output function: a bijection of 64-bit words with good avalanche.
LLAMA_HOST_DEVICE inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A double in [0, 1) from 53 bits of Mix64(Mix64(seed) + (t + 1) * golden gamma).
LLAMA_HOST_DEVICE inline double SampleUniform(uint64_t seed, uint64_t t) {
  const uint64_t z = Mix64(Mix64(seed) + (t + 1) * 0x9E3779B97F4A7C15ull);
  return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace llama::kernels
