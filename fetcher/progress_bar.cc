#include "fetcher/progress_bar.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace llama::fetch {

std::string HumanBytes(int64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(std::max<int64_t>(0, bytes));
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return absl::StrFormat("%d B", static_cast<int64_t>(v));
  return absl::StrFormat("%.1f %s", v, kUnits[u]);
}

std::string FormatProgressLine(const Progress& p, int width) {
  width = std::max(1, width);
  double frac = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total)
                            : (p.files_total > 0 && p.files_done == p.files_total ? 1.0 : 0.0);
  frac = std::clamp(frac, 0.0, 1.0);
  int filled = static_cast<int>(frac * width + 1e-9);
  std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
  // The file currently in flight (largest incomplete one), for context.
  std::string current;
  int64_t best = -1;
  for (const auto& f : p.files) {
    if (f.done < f.total && f.done > 0 && f.total > best) {
      best = f.total;
      current = f.path;
    }
  }
  std::string line = absl::StrFormat("[%s] %3d%%  %s/%s  %d/%d files", bar,
                                     static_cast<int>(frac * 100.0), HumanBytes(p.done),
                                     HumanBytes(p.total), p.files_done, p.files_total);
  if (!current.empty()) absl::StrAppend(&line, "  ", current);
  return line;
}

void RenderProgress(const Progress& p, std::ostream& os) {
  os << '\r' << FormatProgressLine(p) << "\x1b[K" << std::flush;
}

ProgressBar::ProgressBar(std::ostream& os, bool is_tty) : os_(os), is_tty_(is_tty) {}

void ProgressBar::Update(const Progress& p) {
  last_ = p;
  if (is_tty_) {
    RenderProgress(p, os_);
    drawn_ = true;
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_plain_ < std::chrono::seconds(5)) return;
  last_plain_ = now;
  drawn_ = true;
  os_ << FormatProgressLine(p) << "\n" << std::flush;
}

void ProgressBar::Finish() {
  if (!drawn_) return;
  if (is_tty_) {
    RenderProgress(last_, os_);
    os_ << "\n" << std::flush;
  } else {
    os_ << FormatProgressLine(last_) << "\n" << std::flush;
  }
  drawn_ = false;
}

}  // namespace llama::fetch
