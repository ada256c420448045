#include "engine/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace llama {
namespace internal {

// Shared by the worker (producer) and the RequestHandle (consumer).
struct RequestState {
  GenerationRequest req;
  absl::Time submitted;
  absl::Time last_token;
  bool first_token_seen = false;
  std::atomic<bool> cancelled{false};

  mutable absl::Mutex mu;
  std::deque<StreamChunk> chunks ABSL_GUARDED_BY(mu);
  bool ended ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu) = absl::UnknownError("still running");

  bool Readable() const ABSL_SHARED_LOCKS_REQUIRED(mu) { return !chunks.empty() || ended; }
};

}  // namespace internal

// ---------------------------------------------------------------- RequestHandle

RequestHandle::RequestHandle(std::shared_ptr<internal::RequestState> state)
    : state_(std::move(state)) {}

RequestHandle::~RequestHandle() = default;

bool RequestHandle::Next(StreamChunk* out) {
  internal::RequestState& s = *state_;
  absl::MutexLock lock(&s.mu);
  s.mu.Await(absl::Condition(&s, &internal::RequestState::Readable));
  if (s.chunks.empty()) return false;
  *out = std::move(s.chunks.front());
  s.chunks.pop_front();
  return true;
}

bool RequestHandle::NextFor(StreamChunk* out, absl::Duration timeout, bool* ended) {
  internal::RequestState& s = *state_;
  absl::MutexLock lock(&s.mu);
  s.mu.AwaitWithTimeout(absl::Condition(&s, &internal::RequestState::Readable), timeout);
  if (!s.chunks.empty()) {
    *out = std::move(s.chunks.front());
    s.chunks.pop_front();
    if (ended != nullptr) *ended = false;
    return true;
  }
  if (ended != nullptr) *ended = s.ended;
  return false;
}

void RequestHandle::Cancel() { state_->cancelled.store(true); }

absl::Status RequestHandle::status() const {
  absl::MutexLock lock(&state_->mu);
  return state_->status;
}

bool RequestHandle::done() const {
  absl::MutexLock lock(&state_->mu);
  return state_->ended;
}

const std::string& RequestHandle::id() const { return state_->req.id; }

// ---------------------------------------------------------------- Scheduler

struct Scheduler::Active {
  std::shared_ptr<internal::RequestState> r;
  std::unique_ptr<Sequence> seq;
  int slot = -1;
  int prefilled = 0;      // prompt tokens already in the KV cache
  bool decoding = false;  // whole prompt in cache and the first token sampled
  bool done = false;
};

Scheduler::Scheduler(std::unique_ptr<ModelRunner> runner, std::shared_ptr<const Tokenizer> tok,
                     SchedulerOptions opts)
    : runner_(std::move(runner)), tok_(std::move(tok)), opts_(std::move(opts)) {
  eos_ids_ = opts_.eos_ids;
  if (eos_ids_.empty() && tok_ != nullptr) eos_ids_.push_back(tok_->eos_id());
  if (opts_.prefill_chunk <= 0) opts_.prefill_chunk = 256;
  if (opts_.max_queue < 0) opts_.max_queue = 0;
  worker_ = std::thread([this] { WorkerLoop(); });
}

Scheduler::~Scheduler() {
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

absl::StatusOr<std::shared_ptr<RequestHandle>> Scheduler::Submit(GenerationRequest req) {
  if (req.prompt.empty()) {
    return absl::InvalidArgumentError("Scheduler::Submit: empty prompt");
  }
  const int vocab = runner_->config().vocab_size;
  for (size_t i = 0; i < req.prompt.size(); ++i) {
    if (req.prompt[i] < 0 || req.prompt[i] >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("Scheduler::Submit: prompt token ", i, " has id ", req.prompt[i],
                       ", outside the vocabulary [0, ", vocab, ")"));
    }
  }
  const int ctx = runner_->max_context();
  const int prompt_len = static_cast<int>(req.prompt.size());
  if (prompt_len >= ctx) {
    return absl::InvalidArgumentError(
        absl::StrCat("Scheduler::Submit: prompt has ", prompt_len,
                     " tokens; the context holds ", ctx, " (prompt must be shorter)"));
  }
  if (absl::Status s = ValidateSamplingParams(req.params); !s.ok()) return s;
  if (req.params.max_new_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Scheduler::Submit: max_new_tokens must be >= 1, got ", req.params.max_new_tokens));
  }
  req.params.max_new_tokens = std::min(req.params.max_new_tokens, ctx - prompt_len);

  auto state = std::make_shared<internal::RequestState>();
  state->req = std::move(req);
  state->submitted = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (!accepting_) {
      return absl::FailedPreconditionError(
          stopping_ ? "Scheduler::Submit: scheduler is shut down"
                    : "Scheduler::Submit: scheduler is draining; no new requests accepted");
    }
    if (static_cast<int>(queue_.size()) >= opts_.max_queue) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "Scheduler::Submit: queue full (", queue_.size(), " requests waiting, limit ",
          opts_.max_queue, ")"));
    }
    queue_.push_back(state);
  }
  return std::make_shared<RequestHandle>(std::move(state));
}

void Scheduler::StopAccepting() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
}

bool Scheduler::accepting() const {
  absl::MutexLock lock(&mu_);
  return accepting_;
}

bool Scheduler::IdleLocked() const { return queue_.empty() && active_count_ == 0; }
bool Scheduler::HasWorkLocked() const { return !queue_.empty() || stopping_; }

void Scheduler::Drain() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
  mu_.Await(absl::Condition(this, &Scheduler::IdleLocked));
}

SchedulerStats Scheduler::stats() const {
  absl::MutexLock lock(&mu_);
  SchedulerStats s;
  s.queued = static_cast<int>(queue_.size());
  s.active = active_count_;
  s.tokens_generated = tokens_generated_;
  s.requests_completed = completed_;
  return s;
}

void Scheduler::Push(internal::RequestState& r, StreamChunk chunk, bool last, bool was_active,
                     absl::Status status) {
  if (!last) {
    absl::MutexLock lock(&r.mu);
    r.chunks.push_back(std::move(chunk));
    return;
  }
  if (opts_.hooks.on_finish) {
    opts_.hooks.on_finish(r.req.id, chunk.finish, status, chunk.prompt_tokens,
                          chunk.completion_tokens);
  }
  // The stream end and the counters change together (lock order: mu_, then r.mu), so a
  // reader who sees the end also sees the stats, and Drain sees ended streams.
  absl::MutexLock lock(&mu_);
  if (was_active) --active_count_;
  ++completed_;
  absl::MutexLock rlock(&r.mu);
  r.chunks.push_back(std::move(chunk));
  r.ended = true;
  r.status = std::move(status);
}

void Scheduler::EndActive(Active& a, absl::Status status) {
  StreamChunk chunk;
  chunk.finish = FinishReason::kCancelled;
  chunk.prompt_tokens = a.seq->prompt_len();
  chunk.completion_tokens = a.seq->generated();
  if (!status.ok() && !absl::IsCancelled(status) && !absl::IsDeadlineExceeded(status)) {
    chunk.finish = FinishReason::kNone;  // engine error: no finish reason, status says why
  }
  a.done = true;
  Push(*a.r, std::move(chunk), /*last=*/true, /*was_active=*/true, std::move(status));
}

void Scheduler::EndQueued(internal::RequestState& r, absl::Status status) {
  StreamChunk chunk;
  chunk.finish = FinishReason::kCancelled;
  chunk.prompt_tokens = static_cast<int>(r.req.prompt.size());
  Push(r, std::move(chunk), /*last=*/true, /*was_active=*/false, std::move(status));
}

void Scheduler::Emit(Active& a, const StepOutput& out) {
  internal::RequestState& r = *a.r;
  const absl::Time now = absl::Now();
  StreamChunk chunk;
  int64_t produced = 0;
  if (out.token >= 0) {
    chunk.tokens.push_back(out.token);
    if (a.seq->params().logprobs) chunk.logprobs.push_back(out.logprob);
    produced = 1;
    if (!r.first_token_seen) {
      r.first_token_seen = true;
      if (opts_.hooks.on_first_token) opts_.hooks.on_first_token(r.req.id, now - r.submitted);
    } else if (opts_.hooks.on_token) {
      opts_.hooks.on_token(r.req.id, now - r.last_token);
    }
    r.last_token = now;
  }
  chunk.text = out.text;
  chunk.finish = out.finish;
  chunk.prompt_tokens = a.seq->prompt_len();
  chunk.completion_tokens = a.seq->generated();
  const bool last = out.finish != FinishReason::kNone;
  if (last) a.done = true;
  if (produced > 0) {
    absl::MutexLock lock(&mu_);
    tokens_generated_ += produced;
  }
  Push(r, std::move(chunk), last, /*was_active=*/true, absl::OkStatus());
}

void Scheduler::WorkerLoop() {
  const int vocab = runner_->config().vocab_size;
  std::vector<Active> active;
  std::vector<int> free_slots;
  for (int s = runner_->max_slots() - 1; s >= 0; --s) free_slots.push_back(s);
  std::vector<float> logits;

  while (true) {
    std::vector<std::shared_ptr<internal::RequestState>> dropped;   // cancelled while queued
    std::vector<std::shared_ptr<internal::RequestState>> admitted;
    bool stop = false;
    {
      absl::MutexLock lock(&mu_);
      // Idle: sleep until something arrives (no busy-waiting). A cancel cannot matter
      // here: with no active sequence, nothing can be waiting in the queue.
      if (active.empty()) mu_.Await(absl::Condition(this, &Scheduler::HasWorkLocked));
      stop = stopping_;
      const absl::Time now = absl::Now();
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (stop || (*it)->cancelled.load() || now >= (*it)->req.deadline) {
          dropped.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      while (!stop && admitted.size() < free_slots.size() && !queue_.empty()) {
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
        ++active_count_;
      }
    }
    for (auto& r : dropped) {
      absl::Status why = r->cancelled.load() || stop
                             ? absl::CancelledError(stop ? "scheduler shut down"
                                                         : "request cancelled")
                             : absl::DeadlineExceededError("deadline passed while queued");
      EndQueued(*r, std::move(why));
    }
    if (stop) {
      for (Active& a : active) {
        if (!a.done) EndActive(a, absl::CancelledError("scheduler shut down"));
      }
      return;
    }
    for (auto& r : admitted) {
      Active a;
      a.slot = free_slots.back();
      free_slots.pop_back();
      a.seq = std::make_unique<Sequence>(tok_.get(), r->req.prompt, r->req.params, eos_ids_);
      a.r = std::move(r);
      active.push_back(std::move(a));
    }

    // 1. Cancellation and deadlines: free the slot now.
    const absl::Time now = absl::Now();
    for (Active& a : active) {
      if (a.r->cancelled.load()) {
        EndActive(a, absl::CancelledError("request cancelled"));
      } else if (now >= a.r->req.deadline) {
        EndActive(a, absl::DeadlineExceededError(absl::StrCat(
                         "deadline passed after ", a.seq->generated(), " generated tokens")));
      }
    }
    // 2. Prefill, at most prefill_chunk prompt tokens per iteration (oldest admitted
    //    first), so long prompts never stall the decoding streams for long.
    logits.resize(static_cast<size_t>(vocab) * std::max<size_t>(1, active.size()));
    int budget = opts_.prefill_chunk;
    for (Active& a : active) {
      if (a.done || a.decoding) continue;
      if (budget <= 0) break;
      const std::vector<int>& prompt = a.r->req.prompt;
      const int plen = static_cast<int>(prompt.size());
      const int n = std::min(budget, plen - a.prefilled);
      budget -= n;
      std::vector<int32_t> chunk(prompt.begin() + a.prefilled, prompt.begin() + a.prefilled + n);
      absl::Status s = runner_->Prefill(a.slot, a.prefilled, chunk,
                                        absl::MakeSpan(logits.data(), vocab));
      if (!s.ok()) {
        EndActive(a, absl::Status(s.code(), absl::StrCat("prefill of slot ", a.slot, " at ",
                                                          a.prefilled, ": ", s.message())));
        continue;
      }
      a.prefilled += n;
      if (a.prefilled == plen) {
        a.decoding = true;
        Emit(a, a.seq->Step(absl::MakeSpan(logits.data(), vocab)));
      }
    }
    // 3. One batched decode step for every decoding sequence.
    std::vector<Active*> batch;
    std::vector<int> slots, positions;
    std::vector<int32_t> tokens;
    for (Active& a : active) {
      if (a.done || !a.decoding) continue;
      const int pos = static_cast<int>(a.seq->tokens().size()) - 1;
      if (pos >= runner_->max_context()) {  // unreachable: max_new_tokens is capped
        EndActive(a, absl::OutOfRangeError("context full"));
        continue;
      }
      batch.push_back(&a);
      slots.push_back(a.slot);
      positions.push_back(pos);
      tokens.push_back(a.seq->tokens().back());
    }
    if (!batch.empty()) {
      // When no row needs the host (repetition penalty, logprobs), the runner picks every
      // row's token (on the GPU): the argmax for an all-greedy batch, else the sampling rule;
      // it may run the next step ahead while this one's tokens are emitted. No step ahead
      // when every sequence reaches its length with this one.
      bool greedy = true, chosen = true, more = false;
      std::vector<RowSampling> rows;
      for (const Active* a : batch) {
        greedy = greedy && a->seq->greedy();
        chosen = chosen && a->seq->runner_can_choose();
        more = more || a->seq->generated() + 1 < a->seq->params().max_new_tokens;
        rows.push_back(a->seq->sampling());
      }
      std::vector<int32_t> ids(batch.size());
      absl::Status s;
      if (greedy) {
        s = runner_->DecodeArgmax(slots, positions, tokens, absl::MakeSpan(ids), /*run_ahead=*/more);
      } else if (chosen) {
        s = runner_->DecodeSampled(slots, positions, tokens, rows, absl::MakeSpan(ids), /*run_ahead=*/more);
      } else {
        logits.resize(static_cast<size_t>(vocab) * batch.size());
        s = runner_->Decode(slots, positions, tokens, absl::MakeSpan(logits));
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        Active& a = *batch[i];
        if (!s.ok()) {
          EndActive(a, absl::Status(s.code(), absl::StrCat("decode of ", batch.size(), " sequences: ", s.message())));
        } else {
          Emit(a, chosen ? a.seq->StepChosen(ids[i]) : a.seq->Step(absl::MakeSpan(logits.data() + i * vocab, vocab)));
        }
      }
    }
    // 4. Retire finished sequences, freeing their slots.
    for (Active& a : active) {
      if (a.done) free_slots.push_back(a.slot);
    }
    active.erase(std::remove_if(active.begin(), active.end(),
                                [](const Active& a) { return a.done; }),
                 active.end());
  }
}

}  // namespace llama
