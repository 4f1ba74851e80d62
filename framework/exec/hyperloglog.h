// HyperLogLog sketches for approx_count_distinct: a fixed-size summary of a
// set of values that estimates how many distinct values it has seen, merges
// with another sketch by register-wise max, and serializes to bytes for state
// stores. Values enter as 64-bit hashes (XxHash64, as Spark uses). While a
// sketch has seen few distinct hashes it keeps them exactly (sorted), so small
// counts are exact; past that it folds them into 2^p one-byte registers. The
// dense estimate is Ertl's improved estimator ("New cardinality estimation
// algorithms for HyperLogLog sketches", 2017), which needs no empirical bias
// tables and stays unbiased from small to large cardinalities.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// XxHash64 of `size` bytes.
uint64_t XxHash64(const void* data, size_t size, uint64_t seed);

class HyperLogLog {
 public:
  static constexpr int kMinPrecision = 4;
  static constexpr int kMaxPrecision = 18;
  static constexpr uint64_t kHashSeed = 42;  // Spark's seed for approx_count_distinct

  // Spark's precision for a relative standard deviation:
  // ceil(2 * log2(1.106 / rsd)); 0.05 gives 9 (512 registers).
  static int PrecisionForRelativeSd(double relative_sd);

  explicit HyperLogLog(int precision = 9) : precision_(static_cast<uint8_t>(precision)) {}

  int precision() const { return precision_; }
  bool is_dense() const { return !registers_.empty(); }

  static uint64_t HashBytes(std::string_view bytes) { return XxHash64(bytes.data(), bytes.size(), kHashSeed); }
  static uint64_t HashBits(uint64_t bits) { return XxHash64(&bits, sizeof bits, kHashSeed); }

  // Inline: called once per row from the aggregation loop.
  void AddHash(uint64_t hash) {
    if (is_dense()) {
      AddToRegisters(hash);
      return;
    }
    auto it = std::lower_bound(exact_hashes_.begin(), exact_hashes_.end(), hash);
    if (it != exact_hashes_.end() && *it == hash) return;
    exact_hashes_.insert(it, hash);
    if (exact_hashes_.size() > ExactLimit()) ConvertToRegisters();
  }

  // Adds every value `other` has seen; the result does not depend on the
  // order of merges (a union of sets, then register-wise max).
  void Merge(const HyperLogLog& other);

  // The estimated number of distinct hashes added, rounded.
  int64_t Estimate() const;

  // Appends a mode byte, then either the sorted exact hashes (4-byte count,
  // 8 bytes each) or the 2^p register bytes.
  void Encode(std::string* out) const;
  // Reads what Encode wrote from the front of *in, advancing it; false when
  // the bytes are truncated or inconsistent with this sketch's precision.
  bool Decode(std::string_view* in);

 private:
  size_t num_registers() const { return size_t{1} << precision_; }
  // Exact hashes are kept while they take no more room than the registers
  // would, but always up to 128 so small counts stay exact, and at most 1024
  // so insertion into the sorted vector stays cheap.
  size_t ExactLimit() const { return std::max<size_t>(128, std::min<size_t>(num_registers() / 8, 1024)); }

  void AddToRegisters(uint64_t hash) {
    // The top p bits pick the register; the rank is the position of the first
    // 1 bit in the rest (64 - p + 1 when the rest is all zeros).
    const size_t index = static_cast<size_t>(hash >> (64 - precision_));
    const uint64_t rest = hash << precision_;
    const uint8_t rank = static_cast<uint8_t>(rest == 0 ? 64 - precision_ + 1 : std::countl_zero(rest) + 1);
    if (rank > registers_[index]) registers_[index] = rank;
  }
  void ConvertToRegisters();

  uint8_t precision_;
  std::vector<uint64_t> exact_hashes_;  // sorted, distinct; used while registers_ is empty
  std::vector<uint8_t> registers_;
};

}  // namespace sluice
