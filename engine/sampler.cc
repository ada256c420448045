#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "kernels/sample_uniform.h"

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

Sampler::Sampler(const SamplingParams& p) : p_(p) {}

namespace {

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

int Argmax(absl::Span<const float> logits) {
  // std::max_element returns the first maximum, i.e. the lowest id on ties.
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

}  // namespace

void KeepCandidates(absl::Span<const float> logits, const SampleRule& rule, KeptCandidates* kept) {
  const int n = static_cast<int>(logits.size());
  const double inv_t = 1.0 / rule.temperature;
  // The largest logit (kept by any top-k): the weights' reference point.
  const double mx = *std::max_element(logits.begin(), logits.end());
  auto weight = [&](int id) { return std::exp((static_cast<double>(logits[id]) - mx) * inv_t); };
  std::vector<int>& cand = kept->ids;
  cand.resize(n);
  std::iota(cand.begin(), cand.end(), 0);
  if ((rule.top_k > 0 && rule.top_k < n) || rule.top_p < 1.0f) {
    const ByLogitDesc order{logits};
    // top-k: keep the k largest (unordered), O(vocab).
    if (rule.top_k > 0 && rule.top_k < n) {
      std::nth_element(cand.begin(), cand.begin() + rule.top_k, cand.end(), order);
      cand.resize(rule.top_k);
    }
    if (rule.top_p < 1.0f) {
      double total = 0.0;
      for (int id : cand) total += weight(id);
      // Nucleus: the shortest prefix, in descending order, whose mass reaches top_p. Sort only
      // a growing prefix of the candidates (partial sort), which is usually tiny.
      const double target = static_cast<double>(rule.top_p) * total;
      size_t sorted = 0, cut = cand.size();
      size_t m = std::min<size_t>(64, cand.size());
      double mass = 0.0;
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
    }
    std::sort(cand.begin(), cand.end());
  }
  kept->weights.resize(cand.size());
  kept->total = 0.0;
  for (size_t i = 0; i < cand.size(); ++i) kept->total += kept->weights[i] = weight(cand[i]);
}

int DrawKept(const KeptCandidates& kept, double u) {
  const double target = u * kept.total;
  double acc = 0.0;
  for (size_t i = 0; i < kept.ids.size(); ++i) {
    acc += kept.weights[i];
    if (target < acc) return kept.ids[i];
  }
  return kept.ids.empty() ? -1 : kept.ids.back();
}

int SampleToken(absl::Span<const float> logits, const SampleRule& rule, double u) {
  if (logits.empty()) return -1;
  if (rule.temperature == 0.0f) return Argmax(logits);
  KeptCandidates kept;
  KeepCandidates(logits, rule, &kept);
  return DrawKept(kept, u);
}

int Sampler::Sample(absl::Span<float> logits, absl::Span<const int> history, float* logprob) {
  if (logits.empty()) return -1;
  if (p_.repetition_penalty != 1.0f) ApplyRepetitionPenalty(logits, history, p_.repetition_penalty);
  int chosen;
  if (p_.temperature == 0.0f) {
    chosen = Argmax(logits);
  } else {
    KeepCandidates(logits, SampleRule{p_.temperature, p_.top_k, p_.top_p}, &kept_);
    chosen = DrawKept(kept_, kernels::SampleUniform(p_.seed, draws_++));
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
