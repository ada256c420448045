// safetensors reader/writer: round trips, fp16 conversion, sharded index, and corrupt
// files (written into a temp dir) rejected with messages naming file and tensor.
#include "engine/safetensors.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace llama {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("safetensors_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes `header` verbatim with an 8-byte length (or `declared_len` when given) + data.
  std::string WriteRaw(const std::string& name, const std::string& header, size_t data_bytes,
                       uint64_t declared_len = UINT64_MAX) {
    const std::string p = Path(name);
    std::ofstream out(p, std::ios::binary);
    const uint64_t len = declared_len == UINT64_MAX ? header.size() : declared_len;
    char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(len >> (8 * i));
    out.write(buf, 8);
    out << header;
    out << std::string(data_bytes, '\0');
    return p;
  }

  fs::path dir_;
};

TEST(HalfTest, ExhaustiveRoundTripAndKnownValues) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), h) << "half 0x" << std::hex << h << " -> " << f;
  }
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);                      // overflow -> inf
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(BF16ToFloat(0x3f80), 1.0f);
}

TEST_F(SafetensorsTest, RoundTripAllDtypesAndMetadata) {
  const std::vector<float> f = {1.5f, -2.25f, 0.0f, 3.0e-3f, 7.0f, -1.0f};
  const std::vector<int32_t> i = {1, -2, 0x77777777, INT32_MIN};
  TensorData bf{{"bf", DType::kBF16, {2}}, {0x80, 0x3f, 0x00, 0xc0}};  // 1.0, -2.0
  ASSERT_TRUE(WriteSafetensors(Path("a.safetensors"),
                               {MakeF32Tensor("f32", {2, 3}, f), MakeF16Tensor("f16", {3, 2}, f),
                                MakeI32Tensor("i32", {4}, i), bf,
                                MakeF32Tensor("empty", {0, 4}, {})})
                  .ok());
  auto file = SafetensorsFile::Open(Path("a.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  EXPECT_EQ((*file)->tensors().size(), 5u);
  auto store = TensorStore::OpenFile(Path("a.safetensors"));
  ASSERT_TRUE(store.ok());
  auto f32 = store->ReadFloat("f32", {2, 3});
  ASSERT_TRUE(f32.ok()) << f32.status();
  EXPECT_EQ(*f32, f);
  auto f16 = store->ReadFloat("f16");
  ASSERT_TRUE(f16.ok());
  for (size_t k = 0; k < f.size(); ++k) EXPECT_NEAR((*f16)[k], f[k], std::abs(f[k]) * 1e-3);
  auto i32 = store->ReadI32("i32", {4});
  ASSERT_TRUE(i32.ok());
  EXPECT_EQ(*i32, i);
  auto b = store->ReadFloat("bf");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (std::vector<float>{1.0f, -2.0f}));
  EXPECT_TRUE(store->ReadFloat("empty").ok());

  auto wrong_shape = store->ReadFloat("f32", {3, 2});
  ASSERT_FALSE(wrong_shape.ok());
  EXPECT_THAT(wrong_shape.status().message(), HasSubstr("f32: shape [2,3] but config expects [3,2]"));
  auto wrong_type = store->ReadI32("f16");
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_THAT(wrong_type.status().message(), HasSubstr("dtype F16 but expected I32"));
  auto missing = store->Get("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope"));
}

TEST_F(SafetensorsTest, NonFiniteValuesAreRejectedByName) {
  const std::vector<float> ok = {1.0f, 2.0f, 3.0f};
  const std::vector<float> nan = {1.0f, std::nanf(""), 3.0f};
  const std::vector<float> inf = {1.0f, 2.0f, -INFINITY};
  TensorData bf_inf{{"bf_inf", DType::kBF16, {2}}, {0x80, 0x3f, 0x80, 0x7f}};  // 1.0, +inf
  ASSERT_TRUE(WriteSafetensors(Path("n.safetensors"),
                               {MakeF32Tensor("ok", {3}, ok), MakeF32Tensor("layer.scales", {3}, nan),
                                MakeF16Tensor("norm.weight", {3}, inf), bf_inf})
                  .ok());
  auto store = TensorStore::OpenFile(Path("n.safetensors"));
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE(store->ReadFloat("ok").ok());
  auto n = store->ReadFloat("layer.scales");
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(n.status().message(), HasSubstr("layer.scales: value 1 of 3 is NaN"));
  auto i = store->ReadFloat("norm.weight");  // fp16 inf
  ASSERT_FALSE(i.ok());
  EXPECT_THAT(i.status().message(), HasSubstr("norm.weight: value 2 of 3 is infinite"));
  auto b = store->ReadFloat("bf_inf");
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("bf_inf: value 1 of 2 is infinite"));
}

TEST_F(SafetensorsTest, TruncatedFile) {
  const std::vector<float> v(100, 1.0f);
  const std::string p = Path("t.safetensors");
  ASSERT_TRUE(WriteSafetensors(p, {MakeF32Tensor("big.weight", {10, 10}, v)}).ok());
  fs::resize_file(p, fs::file_size(p) - 17);
  auto f = SafetensorsFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr(p));
  EXPECT_THAT(f.status().message(), HasSubstr("big.weight"));
  EXPECT_THAT(f.status().message(), HasSubstr("past the end"));

  fs::resize_file(p, 5);
  f = SafetensorsFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("too short"));
}

TEST_F(SafetensorsTest, HeaderLyingAboutOffsets) {
  const std::string p = WriteRaw(
      "lie.safetensors", R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  auto f = SafetensorsFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("tensor x"));
  EXPECT_THAT(f.status().message(), HasSubstr("past the end of the data region"));
}

TEST_F(SafetensorsTest, ShapeDisagreesWithByteLength) {
  const std::string p = WriteRaw(
      "sz.safetensors", R"({"x":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})", 16);
  auto f = SafetensorsFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("needs 8 bytes but data_offsets span 16"));
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  const std::string p = WriteRaw("ov.safetensors",
                                 R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                 16);
  auto f = SafetensorsFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("overlap"));
  EXPECT_THAT(f.status().message(), HasSubstr("a "));
  EXPECT_THAT(f.status().message(), HasSubstr("b "));
}

TEST_F(SafetensorsTest, HugeHeaderSize) {
  const std::string p = WriteRaw("huge.safetensors", "{}", 0, 0xFFFFFFFFFFFFull);
  auto f = SafetensorsFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("exceeds the cap"));

  const std::string p2 = WriteRaw("long.safetensors", "{}", 0, 4096);  // under cap, > file
  f = SafetensorsFile::Open(p2);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("larger than the file"));
}

TEST_F(SafetensorsTest, InvalidJson) {
  const std::string p =
      WriteRaw("bad.safetensors", R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4])", 4);
  auto f = SafetensorsFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("not a valid JSON object"));
  EXPECT_THAT(f.status().message(), HasSubstr(p));
}

TEST_F(SafetensorsTest, UnsupportedDtypeNamed) {
  const std::string p = WriteRaw(
      "i8.safetensors", R"({"w.q":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})", 4);
  auto f = SafetensorsFile::Open(p);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(),
              HasSubstr("dtype I8 of tensor w.q in file " + p + " is not supported"));
}

TEST_F(SafetensorsTest, MalformedEntries) {
  for (const char* header :
       {R"({"x":{"shape":[1],"data_offsets":[0,4]}})",
        R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
        R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
        R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", R"([1,2])"}) {
    SCOPED_TRACE(header);
    auto f = SafetensorsFile::Open(WriteRaw("m.safetensors", header, 4));
    EXPECT_FALSE(f.ok());
  }
}

TEST_F(SafetensorsTest, ShardedRoundTrip) {
  const std::vector<float> a = {1, 2, 3, 4}, b = {5, 6};
  ASSERT_TRUE(WriteSafetensors(Path("model-00001-of-00002.safetensors"),
                               {MakeF32Tensor("a", {2, 2}, a)})
                  .ok());
  ASSERT_TRUE(WriteSafetensors(Path("model-00002-of-00002.safetensors"),
                               {MakeF16Tensor("b", {2}, b), MakeI32Tensor("c", {1}, {{9}})})
                  .ok());
  nlohmann::json idx = {{"metadata", {{"total_size", 26}}},
                        {"weight_map",
                         {{"a", "model-00001-of-00002.safetensors"},
                          {"b", "model-00002-of-00002.safetensors"},
                          {"c", "model-00002-of-00002.safetensors"}}}};
  std::ofstream(Path("model.safetensors.index.json")) << idx.dump();
  auto store = TensorStore::OpenDir(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(store->Names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*store->ReadFloat("a"), a);
  EXPECT_EQ(*store->ReadFloat("b"), b);
  EXPECT_EQ(*store->ReadI32("c"), std::vector<int32_t>{9});
  EXPECT_THAT((*store->Get("b"))->file, HasSubstr("model-00002-of-00002.safetensors"));

  // Index pointing at a shard that lacks the tensor.
  idx["weight_map"]["a"] = "model-00002-of-00002.safetensors";
  std::ofstream(Path("model.safetensors.index.json"), std::ios::trunc) << idx.dump();
  auto bad = TensorStore::OpenDir(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("tensor a is mapped to model-00002-of-00002"));

  // Index pointing at a missing shard.
  idx["weight_map"]["a"] = "model-00009-of-00009.safetensors";
  std::ofstream(Path("model.safetensors.index.json"), std::ios::trunc) << idx.dump();
  bad = TensorStore::OpenDir(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(bad.status().message(), HasSubstr("model-00009-of-00009.safetensors"));
}

TEST_F(SafetensorsTest, StreamingWriterChecksSizesAndCount) {
  auto w = SafetensorsWriter::Open(Path("s.safetensors"),
                                   {{"x", DType::kF32, {2}}, {"y", DType::kI32, {1}}});
  ASSERT_TRUE(w.ok());
  std::vector<uint8_t> three(3);
  EXPECT_FALSE((*w)->Write(three).ok());
  std::vector<uint8_t> eight(8);
  EXPECT_TRUE((*w)->Write(eight).ok());
  auto s = (*w)->Close();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("next missing is y"));
}

}  // namespace
}  // namespace llama
