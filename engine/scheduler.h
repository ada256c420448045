// Continuous-batching scheduler for one loaded model variant. It owns the KV slots of a
// ModelRunner and drives many `Sequence`s through it: queued requests are admitted into
// free slots, prefilled in chunks between decode steps, then all decoding sequences
// advance together with ONE batched Decode per iteration, so streams interleave fairly.
// It knows requests and slots, never kernels: the CPU and CUDA backends share it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/generate.h"
#include "engine/runner.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

namespace llama {

struct GenerationRequest {
  std::vector<int> prompt;  // token ids, BOS included when wanted
  SamplingParams params;
  std::string id;           // for logs/metrics; may be empty
  // Generation stops (status DeadlineExceeded, finish kCancelled) once this passes.
  absl::Time deadline = absl::InfiniteFuture();
};

// One piece of a stream. Normally one generated token per chunk.
struct StreamChunk {
  std::vector<int> tokens;        // newly generated ids
  std::string text;               // newly final text (may be empty: held back)
  std::vector<float> logprobs;    // parallel to tokens when params.logprobs
  FinishReason finish = FinishReason::kNone;  // set on the last chunk only
  int prompt_tokens = 0;          // usage so far (final on the last chunk)
  int completion_tokens = 0;
};

// Hooks for metrics. Called on the scheduler's worker thread: keep them cheap, never
// block, never call back into the Scheduler.
struct SchedulerHooks {
  // First generated token of a request; ttft measured from Submit.
  std::function<void(const std::string& id, absl::Duration ttft)> on_first_token;
  // Every later token; `gap` since the previous token of the same request.
  std::function<void(const std::string& id, absl::Duration gap)> on_token;
  // Once per request that was accepted by Submit, when it ends (any way).
  std::function<void(const std::string& id, FinishReason finish, const absl::Status& status,
                     int prompt_tokens, int completion_tokens)>
      on_finish;
};

struct SchedulerOptions {
  int max_queue = 64;          // requests waiting for a slot; beyond -> ResourceExhausted
  std::vector<int> eos_ids;    // empty: the tokenizer's eos id
  int prefill_chunk = 256;     // prompt tokens prefilled per iteration, over all sequences
                               // (bounds how long decoding streams wait for a new prompt)
  SchedulerHooks hooks;
};

struct SchedulerStats {
  int queued = 0;              // waiting for a slot
  int active = 0;              // holding a slot (prefilling or decoding)
  int64_t tokens_generated = 0;   // total since construction
  int64_t requests_completed = 0; // ended in any way (incl. cancel/error)
};

namespace internal { struct RequestState; }

// The consumer side of one request's stream. Thread-safe; one reader expected.
class RequestHandle {
 public:
  explicit RequestHandle(std::shared_ptr<internal::RequestState> state);
  ~RequestHandle();

  // Blocks until the next chunk; false once the stream has ended and all chunks were read.
  bool Next(StreamChunk* out);
  // Like Next but waits at most `timeout`. Returns true with a chunk; false on timeout
  // (*ended = false) or when the stream is over (*ended = true).
  bool NextFor(StreamChunk* out, absl::Duration timeout, bool* ended);
  // Stops generation; the slot is freed at the worker's next iteration. The stream then
  // ends with a chunk whose finish is kCancelled and status() Cancelled. Idempotent.
  void Cancel();
  // Final status once the stream ended: OK, Cancelled, DeadlineExceeded, or the engine
  // error. Unknown (code kUnknown, "still running") while the stream is running.
  absl::Status status() const;
  bool done() const;
  const std::string& id() const;

 private:
  std::shared_ptr<internal::RequestState> state_;
};

class Scheduler {
 public:
  Scheduler(std::unique_ptr<ModelRunner> runner, std::shared_ptr<const Tokenizer> tok,
            SchedulerOptions opts);
  ~Scheduler();  // cancels everything (status Cancelled), joins the worker
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // InvalidArgument (bad params, empty prompt, token id out of vocab, prompt >= context),
  // ResourceExhausted (queue full), FailedPrecondition (draining / shut down).
  // max_new_tokens is capped so that prompt + generated <= the runner's context; such a
  // sequence finishes with kLength.
  absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(GenerationRequest req);

  // Stops accepting new requests (Submit -> FailedPrecondition); does not wait.
  void StopAccepting();
  // StopAccepting, then waits until every queued and active request has ended.
  void Drain();
  bool accepting() const;

  SchedulerStats stats() const;
  const ModelRunner& runner() const { return *runner_; }
  const Tokenizer& tokenizer() const { return *tok_; }
  std::shared_ptr<const Tokenizer> shared_tokenizer() const { return tok_; }

 private:
  struct Active;
  void WorkerLoop();
  // Appends a chunk to the request's stream; `last` ends it with `status`.
  void Push(internal::RequestState& r, StreamChunk chunk, bool last, bool was_active,
            absl::Status status);
  // Streams one Sequence step (and counts its token).
  void Emit(Active& a, const StepOutput& out);
  void EndActive(Active& a, absl::Status status);  // cancel / deadline / engine error
  void EndQueued(internal::RequestState& r, absl::Status status);
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<ModelRunner> runner_;
  std::shared_ptr<const Tokenizer> tok_;
  SchedulerOptions opts_;
  std::vector<int> eos_ids_;

  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<internal::RequestState>> queue_ ABSL_GUARDED_BY(mu_);
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int active_count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t tokens_generated_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread worker_;
};

}  // namespace llama
