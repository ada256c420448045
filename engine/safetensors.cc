#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace llama {
namespace {

using json = nlohmann::json;

bool ParseDType(const std::string& s, DType* out) {
  if (s == "F32") *out = DType::kF32;
  else if (s == "F16") *out = DType::kF16;
  else if (s == "BF16") *out = DType::kBF16;
  else if (s == "I32") *out = DType::kI32;
  else return false;
  return true;
}

absl::StatusOr<TensorView> ParseEntry(const std::string& path, const std::string& name,
                                      const json& e, const uint8_t* data, uint64_t data_size) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors ", path, ": tensor ", name, ": ", what));
  };
  if (!e.is_object()) return bad("header entry is not an object");
  if (!e.contains("dtype") || !e["dtype"].is_string()) return bad("missing string field dtype");
  if (!e.contains("shape") || !e["shape"].is_array()) return bad("missing array field shape");
  if (!e.contains("data_offsets") || !e["data_offsets"].is_array() ||
      e["data_offsets"].size() != 2) {
    return bad("missing field data_offsets [begin, end]");
  }
  TensorView t;
  t.name = name;
  t.file = path;
  const std::string dt = e["dtype"].get<std::string>();
  if (!ParseDType(dt, &t.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("dtype ", dt, " of tensor ", name,
                                                   " in file ", path, " is not supported"));
  }
  uint64_t numel = 1;
  for (const auto& d : e["shape"]) {
    if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
      return bad("shape has a non-integer or negative dimension");
    }
    const uint64_t v = d.get<uint64_t>();
    if (v > (1ull << 40) || (v != 0 && numel > (1ull << 40) / v)) return bad("shape too large");
    numel *= v;
    t.shape.push_back(static_cast<int64_t>(v));
  }
  const auto& off = e["data_offsets"];
  for (const auto& o : off) {
    if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0)) {
      return bad("data_offsets are not non-negative integers");
    }
  }
  const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
  if (begin > end) return bad(absl::StrCat("data_offsets [", begin, ",", end, "] reversed"));
  if (end > data_size) {
    return bad(absl::StrCat("data_offsets [", begin, ",", end, "] past the end of the data region (",
                            data_size, " bytes; file truncated or header corrupt)"));
  }
  const uint64_t want = numel * DTypeSize(t.dtype);
  if (want != end - begin) {
    return bad(absl::StrCat("shape ", ShapeString(t.shape), " x ", dt, " needs ", want,
                            " bytes but data_offsets span ", end - begin));
  }
  t.data = data + begin;
  t.nbytes = end - begin;
  return t;
}

std::string Shapes(absl::Span<const int64_t> s) { return ShapeString(s); }

}  // namespace

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI32: return "I32";
  }
  return "?";
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
  }
  return 0;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf / nan
    return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);
  }
  if (absx >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520 -> inf
  if (absx < 0x38800000u) {                         // below smallest normal half (2^-14)
    if (absx < 0x33000000u) return sign;            // < 2^-25 rounds to zero
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffff) | 0x800000;
    const int shift = 126 - static_cast<int>(e);  // 14 + (113 - e) ... to subnormal units
    uint32_t v = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (v & 1))) ++v;
    return sign | static_cast<uint16_t>(v);
  }
  uint32_t v = ((absx >> 23) - 112) << 10 | ((absx >> 13) & 0x3ff);
  const uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) ++v;
  return sign | static_cast<uint16_t>(v);
}

float BF16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = absl::StrCat("safetensors ", path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("safetensors ", path, ": fstat failed"));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        "safetensors ", path, ": file is ", size, " bytes, too short for the 8-byte header size"));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("safetensors ", path, ": mmap failed: ",
                                            std::strerror(errno)));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->map_ = map;
  file->map_size_ = size;
  const uint8_t* base = static_cast<const uint8_t*>(map);
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(base[i]) << (8 * i);
  if (header_size > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors ", path, ": header size ", header_size, " exceeds the cap of ",
                     kMaxHeaderBytes, " bytes (corrupt file?)"));
  }
  if (header_size > size - 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors ", path, ": header size ", header_size,
                     " is larger than the file (", size, " bytes; truncated?)"));
  }
  const char* hbegin = reinterpret_cast<const char*>(base + 8);
  json header = json::parse(hbegin, hbegin + header_size, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors ", path, ": header is not a valid JSON object"));
  }
  const uint8_t* data = base + 8 + header_size;
  const uint64_t data_size = size - 8 - header_size;
  std::vector<std::pair<uint64_t, const TensorView*>> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("safetensors ", path, ": __metadata__ is not an object"));
      }
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        file->metadata_[m.key()] = m.value().is_string() ? m.value().get<std::string>()
                                                         : m.value().dump();
      }
      continue;
    }
    auto t = ParseEntry(path, it.key(), it.value(), data, data_size);
    if (!t.ok()) return t.status();
    auto [pos, inserted] = file->tensors_.emplace(it.key(), std::move(*t));
    spans.emplace_back(pos->second.data - data, &pos->second);
  }
  // No two tensors may share bytes (empty tensors hold none).
  std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->nbytes < b.second->nbytes;
  });
  const TensorView* last = nullptr;
  uint64_t last_begin = 0, last_end = 0;
  for (const auto& [begin, view] : spans) {
    if (view->nbytes == 0) continue;
    if (last != nullptr && begin < last_end) {
      return absl::InvalidArgumentError(absl::StrCat(
          "safetensors ", path, ": tensors ", last->name, " [", last_begin, ",", last_end,
          ") and ", view->name, " [", begin, ",", begin + view->nbytes, ") overlap"));
    }
    if (begin + view->nbytes > last_end) {
      last = view;
      last_begin = begin;
      last_end = begin + view->nbytes;
    }
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::StatusOr<TensorStore> TensorStore::OpenFile(const std::string& path) {
  auto f = SafetensorsFile::Open(path);
  if (!f.ok()) return f.status();
  TensorStore store;
  store.source_ = path;
  std::shared_ptr<SafetensorsFile> file = std::move(*f);
  for (const auto& [name, view] : file->tensors()) store.index_[name] = &view;
  store.files_.push_back(std::move(file));
  return store;
}

absl::StatusOr<TensorStore> TensorStore::OpenDir(const std::string& dir, const std::string& base) {
  namespace fs = std::filesystem;
  const std::string index_path = dir + "/" + base + ".safetensors.index.json";
  const std::string single_path = dir + "/" + base + ".safetensors";
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    std::ifstream in(index_path);
    std::stringstream ss;
    ss << in.rdbuf();
    json idx = json::parse(ss.str(), nullptr, false);
    if (idx.is_discarded() || !idx.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": not a valid JSON object"));
    }
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": missing object weight_map"));
    }
    TensorStore store;
    store.source_ = index_path;
    std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(index_path, ": weight_map[", it.key(), "] is not a file name"));
      }
      const std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard == ".." || shard.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            index_path, ": weight_map[", it.key(), "] = \"", shard, "\" is not a plain file name"));
      }
      auto& file = shards[shard];
      if (!file) {
        auto f = SafetensorsFile::Open(dir + "/" + shard);
        if (!f.ok()) return f.status();
        file = std::move(*f);
        store.files_.push_back(file);
      }
      const TensorView* view = file->Find(it.key());
      if (view == nullptr) {
        return absl::NotFoundError(absl::StrCat(index_path, ": tensor ", it.key(),
                                                " is mapped to ", shard, " which does not hold it"));
      }
      store.index_[it.key()] = view;
    }
    return store;
  }
  if (fs::exists(single_path, ec)) return OpenFile(single_path);
  if (base != "model") return OpenDir(dir, "model");
  return absl::NotFoundError(absl::StrCat("checkpoint dir ", dir, ": neither ", base,
                                          ".safetensors nor ", base,
                                          ".safetensors.index.json found"));
}

bool TensorStore::Has(const std::string& name) const { return index_.count(name) > 0; }

absl::StatusOr<const TensorView*> TensorStore::Get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor ", name, " not found in ", source_));
  }
  return it->second;
}

std::vector<std::string> TensorStore::Names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [n, v] : index_) names.push_back(n);
  return names;
}

absl::Status CheckTensor(const TensorView& t, DType dtype, absl::Span<const int64_t> shape) {
  if (t.dtype != dtype) {
    return absl::InvalidArgumentError(absl::StrCat(t.file, ": tensor ", t.name, ": dtype ",
                                                   DTypeName(t.dtype), " but expected ",
                                                   DTypeName(dtype)));
  }
  if (!shape.empty() && absl::Span<const int64_t>(t.shape) != shape) {
    return absl::InvalidArgumentError(absl::StrCat(t.file, ": ", t.name, ": shape ",
                                                   Shapes(t.shape), " but config expects ",
                                                   Shapes(shape)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> TensorStore::ReadFloat(
    const std::string& name, absl::Span<const int64_t> expected_shape) const {
  auto t = Get(name);
  if (!t.ok()) return t.status();
  const TensorView& v = **t;
  if (v.dtype == DType::kI32) {
    return absl::InvalidArgumentError(absl::StrCat(v.file, ": tensor ", name,
                                                   ": dtype I32 but expected F32, F16 or BF16"));
  }
  if (auto s = CheckTensor(v, v.dtype, expected_shape); !s.ok()) return s;
  const size_t n = static_cast<size_t>(v.numel());
  std::vector<float> out(n);
  if (v.dtype == DType::kF32) {
    std::memcpy(out.data(), v.data, n * 4);
  } else {
    const bool bf = v.dtype == DType::kBF16;
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, v.data + 2 * i, 2);
      out[i] = bf ? BF16ToFloat(h) : HalfToFloat(h);
    }
  }
  // No trained checkpoint holds inf or NaN: one means a corrupt or mis-converted file, and
  // would otherwise surface only as NaN logits at inference time.
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) {
      return absl::InvalidArgumentError(absl::StrCat(v.file, ": tensor ", name, ": value ", i, " of ", n, " is ",
                                                     std::isnan(out[i]) ? "NaN" : "infinite",
                                                     " (corrupt or mis-converted checkpoint)"));
    }
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> TensorStore::ReadI32(
    const std::string& name, absl::Span<const int64_t> expected_shape) const {
  auto t = Get(name);
  if (!t.ok()) return t.status();
  if (auto s = CheckTensor(**t, DType::kI32, expected_shape); !s.ok()) return s;
  std::vector<int32_t> out(static_cast<size_t>((*t)->numel()));
  std::memcpy(out.data(), (*t)->data, out.size() * 4);
  return out;
}

// ---------------------------------------------------------------- writer

size_t TensorSpec::nbytes() const {
  size_t n = DTypeSize(dtype);
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Open(
    const std::string& path, std::vector<TensorSpec> specs,
    const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const auto& s : specs) {
    if (!seen.insert(s.name).second || s.name == "__metadata__") {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors writer ", path, ": duplicate tensor name ", s.name));
    }
    const uint64_t n = s.nbytes();
    header[s.name] = {{"dtype", DTypeName(s.dtype)},
                      {"shape", s.shape},
                      {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  std::unique_ptr<SafetensorsWriter> w(new SafetensorsWriter());
  w->path_ = path;
  w->specs_ = std::move(specs);
  w->f_ = std::fopen(path.c_str(), "wb");
  if (w->f_ == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("safetensors writer ", path, ": cannot create: ", std::strerror(errno)));
  }
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  if (std::fwrite(len, 1, 8, w->f_) != 8 || std::fwrite(h.data(), 1, h.size(), w->f_) != h.size()) {
    return absl::DataLossError(absl::StrCat("safetensors writer ", path, ": write failed"));
  }
  return w;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (f_ != nullptr) std::fclose(f_);
}

absl::Status SafetensorsWriter::Write(absl::Span<const uint8_t> bytes) {
  if (next_ >= specs_.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("safetensors writer ", path_, ": more tensors written than declared"));
  }
  const TensorSpec& s = specs_[next_];
  if (bytes.size() != s.nbytes()) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors writer ", path_, ": tensor ",
                                                   s.name, " needs ", s.nbytes(), " bytes, got ",
                                                   bytes.size()));
  }
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size()) {
    return absl::DataLossError(
        absl::StrCat("safetensors writer ", path_, ": write of tensor ", s.name, " failed"));
  }
  ++next_;
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::Close() {
  if (f_ == nullptr) return absl::OkStatus();
  if (next_ != specs_.size()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "safetensors writer ", path_, ": closed after ", next_, " of ", specs_.size(),
        " tensors; next missing is ", specs_[next_].name));
  }
  const bool ok = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok) return absl::DataLossError(absl::StrCat("safetensors writer ", path_, ": close failed"));
  return absl::OkStatus();
}

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorData>& tensors) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) specs.push_back(t.spec);
  auto w = SafetensorsWriter::Open(path, std::move(specs));
  if (!w.ok()) return w.status();
  for (const auto& t : tensors) {
    if (auto s = (*w)->Write(t.bytes); !s.ok()) return s;
  }
  return (*w)->Close();
}

TensorData MakeF32Tensor(const std::string& name, std::vector<int64_t> shape,
                         absl::Span<const float> values) {
  TensorData t{{name, DType::kF32, std::move(shape)}, {}};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

TensorData MakeF16Tensor(const std::string& name, std::vector<int64_t> shape,
                         absl::Span<const float> values) {
  TensorData t{{name, DType::kF16, std::move(shape)}, {}};
  t.bytes.resize(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t h = FloatToHalf(values[i]);
    std::memcpy(t.bytes.data() + 2 * i, &h, 2);
  }
  return t;
}

TensorData MakeI32Tensor(const std::string& name, std::vector<int64_t> shape,
                         absl::Span<const int32_t> values) {
  TensorData t{{name, DType::kI32, std::move(shape)}, {}};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

}  // namespace llama
