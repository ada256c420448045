// Token selection on the device.
//   LaunchArgmax: out[m] = argmax_v logits[m * ld + v] (lowest index on ties).
//   LaunchGreedyAdvance (one sequence, for on-device decode loops): t = argmax(logits[0]);
//     history[*step] = t; token[0] = t; pos[0] += 1; *step += 1. The next replay of the
//     decode graph then feeds t at the next position with no host round-trip.
//   LaunchArgmaxAdvance (a batch of greedy rows): token[m] = argmax(logits[m]); pos[m] += 1,
//     so the next replay of the same batch's graph feeds every row's choice.
//   LaunchSampleAdvance (a batch of sampled rows): token[m] = the id
//     the sampling rule of engine/sampler.h picks from logits[m] under rows[m] (temperature 0:
//     the argmax) with u = SampleUniform(rows[m].seed, rows[m].draw); pos[m] += 1 and, at
//     temperature > 0, rows[m].draw += 1, so the next replay samples the next token.
//   LaunchArgmaxAdvance and LaunchSampleAdvance also write each row's id to ids[m] when ids
//     is not null: pinned host memory mapped for the device (cudaMallocHost), which the host
//     reads once the step is done, with no copy in the stream between steps.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace llama::kernels {

cudaError_t LaunchArgmax(const float* logits, int vocab, int ld, int32_t* out, int rows,
                         cudaStream_t stream);
cudaError_t LaunchArgmaxAdvance(const float* logits, int vocab, int ld, int32_t* token, int32_t* pos, int rows,
                                cudaStream_t stream, int32_t* ids = nullptr);
// One row of LaunchSampleAdvance (engine::RowSampling on the device).
struct SampleRow {
  float temperature;  // 0: argmax
  int32_t top_k;      // 0 (or >= vocab): off
  float top_p;        // (0, 1]; 1: off
  int32_t unused;
  uint64_t seed;
  uint64_t draw;      // t of this row's token: u = SampleUniform(seed, draw)
};

// One block of 1024 threads per row; the row is staged in shared memory when vocab <= 51200.
cudaError_t LaunchSampleAdvance(const float* logits, int vocab, int ld, SampleRow* rows, int32_t* token,
                                int32_t* pos, int n, cudaStream_t stream, int32_t* ids = nullptr);
cudaError_t LaunchGreedyAdvance(const float* logits, int vocab, int32_t* token, int32_t* pos,
                                int32_t* history, int32_t* step, cudaStream_t stream);

}  // namespace llama::kernels
