// RunnerOptions' prefill-weights setting: its parser and kAuto's memory rule.
#include <gtest/gtest.h>

#include "engine/runner.h"

namespace llama::testing {
namespace {

TEST(PrefillWeightsTest, ParsesEveryAcceptedSpelling) {
  EXPECT_EQ(*ParsePrefillWeights("auto"), PrefillWeights::kAuto);
  for (const char* t : {"true", "1", "resident"}) EXPECT_EQ(*ParsePrefillWeights(t), PrefillWeights::kResident) << t;
  for (const char* f : {"false", "0", "per_call"}) EXPECT_EQ(*ParsePrefillWeights(f), PrefillWeights::kPerCall) << f;
  for (const char* bad : {"", "yes", "Auto", "2"}) {
    const auto p = ParsePrefillWeights(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find("expected auto"), std::string::npos) << p.status();
  }
  for (PrefillWeights p : {PrefillWeights::kAuto, PrefillWeights::kPerCall, PrefillWeights::kResident})
    EXPECT_EQ(*ParsePrefillWeights(PrefillWeightsName(p)), p);
}

// Copies are kept only if at least half of the device stays free with them.
TEST(PrefillWeightsTest, AutoKeepsCopiesOnlyWhenHalfTheDeviceStaysFree) {
  constexpr size_t GB = size_t{1} << 30;
  // One Llama-2-7B variant (12.7 GB of copies) on an empty 141 GB H200 / 80 GB H100.
  EXPECT_TRUE(KeepResidentPrefillWeights(130 * GB, 141 * GB, 13 * GB));
  EXPECT_TRUE(KeepResidentPrefillWeights(70 * GB, 80 * GB, 13 * GB));
  // The second variant on the H100 once the first took its copies: 45 GB free.
  EXPECT_FALSE(KeepResidentPrefillWeights(45 * GB, 80 * GB, 13 * GB));
  EXPECT_TRUE(KeepResidentPrefillWeights(53 * GB, 80 * GB, 13 * GB));   // exactly half left
  EXPECT_FALSE(KeepResidentPrefillWeights(52 * GB, 80 * GB, 13 * GB));
  EXPECT_FALSE(KeepResidentPrefillWeights(10 * GB, 80 * GB, 13 * GB));  // does not even fit
  EXPECT_TRUE(KeepResidentPrefillWeights(80 * GB, 80 * GB, 0));
}

}  // namespace
}  // namespace llama::testing
