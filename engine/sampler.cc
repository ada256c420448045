#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace llama {

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  if (p.max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling: max_new_tokens must be >= 1, got ", p.max_new_tokens));
  }
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling: temperature must be a finite value >= 0, got ", p.temperature));
  }
  if (!std::isfinite(p.top_p) || p.top_p <= 0.0f || p.top_p > 1.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling: top_p must be in (0, 1], got ", p.top_p));
  }
  if (p.top_k < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling: top_k must be >= 0 (0 = off), got ", p.top_k));
  }
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling: repetition_penalty must be a finite value > 0, got ", p.repetition_penalty));
  }
  for (size_t i = 0; i < p.stop.size(); ++i) {
    if (p.stop[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling: stop[", i, "] is an empty string"));
    }
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}

namespace {

// Uniform double in [0, 1) from 53 random bits (independent of the standard library's
// distribution implementations, so a seed gives the same tokens everywhere).
double Uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

void ApplyRepetitionPenalty(absl::Span<float> logits, absl::Span<const int> history,
                            float penalty) {
  std::vector<bool> seen(logits.size(), false);
  for (int id : history) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size() || seen[id]) continue;
    seen[id] = true;
    float& l = logits[id];
    l = l > 0.0f ? l / penalty : l * penalty;
  }
}

// log-softmax(logits)[id]
float LogSoftmaxAt(absl::Span<const float> logits, int id) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  return static_cast<float>(static_cast<double>(logits[id]) - mx - std::log(sum));
}

// Candidate order: higher logit first, lower id first on ties.
struct ByLogitDesc {
  absl::Span<const float> logits;
  bool operator()(int a, int b) const {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  }
};

// The first of `count` candidates id_at(0), id_at(1), ... at which the running sum of their
// weights exceeds u (the last one when rounding leaves u unreached).
template <typename IdAt>
int Draw(double u, int count, IdAt id_at, const std::vector<double>& w) {
  double acc = 0.0;
  for (int i = 0; i < count; ++i) {
    acc += w[id_at(i)];
    if (u < acc) return id_at(i);
  }
  return id_at(count - 1);
}

}  // namespace

int Sampler::Sample(absl::Span<float> logits, absl::Span<const int> history, float* logprob) {
  if (logits.empty()) return -1;
  if (p_.repetition_penalty != 1.0f) ApplyRepetitionPenalty(logits, history, p_.repetition_penalty);

  int chosen;
  if (p_.temperature == 0.0f) {
    // Greedy: std::max_element returns the first maximum, i.e. the lowest id on ties.
    chosen = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  } else {
    const int n = static_cast<int>(logits.size());
    const double inv_t = 1.0 / p_.temperature;
    // The largest logit (kept by any top-k): the weights' reference point.
    const float mx = *std::max_element(logits.begin(), logits.end());
    // Unnormalised probabilities at this temperature, for the candidates only (the buffers
    // are kept between calls: no per-token allocation of vocab-sized vectors).
    std::vector<double>& w = weights_;
    w.resize(n);
    if ((p_.top_k <= 0 || p_.top_k >= n) && p_.top_p >= 1.0f) {
      // Every id is a candidate, in id order: no candidate list.
      double total = 0.0;
      for (int id = 0; id < n; ++id) {
        w[id] = std::exp((static_cast<double>(logits[id]) - mx) * inv_t);
        total += w[id];
      }
      chosen = Draw(Uniform01(rng_) * total, n, [](int i) { return i; }, w);
      if (logprob != nullptr) *logprob = LogSoftmaxAt(logits, chosen);
      return chosen;
    }
    const ByLogitDesc order{logits};
    std::vector<int>& cand = candidates_;
    cand.resize(n);
    std::iota(cand.begin(), cand.end(), 0);
    // top-k: keep the k largest (unordered), O(vocab).
    if (p_.top_k > 0 && p_.top_k < n) {
      std::nth_element(cand.begin(), cand.begin() + p_.top_k, cand.end(), order);
      cand.resize(p_.top_k);
    }
    double total = 0.0;
    for (int id : cand) {
      w[id] = std::exp((static_cast<double>(logits[id]) - mx) * inv_t);
      total += w[id];
    }
    auto weight = [&w](int id) { return w[id]; };

    if (p_.top_p < 1.0f) {
      // Nucleus: the smallest set, in descending order, whose mass reaches top_p. Sort only
      // a growing prefix of the candidates (partial sort), which is usually tiny.
      const double target = static_cast<double>(p_.top_p) * total;
      size_t sorted = 0;
      size_t m = std::min<size_t>(64, cand.size());
      double mass = 0.0;
      size_t cut = cand.size();
      while (true) {
        if (m < cand.size()) std::nth_element(cand.begin() + sorted, cand.begin() + m, cand.end(), order);
        std::sort(cand.begin() + sorted, cand.begin() + m, order);
        for (; sorted < m; ++sorted) {
          mass += weight(cand[sorted]);
          if (mass >= target) break;
        }
        if (sorted < m) {  // reached the target at cand[sorted]
          cut = sorted + 1;
          break;
        }
        if (m == cand.size()) break;  // rounding: keep everything
        m = std::min(cand.size(), m * 4);
      }
      cand.resize(cut);
      total = 0.0;
      for (int id : cand) total += weight(id);
    }

    // Draw from the kept candidates. Their order is a deterministic function of the
    // logits, so a seed reproduces the same tokens.
    chosen = Draw(Uniform01(rng_) * total, static_cast<int>(cand.size()), [&cand](int i) { return cand[i]; }, w);
  }
  if (logprob != nullptr) *logprob = LogSoftmaxAt(logits, chosen);
  return chosen;
}

size_t FindStop(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    const size_t pos = text.find(s);
    if (pos < best) best = pos;
  }
  return best;
}

size_t HoldBackForStop(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops) {
    // Longest proper prefix of s that text ends with.
    for (size_t k = std::min(text.size(), s.size() - (s.empty() ? 0 : 1)); k > hold; --k) {
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

}  // namespace llama
