// A gate for fake ModelRunners: the runner passes it at every Prefill/Decode call, so a
// test can hold the model mid-request (closed), let a few calls through (Allow), and wait
// until a call is held (WaitUntilBlocked).
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace llama::testing {

class RunnerGate {
 public:
  // Called by the runner: blocks while the gate is closed, unless a permit is left (and
  // then uses it up).
  void Pass() {
    absl::MutexLock lock(&mu_);
    ++waiting_;
    mu_.Await(
        absl::Condition(+[](RunnerGate* g) { return !g->closed_ || g->permits_ > 0; }, this));
    if (closed_) --permits_;
    --waiting_;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    closed_ = false;
  }
  // Lets `n` more calls through a closed gate.
  void Allow(int n) {
    absl::MutexLock lock(&mu_);
    permits_ += n;
  }
  // Blocks until a runner call is waiting at the closed gate.
  void WaitUntilBlocked() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](RunnerGate* g) { return g->waiting_ > 0; }, this));
  }

 private:
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  int permits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace llama::testing
