// XxHash64 and the HyperLogLog sketch behind approx_count_distinct: merging,
// the cardinality estimate and the byte encoding kept in state stores.
#include "exec/hyperloglog.h"

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>

namespace sluice {

namespace {

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

uint64_t Read64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;  // little-endian hosts only, like the rest of the state encoding
}
uint32_t Read32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t Round(uint64_t acc, uint64_t input) { return std::rotl(acc + input * kPrime2, 31) * kPrime1; }
uint64_t MergeRound(uint64_t acc, uint64_t lane) { return (acc ^ Round(0, lane)) * kPrime1 + kPrime4; }

// sigma and tau of Ertl's improved estimator: series that converge once the
// double stops changing.
double Sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1, z = x, previous;
  do {
    x *= x;
    previous = z;
    z += x * y;
    y += y;
  } while (z != previous);
  return z;
}
double Tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1, z = 1 - x, previous;
  do {
    x = std::sqrt(x);
    previous = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
  } while (z != previous);
  return z / 3;
}

}  // namespace

uint64_t XxHash64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* const end = p + size;
  uint64_t h;
  if (size >= 32) {
    uint64_t v1 = seed + kPrime1 + kPrime2, v2 = seed + kPrime2, v3 = seed, v4 = seed - kPrime1;
    for (; end - p >= 32; p += 32) {
      v1 = Round(v1, Read64(p));
      v2 = Round(v2, Read64(p + 8));
      v3 = Round(v3, Read64(p + 16));
      v4 = Round(v4, Read64(p + 24));
    }
    h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
    h = MergeRound(h, v1);
    h = MergeRound(h, v2);
    h = MergeRound(h, v3);
    h = MergeRound(h, v4);
  } else {
    h = seed + kPrime5;
  }
  h += static_cast<uint64_t>(size);
  for (; end - p >= 8; p += 8) h = std::rotl(h ^ Round(0, Read64(p)), 27) * kPrime1 + kPrime4;
  if (end - p >= 4) {
    h = std::rotl(h ^ (static_cast<uint64_t>(Read32(p)) * kPrime1), 23) * kPrime2 + kPrime3;
    p += 4;
  }
  for (; p < end; ++p) h = std::rotl(h ^ (*p * kPrime5), 11) * kPrime1;
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

int HyperLogLog::PrecisionForRelativeSd(double relative_sd) {
  return static_cast<int>(std::ceil(2.0 * std::log2(1.106 / relative_sd)));
}

void HyperLogLog::ConvertToRegisters() {
  registers_.assign(num_registers(), 0);
  for (uint64_t h : exact_hashes_) AddToRegisters(h);
  exact_hashes_.clear();
  exact_hashes_.shrink_to_fit();
}

void HyperLogLog::Merge(const HyperLogLog& other) {
  if (!other.is_dense()) {
    if (is_dense()) {
      for (uint64_t h : other.exact_hashes_) AddToRegisters(h);
      return;
    }
    std::vector<uint64_t> united;
    united.reserve(exact_hashes_.size() + other.exact_hashes_.size());
    std::set_union(exact_hashes_.begin(), exact_hashes_.end(), other.exact_hashes_.begin(), other.exact_hashes_.end(),
                   std::back_inserter(united));
    exact_hashes_ = std::move(united);
    if (exact_hashes_.size() > ExactLimit()) ConvertToRegisters();
    return;
  }
  if (!is_dense()) ConvertToRegisters();
  for (size_t i = 0; i < registers_.size(); ++i) registers_[i] = std::max(registers_[i], other.registers_[i]);
}

int64_t HyperLogLog::Estimate() const {
  if (!is_dense()) return static_cast<int64_t>(exact_hashes_.size());
  const int max_rank = 64 - precision_ + 1;
  std::vector<int> histogram(static_cast<size_t>(max_rank) + 1, 0);
  for (uint8_t r : registers_) ++histogram[r];
  const double m = static_cast<double>(registers_.size());
  double z = m * Tau((m - histogram[static_cast<size_t>(max_rank)]) / m);
  for (int k = max_rank - 1; k >= 1; --k) z = 0.5 * (z + histogram[static_cast<size_t>(k)]);
  z += m * Sigma(histogram[0] / m);
  const double alpha_infinity = 0.5 / std::log(2.0);
  return std::llround(alpha_infinity * m * m / z);
}

void HyperLogLog::Encode(std::string* out) const {
  out->push_back(is_dense() ? '\1' : '\0');
  if (is_dense()) {
    out->append(reinterpret_cast<const char*>(registers_.data()), registers_.size());
    return;
  }
  const uint32_t n = static_cast<uint32_t>(exact_hashes_.size());
  out->append(reinterpret_cast<const char*>(&n), sizeof n);
  out->append(reinterpret_cast<const char*>(exact_hashes_.data()), exact_hashes_.size() * sizeof(uint64_t));
}

bool HyperLogLog::Decode(std::string_view* in) {
  if (in->empty()) return false;
  const char mode = in->front();
  in->remove_prefix(1);
  exact_hashes_.clear();
  registers_.clear();
  if (mode == '\1') {
    if (in->size() < num_registers()) return false;
    registers_.assign(in->begin(), in->begin() + static_cast<std::ptrdiff_t>(num_registers()));
    in->remove_prefix(num_registers());
    const uint8_t max_rank = static_cast<uint8_t>(64 - precision_ + 1);
    return std::all_of(registers_.begin(), registers_.end(), [&](uint8_t r) { return r <= max_rank; });
  }
  if (mode != '\0') return false;
  uint32_t n;
  if (in->size() < sizeof n) return false;
  std::memcpy(&n, in->data(), sizeof n);
  in->remove_prefix(sizeof n);
  if (n > ExactLimit() || in->size() / sizeof(uint64_t) < n) return false;
  exact_hashes_.resize(n);
  std::memcpy(exact_hashes_.data(), in->data(), n * sizeof(uint64_t));
  in->remove_prefix(n * sizeof(uint64_t));
  // Membership tests rely on strictly increasing hashes.
  return std::adjacent_find(exact_hashes_.begin(), exact_hashes_.end(),
                            [](uint64_t a, uint64_t b) { return a >= b; }) == exact_hashes_.end();
}

}  // namespace sluice
