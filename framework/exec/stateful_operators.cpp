#include "exec/stateful_operators.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include "compute/selection.h"
#include "exec/session_window.h"
#include "plugin/plugin_registry.h"
#include "sluice/value_format.h"

namespace sluice {

namespace {

// Splits "name(a, b, 'c')" into the lowercased name and its top-level
// arguments with their offsets. Returns false if `text` is not a call.
bool SplitCall(std::string_view text, std::string* name, std::vector<std::pair<std::string, size_t>>* args) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  size_t name_start = i;
  while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) ++i;
  name->clear();
  for (size_t k = name_start; k < i; ++k) name->push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(text[k]))));
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (name->empty() || i >= text.size() || text[i] != '(') return false;
  size_t arg_start = ++i;
  int depth = 1;
  char quote = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"' || c == '`') quote = c;
    else if (c == '(') ++depth;
    else if (c == ')' && --depth == 0) break;
    else if (c == ',' && depth == 1) {
      args->push_back({std::string(text.substr(arg_start, i - arg_start)), arg_start});
      arg_start = i + 1;
    }
  }
  if (depth != 0) return false;
  args->push_back({std::string(text.substr(arg_start, i - arg_start)), arg_start});
  for (size_t k = i + 1; k < text.size(); ++k)
    if (!std::isspace(static_cast<unsigned char>(text[k]))) return false;  // "window(...) AS w" etc. are not keys
  return true;
}

// A string literal argument: '10 minutes' -> 10 minutes.
bool StringLiteral(const std::string& arg, std::string* out) {
  size_t a = arg.find_first_not_of(" \t");
  size_t b = arg.find_last_not_of(" \t");
  if (a == std::string::npos || b <= a || (arg[a] != '\'' && arg[a] != '"') || arg[b] != arg[a]) return false;
  *out = arg.substr(a + 1, b - a - 1);
  return true;
}

// An expression under a different name: window keys are columns of the
// expanded batch but come out as window_start / window_end.
class RenamedExpr final : public expr::CompiledExpr {
 public:
  RenamedExpr(std::shared_ptr<expr::CompiledExpr> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)) {}
  DataType type() const override { return inner_->type(); }
  const std::string& name() const override { return name_; }
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const expr::EvalContext& ctx) const override {
    return inner_->Evaluate(batch, ctx);
  }

 private:
  std::shared_ptr<expr::CompiledExpr> inner_;
  std::string name_;
};

size_t PartitionOf(std::string_view key, int partitions) {
  return std::hash<std::string_view>{}(key) % static_cast<size_t>(partitions);
}

// The int64 value of key column `index` inside an encoded group key (see
// AppendKeyBytes in batch_aggregate.cpp); nullopt when that column is null.
std::optional<int64_t> KeyInt64(std::string_view key, const std::vector<DataType>& types, size_t index) {
  size_t p = 0;
  for (size_t k = 0; k < types.size() && p < key.size(); ++k) {
    bool valid = key[p++] != '\0';
    if (k == index) {
      if (!valid || p + 8 > key.size()) return std::nullopt;
      int64_t v;
      std::memcpy(&v, key.data() + p, 8);
      return v;
    }
    if (!valid) continue;
    switch (types[k]) {
      case DataType::kBool: p += 1; break;
      case DataType::kInt64:
      case DataType::kFloat64:
      case DataType::kTimestamp: p += 8; break;
      default: {
        uint32_t n;
        std::memcpy(&n, key.data() + p, 4);
        p += 4 + n;
      }
    }
  }
  return std::nullopt;
}

Status OpenStore(const StatefulBatchContext& ctx, const std::string& id, int partition,
                 std::unique_ptr<StateStore>* store) {
  StateStoreId sid{ctx.state_root, id, partition};
  auto opened = ctx.provider->Open(sid, ctx.batch_id);
  if (!opened.ok()) return opened.status().WithContext("state of step '" + id + "' partition " + std::to_string(partition));
  *store = std::move(opened).value();
  return Status::OK();
}

Status CommitStore(const StatefulBatchContext& ctx, const std::string& id, int partition, StateStore& store,
                   StateOperatorProgress* progress, std::mutex& mu) {
  auto committed = store.Commit();
  if (!committed.ok()) return committed.status().WithContext("committing state of step '" + id + "'");
  StateStoreMetrics m = store.metrics();
  int64_t keep_from = ctx.batch_id + 1 - ctx.min_batches_to_retain + 1;
  if (keep_from > 0) SLUICE_RETURN_IF_ERROR(ctx.provider->Purge(StateStoreId{ctx.state_root, id, partition}, keep_from));
  std::lock_guard<std::mutex> lock(mu);
  progress->num_rows_total += m.num_keys;
  progress->memory_used_bytes += m.memory_used_bytes;
  progress->commit_time_ms = std::max(progress->commit_time_ms, m.commit_time_ms);
  progress->checkpoint_wait_ms = std::max(progress->checkpoint_wait_ms, m.checkpoint_wait_ms);
  return Status::OK();
}

class StreamingAggregate final : public StatefulOperator {
 public:
  StreamingAggregate(StreamingAggregateOptions options, std::optional<WindowSpec> window, SchemaPtr expanded_schema,
                     std::unique_ptr<BatchAggregate> aggregate, std::vector<DataType> key_types,
                     std::optional<size_t> event_time_key)
      : options_(std::move(options)),
        window_(std::move(window)),
        expanded_schema_(std::move(expanded_schema)),
        aggregate_(std::move(aggregate)),
        key_types_(std::move(key_types)),
        event_time_key_(event_time_key) {}

  const SchemaPtr& output_schema() const override { return aggregate_->output_schema(); }
  const std::string& id() const override { return options_.id; }
  std::string kind() const override { return "aggregate"; }
  bool evicts_by_watermark() const override { return event_time_key_.has_value(); }

  Status Process(const std::vector<RecordBatchPtr>& input, const StatefulBatchContext& ctx,
                 std::vector<RecordBatchPtr>* output, StateOperatorProgress* progress) override {
    progress->operator_name = "stateStoreSave";
    progress->num_shuffle_partitions = options_.partitions;
    // 1. Window assignment, per batch in parallel.
    std::vector<RecordBatchPtr> expanded(input.size());
    SLUICE_RETURN_IF_ERROR(ctx.pool->ParallelFor(input.size(), [&](size_t b) -> Status {
      SLUICE_ASSIGN_OR_RETURN(expanded[b], Expand(*input[b], ctx));
      return Status::OK();
    }));
    // 2. The batch's partial aggregate: one row per group, as Spark's state
    // save operator sees it.
    // Runs of batches aggregate in parallel, then merge in order.
    const size_t chunks = std::max<size_t>(1, std::min(expanded.size(), static_cast<size_t>(ctx.pool->size())));
    std::vector<std::unique_ptr<AggregateState>> partials(chunks);
    SLUICE_RETURN_IF_ERROR(ctx.pool->ParallelFor(chunks, [&](size_t c) -> Status {
      partials[c] = aggregate_->NewState();
      for (size_t b = c * expanded.size() / chunks; b < (c + 1) * expanded.size() / chunks; ++b)
        if (expanded[b] && expanded[b]->num_rows() > 0)
          SLUICE_RETURN_IF_ERROR(aggregate_->Consume(*partials[c], *expanded[b], ctx.eval));
      return Status::OK();
    }));
    for (size_t c = 1; c < chunks; ++c) aggregate_->Merge(*partials[0], *partials[c]);
    std::unique_ptr<AggregateState> partial = std::move(partials[0]);
    // 3. Late groups are dropped with L (window.end <= L, or event time <= L),
    // except in complete mode, which keeps everything.
    const bool filter_late = ctx.has_watermark && event_time_key_ && ctx.mode != OutputMode::kComplete;
    const int parts = options_.partitions;
    std::vector<std::vector<size_t>> groups_of(static_cast<size_t>(parts));
    for (size_t g = 0; g < partial->keys.size(); ++g) {
      if (filter_late) {
        auto t = KeyInt64(partial->keys[g], key_types_, *event_time_key_);
        if (t && *t <= ctx.late_watermark_us) {
          ++progress->num_rows_dropped_by_watermark;
          continue;
        }
      }
      groups_of[PartitionOf(partial->keys[g], parts)].push_back(g);
    }
    // 4. Merge into state, partition by partition in parallel.
    std::vector<std::unique_ptr<AggregateState>> emitted(static_cast<size_t>(parts));
    std::mutex mu;
    SLUICE_RETURN_IF_ERROR(ctx.pool->ParallelFor(static_cast<size_t>(parts), [&](size_t p) -> Status {
      std::unique_ptr<StateStore> store;
      SLUICE_RETURN_IF_ERROR(OpenStore(ctx, options_.id, static_cast<int>(p), &store));
      auto updated = aggregate_->NewState();
      std::string value;
      std::string state_key;
      for (size_t g : groups_of[p]) {
        aggregate_->MergeGroupFrom(*updated, *partial, g);
        const std::string& key = partial->keys[g];
        StateKey(key, &state_key);
        SLUICE_ASSIGN_OR_RETURN(bool found, store->Get(state_key, &value));
        if (found) SLUICE_RETURN_IF_ERROR(aggregate_->MergeEncoded(*updated, key, value));
        aggregate_->EncodeAccumulators(*updated, *updated->Find(key), &value);
        SLUICE_RETURN_IF_ERROR(store->Put(state_key, value));
      }
      auto out = aggregate_->NewState();
      int64_t removed = 0;
      if (ctx.mode == OutputMode::kComplete) {
        Status scan = store->PrefixScan("", [&](std::string_view k, std::string_view v) {
          return aggregate_->MergeEncoded(*out, GroupKey(k), v).ok();
        });
        SLUICE_RETURN_IF_ERROR(scan);
      } else {
        if (ctx.mode == OutputMode::kUpdate) out = std::move(updated);
        if (ctx.has_watermark && event_time_key_) {
          // Evict every group whose event time is at or before E; append
          // emits them. State keys start with the event time, so this is one
          // range scan over what expires, not a scan of all state.
          std::vector<std::string> expired;
          std::string until;
          if (ctx.eviction_watermark_us < std::numeric_limits<int64_t>::max())
            AppendOrderedTime(ctx.eviction_watermark_us + 1, &until);
          else
            until.assign(8, '\xff');
          Status scan = store->RangeScan("", until, [&](std::string_view k, std::string_view v) {
            expired.emplace_back(k);
            return ctx.mode != OutputMode::kAppend || aggregate_->MergeEncoded(*out, GroupKey(k), v).ok();
          });
          SLUICE_RETURN_IF_ERROR(scan);
          for (const auto& k : expired) SLUICE_RETURN_IF_ERROR(store->Remove(k));
          removed = static_cast<int64_t>(expired.size());
        }
      }
      SLUICE_RETURN_IF_ERROR(CommitStore(ctx, options_.id, static_cast<int>(p), *store, progress, mu));
      std::lock_guard<std::mutex> lock(mu);
      progress->num_rows_updated += static_cast<int64_t>(groups_of[p].size());
      progress->num_rows_removed += removed;
      emitted[p] = std::move(out);
      return Status::OK();
    }));
    for (const auto& e : emitted)
      for (auto& b : aggregate_->Finish(*e))
        if (b->num_rows() > 0) output->push_back(std::move(b));
    return Status::OK();
  }

 private:
  // Adds window columns: one row per window a row falls in.
  Result<RecordBatchPtr> Expand(const RecordBatch& batch, const StatefulBatchContext& ctx) const {
    if (!window_) return std::make_shared<const RecordBatch>(batch);
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr times, window_->time->Evaluate(batch, ctx.eval));
    const WindowSpec& w = *window_;
    const int64_t per_row = (w.size_us + w.slide_us - 1) / w.slide_us;
    std::vector<compute::RowIndex> rows;
    rows.reserve(static_cast<size_t>(batch.num_rows() * per_row));
    std::vector<int64_t> start_values;
    start_values.reserve(rows.capacity());
    for (int64_t r = 0; r < batch.num_rows(); ++r) {
      if (times->is_null(r)) continue;  // a null time is in no window (Spark filters it)
      const int64_t t = times->int64_at(r);
      int64_t rem = (t - w.start_us) % w.slide_us;
      if (rem < 0) rem += w.slide_us;
      const int64_t last_start = t - rem;
      for (int64_t i = 0; i < per_row; ++i) {
        int64_t start = last_start - i * w.slide_us;
        if (!(start <= t && t < start + w.size_us)) continue;
        rows.push_back(static_cast<compute::RowIndex>(r));
        start_values.push_back(start);
      }
    }
    RecordBatchPtr taken = compute::Take(batch, rows);
    auto start_col = Column::AllocateFixed(DataType::kTimestamp, static_cast<int64_t>(rows.size()));
    auto end_col = Column::AllocateFixed(DataType::kTimestamp, static_cast<int64_t>(rows.size()));
    auto* sv = reinterpret_cast<int64_t*>(start_col->mutable_values().data());
    auto* ev = reinterpret_cast<int64_t*>(end_col->mutable_values().data());
    for (size_t i = 0; i < rows.size(); ++i) {
      sv[i] = start_values[i];
      ev[i] = start_values[i] + w.size_us;
    }
    std::vector<ColumnPtr> cols = taken->columns();
    cols.push_back(start_col);
    cols.push_back(end_col);
    return std::make_shared<const RecordBatch>(expanded_schema_, std::move(cols), static_cast<int64_t>(rows.size()));
  }

  // 8 bytes that sort like the signed time: big-endian with the sign bit flipped.
  static void AppendOrderedTime(int64_t t, std::string* out) {
    uint64_t u = static_cast<uint64_t>(t) ^ (uint64_t{1} << 63);
    for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((u >> shift) & 0xff));
  }
  // The state store key of a group: with an event-time key, that time first
  // (so expiry is a range), then the group key; otherwise the group key.
  void StateKey(const std::string& group_key, std::string* out) const {
    out->clear();
    if (event_time_key_) {
      auto t = KeyInt64(group_key, key_types_, *event_time_key_);
      if (t) AppendOrderedTime(*t, out);
      else out->assign(8, '\xff');  // a null time never expires (Spark's predicate is NULL)
    }
    out->append(group_key);
  }
  std::string_view GroupKey(std::string_view state_key) const {
    return event_time_key_ ? state_key.substr(8) : state_key;
  }

  StreamingAggregateOptions options_;
  std::optional<WindowSpec> window_;
  SchemaPtr expanded_schema_;
  std::unique_ptr<BatchAggregate> aggregate_;
  std::vector<DataType> key_types_;
  std::optional<size_t> event_time_key_;  // key column whose value is event time (window_end, or the column itself)
};

class StreamingDeduplicate final : public StatefulOperator {
 public:
  StreamingDeduplicate(DeduplicateOptions options, SchemaPtr schema, std::vector<int> columns, int event_time_column)
      : options_(std::move(options)), schema_(std::move(schema)), columns_(std::move(columns)),
        event_time_column_(event_time_column) {}

  const SchemaPtr& output_schema() const override { return schema_; }
  const std::string& id() const override { return options_.id; }
  std::string kind() const override { return "deduplicate"; }
  bool evicts_by_watermark() const override { return event_time_column_ >= 0; }

  Status Process(const std::vector<RecordBatchPtr>& input, const StatefulBatchContext& ctx,
                 std::vector<RecordBatchPtr>* output, StateOperatorProgress* progress) override {
    progress->operator_name = "dedupe";
    progress->num_shuffle_partitions = options_.partitions;
    const int parts = options_.partitions;
    const bool use_watermark = ctx.has_watermark && event_time_column_ >= 0;
    // Key bytes and partition of every row, per batch in parallel.
    struct RowKeys {
      std::vector<std::string> keys;
      std::vector<uint16_t> partition;
      std::vector<uint8_t> keep;
    };
    std::vector<RowKeys> rk(input.size());
    SLUICE_RETURN_IF_ERROR(ctx.pool->ParallelFor(input.size(), [&](size_t b) -> Status {
      const RecordBatch& batch = *input[b];
      RowKeys& k = rk[b];
      k.keys.resize(static_cast<size_t>(batch.num_rows()));
      k.partition.resize(k.keys.size());
      k.keep.assign(k.keys.size(), 0);
      for (int64_t r = 0; r < batch.num_rows(); ++r) {
        std::string& key = k.keys[static_cast<size_t>(r)];
        for (int c : columns_) {
          std::string cell;
          AppendCellJson(cell, batch.column(c), r);  // unambiguous: strings are quoted, null is null
          key += cell;
          key.push_back('\x1f');
        }
        k.partition[static_cast<size_t>(r)] = static_cast<uint16_t>(PartitionOf(key, parts));
      }
      return Status::OK();
    }));
    std::atomic<int64_t> dropped{0};
    std::mutex mu;
    SLUICE_RETURN_IF_ERROR(ctx.pool->ParallelFor(static_cast<size_t>(parts), [&](size_t p) -> Status {
      std::unique_ptr<StateStore> store;
      SLUICE_RETURN_IF_ERROR(OpenStore(ctx, options_.id, static_cast<int>(p), &store));
      std::string value;
      int64_t added = 0;
      for (size_t b = 0; b < input.size(); ++b) {
        const RecordBatch& batch = *input[b];
        for (int64_t r = 0; r < batch.num_rows(); ++r) {
          if (rk[b].partition[static_cast<size_t>(r)] != p) continue;
          int64_t t = 0;
          if (event_time_column_ >= 0 && batch.column(event_time_column_).is_valid(r))
            t = batch.column(event_time_column_).int64_at(r);
          if (use_watermark && batch.column(event_time_column_).is_valid(r) && t <= ctx.late_watermark_us) {
            ++dropped;
            continue;
          }
          const std::string& key = rk[b].keys[static_cast<size_t>(r)];
          SLUICE_ASSIGN_OR_RETURN(bool seen, store->Get(key, &value));
          if (seen) continue;
          value.assign(reinterpret_cast<const char*>(&t), 8);
          SLUICE_RETURN_IF_ERROR(store->Put(key, value));
          rk[b].keep[static_cast<size_t>(r)] = 1;
          ++added;
        }
      }
      int64_t removed = 0;
      if (use_watermark) {
        std::vector<std::string> expired;
        SLUICE_RETURN_IF_ERROR(store->PrefixScan("", [&](std::string_view k, std::string_view v) {
          int64_t t;
          if (v.size() == 8) {
            std::memcpy(&t, v.data(), 8);
            if (t <= ctx.eviction_watermark_us) expired.emplace_back(k);
          }
          return true;
        }));
        for (const auto& k : expired) SLUICE_RETURN_IF_ERROR(store->Remove(k));
        removed = static_cast<int64_t>(expired.size());
      }
      SLUICE_RETURN_IF_ERROR(CommitStore(ctx, options_.id, static_cast<int>(p), *store, progress, mu));
      std::lock_guard<std::mutex> lock(mu);
      progress->num_rows_updated += added;
      progress->num_rows_removed += removed;
      return Status::OK();
    }));
    progress->num_rows_dropped_by_watermark = dropped;
    // Keep first occurrences, in input order.
    for (size_t b = 0; b < input.size(); ++b) {
      std::vector<compute::RowIndex> rows;
      for (size_t r = 0; r < rk[b].keep.size(); ++r)
        if (rk[b].keep[r]) rows.push_back(static_cast<compute::RowIndex>(r));
      if (!rows.empty()) output->push_back(compute::Take(*input[b], rows));
    }
    return Status::OK();
  }

 private:
  DeduplicateOptions options_;
  SchemaPtr schema_;
  std::vector<int> columns_;
  int event_time_column_;
};

}  // namespace

bool ParseWindowKey(std::string_view text, const Schema& input, WindowSpec* out, expr::ExprError* error) {
  std::string name;
  std::vector<std::pair<std::string, size_t>> args;
  if (!SplitCall(text, &name, &args) || name != "window") return false;
  if (args.size() < 2 || args.size() > 4) {
    *error = {0, "window() takes a time column and a duration, then optionally a slide and a start: "
                 "window(ts, '10 minutes'[, '5 minutes'[, '0 seconds']])"};
    return false;
  }
  WindowSpec w;
  expr::ExprError e;
  w.time = expr::CompileExpression(args[0].first, input, &e);
  if (!w.time) {
    *error = {args[0].second + e.offset, e.message};
    return false;
  }
  if (w.time->type() != DataType::kTimestamp) {
    *error = {args[0].second, "window() needs a TIMESTAMP, but '" + args[0].first + "' is " + DataTypeName(w.time->type()) +
                                  "; convert it with to_timestamp()"};
    return false;
  }
  std::string col = args[0].first;
  col.erase(0, col.find_first_not_of(" \t`"));
  col.erase(col.find_last_not_of(" \t`") + 1);
  if (input.IndexOf(col) >= 0) w.time_column = input.field(input.IndexOf(col)).name;
  int64_t* targets[] = {&w.size_us, &w.slide_us, &w.start_us};
  for (size_t a = 1; a < args.size(); ++a) {
    std::string lit;
    if (!StringLiteral(args[a].first, &lit)) {
      *error = {args[a].second, "window() durations are string literals such as '10 minutes'"};
      return false;
    }
    auto d = ParseDuration(lit);
    if (!d.ok()) {
      *error = {args[a].second, d.status().message()};
      return false;
    }
    *targets[a - 1] = *d;
  }
  if (args.size() == 2) w.slide_us = w.size_us;
  if (w.size_us <= 0 || w.slide_us <= 0) {
    *error = {args[1].second, "window durations must be positive"};
    return false;
  }
  if (w.slide_us > w.size_us) {  // Spark's TimeWindow.checkInputDataTypes
    *error = {args[2].second, "the slide duration must not be greater than the window duration"};
    return false;
  }
  if (std::llabs(w.start_us) >= w.slide_us) {
    *error = {args[3].second, "the start time must be less than the slide duration"};
    return false;
  }
  *out = std::move(w);
  return true;
}

std::unique_ptr<StatefulOperator> MakeStreamingAggregate(const StreamingAggregateOptions& options, const Schema& input,
                                                         expr::ExprError* error, size_t* item) {
  // A session_window(...) key makes this a session aggregation (exec/session_window.h).
  for (const auto& key : options.key_texts)
    if (IsSessionWindowKey(key)) return MakeSessionWindowAggregate(options, input, error, item);
  std::optional<WindowSpec> window;
  size_t window_item = options.key_texts.size();
  for (size_t i = 0; i < options.key_texts.size(); ++i) {
    WindowSpec w;
    expr::ExprError e;
    if (ParseWindowKey(options.key_texts[i], input, &w, &e)) {
      if (window) {
        *error = {0, "only one window() key is allowed"};
        *item = i;
        return nullptr;
      }
      window = std::move(w);
      window_item = i;
    } else if (!e.message.empty()) {
      *error = e;
      *item = i;
      return nullptr;
    }
  }
  // The expanded batch: the input plus the window's start and end.
  std::vector<Field> fields = input.fields();
  if (window) {
    fields.push_back({"__window_start", DataType::kTimestamp, false});
    fields.push_back({"__window_end", DataType::kTimestamp, false});
  }
  auto expanded = std::make_shared<const Schema>(fields);
  std::vector<std::shared_ptr<expr::CompiledExpr>> keys;
  std::vector<DataType> key_types;
  std::optional<size_t> event_time_key;
  if (window) {
    expr::ExprError e;
    keys.push_back(std::make_shared<RenamedExpr>(expr::CompileExpression("`__window_start`", *expanded, &e), "window_start"));
    keys.push_back(std::make_shared<RenamedExpr>(expr::CompileExpression("`__window_end`", *expanded, &e), "window_end"));
    key_types = {DataType::kTimestamp, DataType::kTimestamp};
    if (!options.watermark_column.empty() && window->time_column == options.watermark_column) event_time_key = 1;
  }
  for (size_t i = 0; i < options.key_texts.size(); ++i) {
    if (i == window_item) continue;
    expr::ExprError e;
    auto k = expr::CompileExpression(options.key_texts[i], *expanded, &e);
    if (!k) {
      *error = e;
      *item = i;
      return nullptr;
    }
    std::string bare = options.key_texts[i];
    bare.erase(0, bare.find_first_not_of(" \t`"));
    bare.erase(bare.find_last_not_of(" \t`") + 1);
    if (!window && !options.watermark_column.empty() && Schema::EqualsIgnoreCase(bare, options.watermark_column) &&
        k->type() == DataType::kTimestamp)
      event_time_key = keys.size();
    key_types.push_back(k->type());
    keys.push_back(std::move(k));
  }
  std::vector<AggregateSpec> aggs;
  for (size_t i = 0; i < options.aggregate_texts.size(); ++i) {
    AggregateSpec spec;
    if (!ParseAggregate(options.aggregate_texts[i], *expanded, &spec, error)) {
      *item = options.key_texts.size() + i;
      return nullptr;
    }
    aggs.push_back(std::move(spec));
  }
  auto aggregate = std::make_unique<BatchAggregate>(std::move(keys), std::move(aggs));
  return std::make_unique<StreamingAggregate>(options, std::move(window), std::move(expanded), std::move(aggregate),
                                              std::move(key_types), event_time_key);
}

std::unique_ptr<StatefulOperator> MakeStreamingDeduplicate(const DeduplicateOptions& options, const Schema& input,
                                                           std::string* error) {
  std::vector<int> columns;
  if (options.columns.empty())
    for (int i = 0; i < input.num_fields(); ++i) columns.push_back(i);
  for (const auto& c : options.columns) {
    int i = input.IndexOf(c);
    if (i < 0) {
      std::string names;
      for (const auto& f : input.fields()) names += (names.empty() ? "" : ", ") + f.name;
      *error = "drop_duplicates: unknown column '" + c + "'; available: " + names;
      return nullptr;
    }
    columns.push_back(i);
  }
  int event_time = -1;
  if (!options.watermark_column.empty())
    for (int c : columns)
      if (input.field(c).name == options.watermark_column && input.field(c).type == DataType::kTimestamp) event_time = c;
  return std::make_unique<StreamingDeduplicate>(options, std::make_shared<const Schema>(input), std::move(columns),
                                                event_time);
}

}  // namespace sluice
