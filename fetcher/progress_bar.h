// Terminal rendering of fetch progress, shared by `llama-fetch` and `llamactl fetch`.
#ifndef LLAMA_FETCHER_PROGRESS_BAR_H_
#define LLAMA_FETCHER_PROGRESS_BAR_H_

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

#include "fetcher/fetcher.h"

namespace llama::fetch {

// "1.5 MiB", "312 B", ...
std::string HumanBytes(int64_t bytes);

// One line, no newline: "[#####.....]  52%  12.0 MiB/23.1 MiB  3/7 files  model.safetensors".
std::string FormatProgressLine(const Progress& p, int width = 30);

// Writes the progress line to `os`, prefixed with '\r' so it redraws in place on a terminal.
void RenderProgress(const Progress& p, std::ostream& os);

// Stateful renderer: redraws in place when `os` is a terminal; otherwise prints a plain
// line at most every few seconds (log-friendly). Call Finish() once at the end.
class ProgressBar {
 public:
  explicit ProgressBar(std::ostream& os, bool is_tty);
  void Update(const Progress& p);
  void Finish();

 private:
  std::ostream& os_;
  bool is_tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_plain_{};
  Progress last_;
};

}  // namespace llama::fetch

#endif  // LLAMA_FETCHER_PROGRESS_BAR_H_
