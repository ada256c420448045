// RMSNorm, SwiGLU, embedding gather and argmax / greedy advance against CPU references.
#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/activation.h"
#include "kernels/embedding.h"
#include "kernels/norm.h"
#include "kernels/read_stream.h"
#include "kernels/sampling.h"
#include "tests/cuda/cuda_test_util.h"

namespace llama::testing {
namespace {

TEST(RmsNormTest, MatchesReference) {
  SKIP_WITHOUT_CUDA();
  for (const auto& [dim, rows] : std::vector<std::pair<int, int>>{{64, 5}, {4096, 3}}) {
    const auto x = RandomFloats(static_cast<size_t>(rows) * dim, -3.f, 3.f);
    const auto w = RandomFloats(dim, 0.5f, 1.5f);
    std::vector<double> want(x.size());
    for (int r = 0; r < rows; ++r) {
      double ss = 0;
      for (int i = 0; i < dim; ++i) ss += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
      const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
      for (int i = 0; i < dim; ++i) want[r * dim + i] = x[r * dim + i] * inv * w[i];
    }
    DeviceBuffer<float> dx(x), dw(w);
    DeviceBuffer<__half> out(x.size());
    ASSERT_EQ(kernels::LaunchRmsNorm(dx.get(), dim, dw.get(), dim, 1e-5f, out.get(), dim, rows, nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_LT(RelError(FromHalf(out.Download()), want), 1e-3);
  }
}

TEST(SwiGluTest, MatchesReference) {
  SKIP_WITHOUT_CUDA();
  for (const auto& [ffn, rows] : std::vector<std::pair<int, int>>{{192, 3}, {11008, 2}}) {
    const auto gu = RandomFloats(static_cast<size_t>(rows) * 2 * ffn, -6.f, 6.f);
    std::vector<double> want(static_cast<size_t>(rows) * ffn);
    for (int r = 0; r < rows; ++r)
      for (int i = 0; i < ffn; ++i) {
        const double g = gu[r * 2 * ffn + i], u = gu[r * 2 * ffn + ffn + i];
        want[r * ffn + i] = g / (1 + std::exp(-g)) * u;
      }
    DeviceBuffer<float> dgu(gu);
    DeviceBuffer<__half> out(want.size());
    ASSERT_EQ(kernels::LaunchSwiGlu(dgu.get(), ffn, out.get(), rows, nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_LT(RelError(FromHalf(out.Download()), want), 1e-3);
  }
}

// The fp16-input overload (the prefill GEMM's fp16 output, prefill_half_outputs) computes the
// same bits from the same values.
TEST(SwiGluTest, HalfInputMatchesFloatInput) {
  SKIP_WITHOUT_CUDA();
  const int ffn = 11008, rows = 5;
  const auto gu = RoundToHalf(RandomFloats(static_cast<size_t>(rows) * 2 * ffn, -8.f, 8.f));
  DeviceBuffer<float> d32(gu);
  DeviceBuffer<__half> d16(ToHalf(gu)), out32(static_cast<size_t>(rows) * ffn), out16(out32.size());
  ASSERT_EQ(kernels::LaunchSwiGlu(d32.get(), ffn, out32.get(), rows, nullptr), cudaSuccess);
  ASSERT_EQ(kernels::LaunchSwiGlu(d16.get(), ffn, out16.get(), rows, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(FromHalf(out16.Download()), FromHalf(out32.Download()));
  EXPECT_EQ(kernels::LaunchSwiGlu(d16.get(), 6, out16.get(), 1, nullptr), cudaErrorInvalidValue) << "ffn % 4 != 0";
}

TEST(EmbeddingTest, GathersRows) {
  SKIP_WITHOUT_CUDA();
  const int vocab = 32000, dim = 4096;
  const auto table = RoundToHalf(RandomFloats(static_cast<size_t>(vocab) * dim));
  const std::vector<int32_t> tokens = {0, 31999, 7, 7, 12345};
  DeviceBuffer<__half> dt(ToHalf(table));
  DeviceBuffer<int32_t> dtok(tokens);
  // One block a row, then several (5 does not divide dim); every launch clears `zero`.
  for (const int parts : {1, 5, 16}) {
    DeviceBuffer<float> x(tokens.size() * dim), zero(std::vector<float>(12289, 1.f));
    ASSERT_EQ(kernels::LaunchEmbedding(dt.get(), dim, dtok.get(), x.get(), static_cast<int>(tokens.size()), nullptr,
                                       zero.get(), zero.size(), parts),
              cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const auto got = x.Download();
    for (size_t r = 0; r < tokens.size(); ++r)
      for (int i = 0; i < dim; ++i)
        ASSERT_EQ(got[r * dim + i], table[static_cast<size_t>(tokens[r]) * dim + i]) << "parts " << parts;
    for (float z : zero.Download()) ASSERT_EQ(z, 0.f) << "parts " << parts;
  }
  DeviceBuffer<float> x(dim);
  EXPECT_EQ(kernels::LaunchEmbedding(dt.get(), dim, dtok.get(), x.get(), 1, nullptr, nullptr, 0, 0),
            cudaErrorInvalidValue);
}

TEST(ArgmaxTest, PicksLowestIndexOfMaximum) {
  SKIP_WITHOUT_CUDA();
  const int vocab = 32000, rows = 3;
  auto logits = RandomFloats(static_cast<size_t>(rows) * vocab, -10.f, 10.f);
  logits[1 * vocab + 5] = 50.f;       // tie: lowest index wins
  logits[1 * vocab + 30000] = 50.f;
  logits[2 * vocab + vocab - 1] = 60.f;
  std::vector<int32_t> want(rows);
  for (int r = 0; r < rows; ++r)
    want[r] = static_cast<int32_t>(std::max_element(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab) -
                                   (logits.begin() + r * vocab));
  DeviceBuffer<float> dl(logits);
  DeviceBuffer<int32_t> out(rows);
  ASSERT_EQ(kernels::LaunchArgmax(dl.get(), vocab, vocab, out.get(), rows, nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(out.Download(), want);
  EXPECT_EQ(want[1], 5);

  // Greedy advance: history[step] = argmax, token = argmax, pos += 1, step += 1.
  DeviceBuffer<int32_t> token(std::vector<int32_t>{3}), pos(std::vector<int32_t>{41}),
      hist(std::vector<int32_t>{-1, -1, -1}), step(std::vector<int32_t>{1});
  ASSERT_EQ(kernels::LaunchGreedyAdvance(dl.get() + 2 * vocab, vocab, token.get(), pos.get(), hist.get(), step.get(),
                                         nullptr), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(token.Download()[0], vocab - 1);
  EXPECT_EQ(pos.Download()[0], 42);
  EXPECT_EQ(step.Download()[0], 2);
  EXPECT_EQ(hist.Download(), (std::vector<int32_t>{-1, vocab - 1, -1}));
}

// sol_bench's read-only kernels read every word of their range once: the XOR they leave in the
// sink is the host's, for each load pattern, PDL wait and the persistent phases.
TEST(ReadStreamTest, XorsEveryWordOnce) {
  SKIP_WITHOUT_CUDA();
  std::uniform_int_distribution<uint32_t> u;
  const size_t n16a = 32 * 1237, n16b = 32 * 29, n16c = 32 * 7;  // lines that split unevenly over the warps
  std::vector<uint32_t> a(n16a * 4), b(n16b * 4), c(n16c * 4);
  uint32_t xa = 0, xb = 0, xc = 0;
  for (auto& v : a) xa ^= (v = u(Rng()));
  for (auto& v : b) xb ^= (v = u(Rng()));
  for (auto& v : c) xc ^= (v = u(Rng()));
  DeviceBuffer<uint32_t> da(a), db(b), dc(c), sink(1), barrier(1);
  for (const kernels::ReadStreamTuning& t : std::vector<kernels::ReadStreamTuning>{
           {2, 4, true, true, true}, {3, 4, false, true, true}, {4, 4, true, false, true}, {2, 8, true, true, true}}) {
    SCOPED_TRACE(::testing::Message() << t.blocks_per_sm << " blocks/SM, " << t.unroll << " in flight");
    sink.Zero();
    ASSERT_EQ(kernels::LaunchReadStream(da.get(), n16a, t, sink.get(), nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(sink.Download()[0], xa);
    sink.Zero();
    barrier.Zero();
    DeviceBuffer<const void*> ptr(std::vector<const void*>{da.get(), db.get(), dc.get()});
    DeviceBuffer<size_t> n16(std::vector<size_t>{n16a, n16b, n16c});
    ASSERT_EQ(kernels::LaunchReadPhases(ptr.get(), n16.get(), 3, t, barrier.get(), sink.get(), nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(sink.Download()[0], xa ^ xb ^ xc);  // a phase skipped or run twice changes it
  }
  // Two loads in flight per lane (the stream kernel only; the persistent phases take 4 or 8).
  {
    const kernels::ReadStreamTuning t{4, 2, true, true, true};
    sink.Zero();
    ASSERT_EQ(kernels::LaunchReadStream(da.get(), n16a, t, sink.get(), nullptr), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(sink.Download()[0], xa) << "4 blocks/SM, 2 in flight";
  }
  // Work stealing: chunks taken from a counter read every line once too, whether the warps
  // outnumber the chunks or not.
  DeviceBuffer<uint32_t> counter(1);
  for (int chunk : {4, 8, 64, 4096}) {
    kernels::ReadStreamTuning t{2, 4, true, true, true};
    t.dyn_chunk_lines = chunk;
    SCOPED_TRACE(::testing::Message() << "chunks of " << chunk << " lines");
    sink.Zero();
    counter.Zero();
    kernels::ReadStreamExtras extras;
    extras.counter = counter.get();
    ASSERT_EQ(kernels::LaunchReadStream(da.get(), n16a, t, sink.get(), nullptr, extras), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(sink.Download()[0], xa);
    EXPECT_EQ(kernels::LaunchReadStream(da.get(), n16a, t, sink.get(), nullptr), cudaErrorInvalidValue);  // no counter
  }
  // Through a TMA ring of 2, 4 or 8 stages per warp, with runs longer and shorter than it
  // (40,000 lines: ~38 a warp on 132 SMs, so the rings wrap; b and c: a line or none a warp).
  const size_t n16d = 32 * 40000;
  std::vector<uint32_t> d(n16d * 4);
  uint32_t xd = 0;
  for (auto& v : d) xd ^= (v = u(Rng()));
  DeviceBuffer<uint32_t> dd(d);
  // Every word of a, b, c and d read once with `t` (the sink's XOR).
  auto ReadsEveryWordOnce = [&](const kernels::ReadStreamTuning& t) {
    for (const auto& [buf, n16, x] : std::vector<std::tuple<const uint32_t*, size_t, uint32_t>>{
             {da.get(), n16a, xa}, {db.get(), n16b, xb}, {dc.get(), n16c, xc}, {dd.get(), n16d, xd}}) {
      sink.Zero();
      ASSERT_EQ(kernels::LaunchReadStream(buf, n16, t, sink.get(), nullptr), cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(sink.Download()[0], x);
    }
  };
  for (const auto& [stages, lines] : std::vector<std::pair<int, int>>{{2, 4}, {4, 4}, {8, 2}, {4, 1}}) {
    kernels::ReadStreamTuning t{1, 4, true, true, true};
    t.bulk_stages = stages;
    t.bulk_stage_lines = lines;
    SCOPED_TRACE(::testing::Message() << "ring of " << stages << " x " << lines << " lines");
    ReadsEveryWordOnce(t);
  }
  // Strided sets (sol_bench's fifth field "s"): every line once too, with 2, 4 or 8 in
  // flight, whether the warps outnumber the sets or not; no work stealing or ring with it.
  for (int unroll : {2, 4, 8}) {
    kernels::ReadStreamTuning t{3, unroll, true, true, true};
    t.strided = true;
    SCOPED_TRACE(::testing::Message() << "strided sets of " << unroll);
    ReadsEveryWordOnce(t);
    t.dyn_chunk_lines = 8;
    kernels::ReadStreamExtras e;
    e.counter = counter.get();
    EXPECT_EQ(kernels::LaunchReadStream(da.get(), n16a, t, sink.get(), nullptr, e), cudaErrorInvalidValue);
  }
  // Sets spread over chunks of a run (sol_bench's "xC" / "pC"): every line once, for chunks
  // longer and shorter than the runs and last chunks of any length.
  for (const auto& [spread, unroll, chunk] :
       std::vector<std::tuple<int, int, int>>{{1, 4, 16}, {2, 4, 16}, {1, 4, 36}, {2, 4, 36}, {2, 8, 24}, {1, 8, 64}}) {
    kernels::ReadStreamTuning t{1, unroll, true, true, true};  // d: ~38 lines a warp on 132 SMs
    t.spread = spread;
    t.spread_chunk = chunk;
    SCOPED_TRACE(::testing::Message() << "spread " << spread << ", " << unroll << " loads, chunks of " << chunk);
    ReadsEveryWordOnce(t);
    t.spread_chunk = chunk + 2;  // not a multiple of the set
    EXPECT_EQ(kernels::LaunchReadStream(da.get(), n16a, t, sink.get(), nullptr), cudaErrorInvalidValue);
  }
  const kernels::ReadStreamTuning t;
  EXPECT_EQ(kernels::LaunchReadStream(da.get(), n16a + 16, t, sink.get(), nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace llama::testing
