// safetensors reader (read-only mmap, single file or sharded via *.index.json) and a
// small streaming writer. Format: 8-byte little-endian header size, JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the data region; offsets are relative to the data region.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace llama {

enum class DType { kF32, kF16, kBF16, kI32 };

// "F32", "F16", "BF16", "I32".
const char* DTypeName(DType dtype);
size_t DTypeSize(DType dtype);

// IEEE half / bfloat16 <-> float (round to nearest even; no F16C needed).
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BF16ToFloat(uint16_t b);

// One tensor inside a mapped file. `data` points into the mapping (unaligned access
// must go through memcpy).
struct TensorView {
  std::string name;
  std::string file;  // path of the file holding it (for error messages)
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const;
};

// "[24,64]"
std::string ShapeString(absl::Span<const int64_t> shape);

// A single mmapped safetensors file, header fully validated at Open.
class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MB

  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // nullptr when absent.
  const TensorView* Find(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint: one file, or shards listed in an index json.
class TensorStore {
 public:
  // A single .safetensors file.
  static absl::StatusOr<TensorStore> OpenFile(const std::string& path);
  // `<dir>/<base>.safetensors.index.json` (sharded) or `<dir>/<base>.safetensors`;
  // falls back to base "model" when `base` differs and is absent.
  static absl::StatusOr<TensorStore> OpenDir(const std::string& dir,
                                             const std::string& base = "model");

  bool Has(const std::string& name) const;
  // NotFound naming the tensor and where it was looked for.
  absl::StatusOr<const TensorView*> Get(const std::string& name) const;
  std::vector<std::string> Names() const;
  // Where the tensors come from (file or index json), for messages.
  const std::string& source() const { return source_; }

  // Converts F32/F16/BF16 to float. When `expected_shape` is non-empty the tensor's
  // shape must equal it. Wrong dtype / shape -> InvalidArgument naming file + tensor.
  absl::StatusOr<std::vector<float>> ReadFloat(const std::string& name,
                                               absl::Span<const int64_t> expected_shape = {}) const;
  absl::StatusOr<std::vector<int32_t>> ReadI32(const std::string& name,
                                               absl::Span<const int64_t> expected_shape = {}) const;

 private:
  std::string source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

// Checks dtype and (when non-empty) shape of a tensor; message names file + tensor.
absl::Status CheckTensor(const TensorView& t, DType dtype, absl::Span<const int64_t> shape);

// Declared tensor for the writer.
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  size_t nbytes() const;
};

// Streaming writer: the header (all specs) is written at Open, then each tensor's bytes
// in spec order via Write; Close checks every tensor was written.
class SafetensorsWriter {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsWriter>> Open(
      const std::string& path, std::vector<TensorSpec> specs,
      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
  ~SafetensorsWriter();
  // Bytes of the next tensor (must be exactly its nbytes).
  absl::Status Write(absl::Span<const uint8_t> bytes);
  absl::Status Close();

 private:
  SafetensorsWriter() = default;
  std::string path_;
  std::FILE* f_ = nullptr;
  std::vector<TensorSpec> specs_;
  size_t next_ = 0;
};

// Whole-file convenience writer (tests, small files): tensors with their raw bytes.
struct TensorData {
  TensorSpec spec;
  std::vector<uint8_t> bytes;
};
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorData>& tensors);

// Helpers to build TensorData from typed values.
TensorData MakeF32Tensor(const std::string& name, std::vector<int64_t> shape,
                         absl::Span<const float> values);
TensorData MakeF16Tensor(const std::string& name, std::vector<int64_t> shape,
                         absl::Span<const float> values);
TensorData MakeI32Tensor(const std::string& name, std::vector<int64_t> shape,
                         absl::Span<const int32_t> values);

}  // namespace llama
