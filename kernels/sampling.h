// Token selection on the device.
//   LaunchArgmax: out[m] = argmax_v logits[m * ld + v] (lowest index on ties).
//   LaunchGreedyAdvance (one sequence, for on-device decode loops): t = argmax(logits[0]);
//     history[*step] = t; token[0] = t; pos[0] += 1; *step += 1. The next replay of the
//     decode graph then feeds t at the next position with no host round-trip.
//   LaunchArgmaxAdvance (a batch of greedy rows): token[m] = argmax(logits[m]); pos[m] += 1,
//     so the next replay of the same batch's graph feeds every row's choice.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace llama::kernels {

cudaError_t LaunchArgmax(const float* logits, int vocab, int ld, int32_t* out, int rows,
                         cudaStream_t stream);
cudaError_t LaunchArgmaxAdvance(const float* logits, int vocab, int ld, int32_t* token, int32_t* pos, int rows,
                                cudaStream_t stream);
cudaError_t LaunchGreedyAdvance(const float* logits, int vocab, int32_t* token, int32_t* pos,
                                int32_t* history, int32_t* step, cudaStream_t stream);

}  // namespace llama::kernels
