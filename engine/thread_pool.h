// A fixed pool of worker threads for data-parallel loops (the CPU backend's matmuls).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llama {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls fn(begin, end) over [0, n) split into contiguous chunks, one per thread (the
  // caller's thread takes one). Returns when all chunks are done. Not reentrant.
  void ParallelFor(int n, const std::function<void(int, int)>& fn);

 private:
  void Worker(int index);
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  int job_n_ = 0;
  int generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

}  // namespace llama
