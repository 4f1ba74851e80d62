// Hash aggregation within one micro-batch: `group_by` with scope = "batch",
// and the per-batch partial aggregate under a stateful (scope = "stream") one.
//
// Runs in two phases so partitions aggregate in parallel: each worker
// Consume()s its batches into its own AggregateState, the states are Merge()d,
// and Finish() turns the merged state into output batches. Groups come out in
// order of first appearance (partition order, then row order), so output is
// deterministic. Keys are encoded into one reused byte buffer per row; only a
// new group allocates. first()/last() follow that same arrival order: a merge
// always names which side came earlier.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "exec/hyperloglog.h"
#include "expr/expression.h"
#include "sluice/record_batch.h"

namespace sluice {

enum class AggregateFunction {
  kCountStar,
  kCount,
  kSum,
  kMin,
  kMax,
  kAvg,
  kCountDistinct,        // exact: keeps every distinct value per group
  kApproxCountDistinct,  // HyperLogLog
  kFirst,
  kLast,
};

struct AggregateSpec {
  AggregateFunction fn = AggregateFunction::kCountStar;
  std::shared_ptr<expr::CompiledExpr> argument;  // null for count(*)
  DataType output_type = DataType::kInt64;
  std::string name;
  bool ignore_nulls = false;  // first(x, true) / last(x, true)
  int hll_precision = 9;      // approx_count_distinct: from its rsd argument
};

// Parses "count(*)", "sum(price * qty) AS revenue", "avg(x)",
// "count(DISTINCT user)" (or "count_distinct(user)"),
// "approx_count_distinct(user, 0.01)", "first(x)", "last(x, true)" against
// `input`. On failure returns false with *error (offset into `text`).
bool ParseAggregate(std::string_view text, const Schema& input, AggregateSpec* out, expr::ExprError* error);

namespace aggregate_detail {
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct StringEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
// Distinct fixed-width values of one group by their (normalized) bit pattern:
// an open-addressing set, so storing a value allocates only when the table
// doubles and a lookup touches one cache line, not a node per value.
class DistinctBits {
 public:
  void insert(uint64_t bits) {
    if (bits == kFreeSlot) {
      size_ += !holds_free_slot_value_;
      holds_free_slot_value_ = true;
      return;
    }
    if ((size_ + 1) * 2 > slots_.size()) Grow();  // keeps the load at or under one half
    const size_t mask = slots_.size() - 1;
    for (size_t i = Mix(bits) & mask;; i = (i + 1) & mask) {
      if (slots_[i] == bits) return;
      if (slots_[i] == kFreeSlot) {
        slots_[i] = bits;
        ++size_;
        return;
      }
    }
  }
  size_t size() const { return size_; }
  template <typename Visit>
  void ForEach(Visit&& visit) const {
    if (holds_free_slot_value_) visit(kFreeSlot);
    for (uint64_t v : slots_)
      if (v != kFreeSlot) visit(v);
  }

 private:
  // Marks a free slot; the value with this pattern, if seen, is kept aside.
  static constexpr uint64_t kFreeSlot = 0x7FF5A5A5A5A5A5A5ULL;
  static size_t Mix(uint64_t v) {  // murmur3's finalizer: low bits depend on every input bit
    v ^= v >> 33;
    v *= 0xFF51AFD7ED558CCDULL;
    v ^= v >> 33;
    v *= 0xC4CEB9FE1A85EC53ULL;
    v ^= v >> 33;
    return static_cast<size_t>(v);
  }
  void Grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(std::max<size_t>(8, old.size() * 2), kFreeSlot);
    size_ = holds_free_slot_value_;
    for (uint64_t v : old)
      if (v != kFreeSlot) insert(v);
  }

  std::vector<uint64_t> slots_;
  size_t size_ = 0;
  bool holds_free_slot_value_ = false;
};
// Distinct strings and binaries of one group.
using DistinctBytes = std::unordered_set<std::string, StringHash, StringEq>;

// One aggregate's running values, one slot per group. count, i64 and f64 grow
// with every group; the other vectors only for the aggregates that use them.
struct Accumulator {
  std::vector<int64_t> count;  // inputs seen: non-null ones, rows for count(*) and first/last with nulls
  std::vector<int64_t> i64;    // sum/min/max/first/last of integers, timestamps, booleans
  std::vector<double> f64;     // sum/min/max/first/last of doubles, avg sums
  std::vector<std::string> str;  // min/max/first/last of strings and binaries
  std::vector<uint8_t> value_is_null;  // first/last: the kept value is null
  std::vector<DistinctBits> distinct_bits;    // count_distinct of fixed-width values
  std::vector<DistinctBytes> distinct_bytes;  // count_distinct of strings and binaries
  std::vector<HyperLogLog> sketches;          // approx_count_distinct
};

}  // namespace aggregate_detail

// Groups and running aggregate values of one partition (or of the merge).
class AggregateState {
 public:
  std::vector<std::string> keys;  // encoded, in group id order
  std::vector<aggregate_detail::Accumulator> accs;

  // The id of the group with encoded key `key`, adding it (with zeroed
  // accumulators) when it is new.
  uint32_t GroupFor(std::string_view key, size_t num_aggs) {
    if (slots_.empty()) Rehash(16);
    const uint64_t hash = aggregate_detail::StringHash{}(key);
    size_t slot = Probe(key, hash);
    if (slots_[slot] != 0) return slots_[slot] - 1;
    const auto id = static_cast<uint32_t>(keys.size());
    keys.emplace_back(key);
    slots_[slot] = id + 1;
    hashes_[slot] = hash;
    if (keys.size() * 2 > slots_.size()) Rehash(slots_.size() * 2);
    if (accs.size() != num_aggs) accs.resize(num_aggs);
    for (auto& a : accs) {
      a.count.push_back(0);
      a.i64.push_back(0);
      a.f64.push_back(0);
    }
    return id;
  }

  // Forgets every group but keeps the memory, for a state used as scratch.
  void Clear() {
    keys.clear();
    for (auto& a : accs) {
      a.count.clear();
      a.i64.clear();
      a.f64.clear();
      a.str.clear();
      a.value_is_null.clear();
      a.distinct_bits.clear();
      a.distinct_bytes.clear();
      a.sketches.clear();
    }
    std::fill(slots_.begin(), slots_.end(), 0);
  }

  // The id of the group with encoded key `key`, if there is one.
  std::optional<uint32_t> Find(std::string_view key) const {
    if (slots_.empty()) return std::nullopt;
    const size_t slot = Probe(key, aggregate_detail::StringHash{}(key));
    if (slots_[slot] == 0) return std::nullopt;
    return slots_[slot] - 1;
  }

 private:
  // Open addressing with linear probing over group ids, comparing against
  // `keys`: a group costs no hash node and no second copy of its key.
  size_t Probe(std::string_view key, uint64_t hash) const {
    const size_t mask = slots_.size() - 1;
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask)
      if (slots_[slot] == 0 || (hashes_[slot] == hash && keys[slots_[slot] - 1] == key)) return slot;
  }

  void Rehash(size_t capacity) {  // a power of two, more than twice the groups
    std::vector<uint32_t> slots(capacity, 0);
    std::vector<uint64_t> hashes(capacity, 0);
    const size_t mask = capacity - 1;
    for (size_t old = 0; old < slots_.size(); ++old) {
      if (slots_[old] == 0) continue;
      size_t slot = hashes_[old] & mask;
      while (slots[slot] != 0) slot = (slot + 1) & mask;
      slots[slot] = slots_[old];
      hashes[slot] = hashes_[old];
    }
    slots_ = std::move(slots);
    hashes_ = std::move(hashes);
  }

  std::vector<uint32_t> slots_;  // group id + 1; 0 is a free slot
  std::vector<uint64_t> hashes_;
};

class BatchAggregate {
 public:
  BatchAggregate(std::vector<std::shared_ptr<expr::CompiledExpr>> keys, std::vector<AggregateSpec> aggregates);
  ~BatchAggregate();

  const SchemaPtr& output_schema() const { return output_schema_; }
  std::unique_ptr<AggregateState> NewState() const;
  Status Consume(AggregateState& state, const RecordBatch& batch, const expr::EvalContext& ctx) const;
  void Merge(AggregateState& into, const AggregateState& from) const;
  std::vector<RecordBatchPtr> Finish(const AggregateState& state) const;

  // For state stores: one group's accumulators as bytes, and back. The
  // encoding is stable across restarts of the same pipeline and starts with
  // kAccumulatorEncodingVersion, so a change of layout is detected.
  static constexpr uint8_t kAccumulatorEncodingVersion = 1;
  void EncodeAccumulators(const AggregateState& state, uint32_t group, std::string* out) const;
  // Adds a group (or merges into an existing one) from a key and encoded
  // accumulators; the encoded values count as earlier than what `into` holds.
  Status MergeEncoded(AggregateState& into, std::string_view key, std::string_view encoded) const;
  // Adds group `fg` of `from` to `into` (merging if the key is there).
  void MergeGroupFrom(AggregateState& into, const AggregateState& from, size_t fg) const {
    if (into.accs.size() != aggregates_.size()) into.accs.resize(aggregates_.size());
    MergeGroup(into, into.GroupFor(from.keys[fg], aggregates_.size()), from, fg, ArrivalOrder::kFromIsLater);
  }
  size_t num_keys() const { return keys_.size(); }
  const std::vector<AggregateSpec>& aggregates() const { return aggregates_; }

 private:
  // Which side of a merge arrived first: decides first() and last().
  enum class ArrivalOrder { kFromIsLater, kFromIsEarlier };
  void MergeGroup(AggregateState& into, uint32_t g, const AggregateState& from, size_t fg, ArrivalOrder order) const;

  std::vector<std::shared_ptr<expr::CompiledExpr>> keys_;
  std::vector<AggregateSpec> aggregates_;
  SchemaPtr output_schema_;
};

}  // namespace sluice
