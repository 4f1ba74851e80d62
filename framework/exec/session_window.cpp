// Session-window aggregation across batches, after Spark's
// planStreamingAggregationForSession
// (../shared/reference/spark-stateful-semantics.md §4): the batch is
// partially aggregated by (other keys, [t, t + gap)), late pieces are
// dropped with L, the rest are merged per key with
// that key's stored sessions, and the merged sessions are written back; then
// the output mode decides what is emitted and evicted with E. Sessions live in
// one StateStore per shuffle partition (partitioned by a hash of the other
// keys) under two key spaces: 's' + other keys + start -> end + accumulators,
// which a prefix scan turns into one key's sessions in start order, and
// 'e' + end + other keys + start -> "", an index by session end so eviction is
// one range scan. Both orders use big-endian, sign-flipped int64s.
#include "exec/session_window.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>

#include "compute/selection.h"
#include "plugin/plugin_registry.h"

namespace sluice {

namespace {

constexpr std::string_view kFunctionName = "session_window";
constexpr std::string_view kStartColumn = "session_window_start";
constexpr std::string_view kEndColumn = "session_window_end";
constexpr char kSessionSpace = 's';
constexpr char kEndIndexSpace = 'e';

// ---- Parsing session_window(ts, '5 minutes') ----

struct CallArgument {
  std::string text;
  size_t offset = 0;  // into the whole key text
};

std::string_view Trim(std::string_view s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return {};
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

// Offset of the '(' after the function name, or npos if `text` does not
// start with session_window(.
size_t OpeningParen(std::string_view text) {
  const size_t name = text.find_first_not_of(" \t\r\n");
  if (name == std::string_view::npos || text.size() - name < kFunctionName.size() ||
      !Schema::EqualsIgnoreCase(text.substr(name, kFunctionName.size()), kFunctionName))
    return std::string_view::npos;
  const size_t paren = text.find_first_not_of(" \t\r\n", name + kFunctionName.size());
  return paren != std::string_view::npos && text[paren] == '(' ? paren : std::string_view::npos;
}

// The top-level arguments of the call opened at `open`, which must close at
// the very end of `text`.
bool CallArguments(std::string_view text, size_t open, std::vector<CallArgument>* args, expr::ExprError* error) {
  int depth = 0;
  char quote = 0;
  size_t from = open + 1;
  for (size_t i = open + 1; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"' || c == '`') {
      quote = c;
    } else if (c == '(') {
      ++depth;
    } else if ((c == ',' && depth == 0) || (c == ')' && depth == 0)) {
      args->push_back({std::string(text.substr(from, i - from)), from});
      from = i + 1;
      if (c == ')') {
        if (!Trim(text.substr(i + 1)).empty()) {
          *error = {i + 1, "session_window(...) must be the whole group_by key (its columns are named " +
                               std::string(kStartColumn) + " and " + std::string(kEndColumn) + ")"};
          return false;
        }
        return true;
      }
    } else if (c == ')') {
      --depth;
    }
  }
  *error = {open, "unclosed '(' in session_window("};
  return false;
}

struct SessionWindowSpec {
  std::shared_ptr<expr::CompiledExpr> time;  // TIMESTAMP
  std::string time_column;                   // the input column it reads, "" for a computed time
  int64_t gap_us = 0;
};

bool ParseSessionWindowKey(std::string_view text, const Schema& input, SessionWindowSpec* out,
                           expr::ExprError* error) {
  std::vector<CallArgument> args;
  if (!CallArguments(text, OpeningParen(text), &args, error)) return false;
  if (args.size() != 2) {
    *error = {0, "session_window() takes a time column and a gap duration: session_window(ts, '5 minutes')"};
    return false;
  }
  SessionWindowSpec spec;
  expr::ExprError e;
  spec.time = expr::CompileExpression(args[0].text, input, &e);
  if (!spec.time) {
    *error = {args[0].offset + e.offset, e.message};
    return false;
  }
  if (spec.time->type() != DataType::kTimestamp) {
    *error = {args[0].offset, "session_window() needs a TIMESTAMP, but '" + std::string(Trim(args[0].text)) + "' is " +
                                  DataTypeName(spec.time->type()) + "; convert it with to_timestamp()"};
    return false;
  }
  std::string_view column = Trim(args[0].text);
  if (column.size() >= 2 && column.front() == '`' && column.back() == '`') column = column.substr(1, column.size() - 2);
  if (int c = input.IndexOf(column); c >= 0) spec.time_column = input.field(c).name;
  // Spark also accepts a gap computed per row; sluice takes a literal only.
  const std::string_view gap = Trim(args[1].text);
  if (gap.size() < 2 || (gap.front() != '\'' && gap.front() != '"') || gap.back() != gap.front()) {
    *error = {args[1].offset, "session_window() takes the gap as a string literal such as '5 minutes'"};
    return false;
  }
  auto parsed = ParseDuration(gap.substr(1, gap.size() - 2));
  if (!parsed.ok()) {
    *error = {args[1].offset, "session_window() gap: " + parsed.status().message()};
    return false;
  }
  // Spark filters the rows of a non-positive gap (end <= start, §4); with a
  // literal gap that would drop every row, so it is an error here.
  if (*parsed <= 0) {
    *error = {args[1].offset, "the session gap must be positive, but '" + std::string(gap) + "' is not"};
    return false;
  }
  spec.gap_us = *parsed;
  *out = std::move(spec);
  return true;
}

// ---- Key encodings ----

// Group keys of the BatchAggregate are (session start, session end, other
// keys) in its key encoding (AppendKeyBytes in batch_aggregate.cpp): a
// non-null TIMESTAMP is '\1' then 8 little-endian bytes. Session bounds are
// never null, so the other keys start at a fixed offset.
constexpr size_t kTimeKeyBytes = 9;
constexpr size_t kOtherKeysOffset = 2 * kTimeKeyBytes;

void AppendTimeKey(std::string& key, int64_t t) {
  key.push_back('\1');
  key.append(reinterpret_cast<const char*>(&t), sizeof t);
}

int64_t TimeKeyAt(std::string_view key, size_t offset) {
  int64_t t;
  std::memcpy(&t, key.data() + offset + 1, sizeof t);
  return t;
}

std::string GroupKey(int64_t start, int64_t end, std::string_view other_keys) {
  std::string key;
  key.reserve(kOtherKeysOffset + other_keys.size());
  AppendTimeKey(key, start);
  AppendTimeKey(key, end);
  key.append(other_keys);
  return key;
}

// Big-endian with the sign bit flipped: bytewise order is numeric order.
void AppendOrdered(std::string& out, int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((u >> shift) & 0xff));
}

int64_t ReadOrdered(std::string_view in, size_t offset) {
  uint64_t u = 0;
  for (size_t i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(in[offset + i]);
  return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
}

std::string SessionPrefix(std::string_view other_keys) {
  std::string key(1, kSessionSpace);
  key.append(other_keys);
  return key;
}

std::string SessionStateKey(std::string_view other_keys, int64_t start) {
  std::string key = SessionPrefix(other_keys);
  AppendOrdered(key, start);
  return key;
}

std::string EndIndexKey(int64_t end, std::string_view other_keys, int64_t start) {
  std::string key(1, kEndIndexSpace);
  AppendOrdered(key, end);
  key.append(other_keys);
  AppendOrdered(key, start);
  return key;
}

// The exclusive upper bound of the index keys whose end is <= watermark.
std::string EndIndexBoundAfter(int64_t watermark) {
  if (watermark == std::numeric_limits<int64_t>::max()) return std::string(1, kEndIndexSpace + 1);
  std::string key(1, kEndIndexSpace);
  AppendOrdered(key, watermark + 1);
  return key;
}

size_t PartitionOfKeys(std::string_view other_keys, int partitions) {
  return std::hash<std::string_view>{}(other_keys) % static_cast<size_t>(partitions);
}

// One session, stored or from this batch, while a key's sessions are merged.
struct SessionPiece {
  int64_t start = 0;
  int64_t end = 0;
  bool stored = false;
  std::string accumulators;  // BatchAggregate::EncodeAccumulators bytes
};

struct PartitionCounts {
  int64_t updated = 0;
  int64_t removed = 0;
};

class SessionWindowAggregate final : public StatefulOperator {
 public:
  SessionWindowAggregate(StreamingAggregateOptions options, SessionWindowSpec spec, SchemaPtr expanded_schema,
                         std::unique_ptr<BatchAggregate> aggregate, bool time_is_event_time)
      : options_(std::move(options)),
        spec_(std::move(spec)),
        expanded_schema_(std::move(expanded_schema)),
        aggregate_(std::move(aggregate)),
        time_is_event_time_(time_is_event_time) {}

  const SchemaPtr& output_schema() const override { return aggregate_->output_schema(); }
  const std::string& id() const override { return options_.id; }
  std::string kind() const override { return "session aggregate"; }
  // Only a session over the watermarked column can be closed by the
  // watermark; append needs that (§3, §4).
  bool evicts_by_watermark() const override { return time_is_event_time_; }

  Status Process(const std::vector<RecordBatchPtr>& input, const StatefulBatchContext& ctx,
                 std::vector<RecordBatchPtr>* output, StateOperatorProgress* progress) override {
    progress->operator_name = "sessionWindowStateStoreSaveExec";  // Spark's shortName
    progress->num_shuffle_partitions = options_.partitions;
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<AggregateState> partial, PartialAggregate(input, ctx));

    // Late filter of SessionWindowStateStoreRestoreExec: a piece is late when
    // its session end t + gap <= L. It applies whenever the session's time is
    // the watermarked column, in complete mode too (§4, §7.1). Each dropped
    // piece is one (other keys, t) group of the partial aggregate (§6).
    const bool filter_late = ctx.has_watermark && time_is_event_time_;
    const int parts = options_.partitions;
    using PiecesByKey = std::map<std::string, std::vector<uint32_t>, std::less<>>;
    std::vector<PiecesByKey> pieces_of(static_cast<size_t>(parts));
    for (uint32_t g = 0; g < partial->keys.size(); ++g) {
      const std::string& key = partial->keys[g];
      if (filter_late && TimeKeyAt(key, kTimeKeyBytes) <= ctx.late_watermark_us) {
        ++progress->num_rows_dropped_by_watermark;
        continue;
      }
      std::string_view other_keys = std::string_view(key).substr(kOtherKeysOffset);
      pieces_of[PartitionOfKeys(other_keys, parts)][std::string(other_keys)].push_back(g);
    }

    const bool evict = ctx.has_watermark && time_is_event_time_ && ctx.mode != OutputMode::kComplete;
    std::vector<std::unique_ptr<AggregateState>> emitted(static_cast<size_t>(parts));
    std::mutex mu;
    SLUICE_RETURN_IF_ERROR(ctx.pool->ParallelFor(static_cast<size_t>(parts), [&](size_t p) -> Status {
      const StateStoreId store_id{ctx.state_root, options_.id, static_cast<int>(p)};
      auto opened = ctx.provider->Open(store_id, ctx.batch_id);
      if (!opened.ok())
        return opened.status().WithContext("state of step '" + options_.id + "' partition " + std::to_string(p));
      std::unique_ptr<StateStore> store = std::move(opened).value();

      PartitionCounts counts;
      auto changed = aggregate_->NewState();
      for (const auto& [other_keys, groups] : pieces_of[p])
        SLUICE_RETURN_IF_ERROR(MergeSessionsOfKey(*store, *partial, other_keys, groups, *changed, counts));

      std::unique_ptr<AggregateState> out;
      if (ctx.mode == OutputMode::kComplete) {
        out = aggregate_->NewState();  // every session; complete never evicts
        SLUICE_RETURN_IF_ERROR(EmitAllSessions(*store, *out));
      } else if (ctx.mode == OutputMode::kUpdate) {
        // Spark rejects update for sessions (§4); sluice emits every session
        // this batch wrote, with its merged value, then evicts silently.
        // A session that absorbed an earlier-emitted one has a new start, so
        // downstream sees both rows: a consumer must key by the other keys
        // and keep the latest.
        out = std::move(changed);
        if (evict) SLUICE_RETURN_IF_ERROR(EvictClosedSessions(*store, ctx.eviction_watermark_us, nullptr, counts));
      } else {
        // Append: exactly the sessions closed by E, once (§4
        // removeByValueCondition: session.end <= E).
        out = aggregate_->NewState();
        if (evict) SLUICE_RETURN_IF_ERROR(EvictClosedSessions(*store, ctx.eviction_watermark_us, out.get(), counts));
      }

      auto committed = store->Commit();
      if (!committed.ok()) return committed.status().WithContext("committing state of step '" + options_.id + "'");
      const StateStoreMetrics metrics = store->metrics();
      const int64_t oldest_to_keep = ctx.batch_id + 2 - ctx.min_batches_to_retain;
      if (oldest_to_keep > 0) SLUICE_RETURN_IF_ERROR(ctx.provider->Purge(store_id, oldest_to_keep));
      std::lock_guard<std::mutex> lock(mu);
      progress->num_rows_total += metrics.num_keys / 2;  // each session has one entry in each key space
      progress->num_rows_updated += counts.updated;
      progress->num_rows_removed += counts.removed;
      progress->memory_used_bytes += metrics.memory_used_bytes;
      progress->commit_time_ms = std::max(progress->commit_time_ms, metrics.commit_time_ms);
  progress->checkpoint_wait_ms = std::max(progress->checkpoint_wait_ms, metrics.checkpoint_wait_ms);
      emitted[p] = std::move(out);
      return Status::OK();
    }));
    for (const auto& state : emitted)
      for (auto& batch : aggregate_->Finish(*state))
        if (batch->num_rows() > 0) output->push_back(std::move(batch));
    return Status::OK();
  }

 private:
  // The batch's rows with their one-row sessions [t, t + gap) appended as
  // session_window_start / session_window_end; rows with a null time are in
  // no session (Spark filters them, §4).
  Result<RecordBatchPtr> WithSessionColumns(const RecordBatch& batch, const expr::EvalContext& eval) const {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr times, spec_.time->Evaluate(batch, eval));
    std::vector<compute::RowIndex> timed;
    timed.reserve(static_cast<size_t>(batch.num_rows()));
    for (int64_t r = 0; r < batch.num_rows(); ++r)
      if (times->is_valid(r)) timed.push_back(static_cast<compute::RowIndex>(r));
    const int64_t n = static_cast<int64_t>(timed.size());
    auto starts = Column::AllocateFixed(DataType::kTimestamp, n);
    auto ends = Column::AllocateFixed(DataType::kTimestamp, n);
    auto* start_values = reinterpret_cast<int64_t*>(starts->mutable_values().data());
    auto* end_values = reinterpret_cast<int64_t*>(ends->mutable_values().data());
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = times->int64_at(timed[static_cast<size_t>(i)]);
      start_values[i] = t;
      end_values[i] = t > kMax - spec_.gap_us ? kMax : t + spec_.gap_us;
    }
    std::vector<ColumnPtr> columns = n == batch.num_rows() ? batch.columns() : compute::Take(batch, timed)->columns();
    columns.push_back(std::move(starts));
    columns.push_back(std::move(ends));
    return std::make_shared<const RecordBatch>(expanded_schema_, std::move(columns), n);
  }

  // One group per (session start, session end, other keys): the rows Spark's
  // restore operator sees, before any merging.
  Result<std::unique_ptr<AggregateState>> PartialAggregate(const std::vector<RecordBatchPtr>& input,
                                                           const StatefulBatchContext& ctx) const {
    const size_t chunks = std::max<size_t>(1, std::min(input.size(), static_cast<size_t>(ctx.pool->size())));
    std::vector<std::unique_ptr<AggregateState>> states(chunks);
    SLUICE_RETURN_IF_ERROR(ctx.pool->ParallelFor(chunks, [&](size_t c) -> Status {
      states[c] = aggregate_->NewState();
      for (size_t b = c * input.size() / chunks; b < (c + 1) * input.size() / chunks; ++b) {
        if (input[b]->num_rows() == 0) continue;
        SLUICE_ASSIGN_OR_RETURN(RecordBatchPtr expanded, WithSessionColumns(*input[b], ctx.eval));
        SLUICE_RETURN_IF_ERROR(aggregate_->Consume(*states[c], *expanded, ctx.eval));
      }
      return Status::OK();
    }));
    for (size_t c = 1; c < chunks; ++c) aggregate_->Merge(*states[0], *states[c]);
    return std::move(states[0]);
  }

  // Merges this batch's pieces of one key with the key's stored sessions
  // (MergingSortWithSessionWindowStateIterator + MergingSessionsIterator,
  // §4): in start order, a session absorbs the next when next.start <= its
  // end, so touching sessions merge and one new piece can bridge two stored
  // sessions. Sessions the batch did not touch stay as they are.
  Status MergeSessionsOfKey(StateStore& store, const AggregateState& partial, const std::string& other_keys,
                            const std::vector<uint32_t>& groups, AggregateState& changed,
                            PartitionCounts& counts) const {
    std::vector<SessionPiece> pieces;
    Status decoded = Status::OK();
    const std::string prefix = SessionPrefix(other_keys);
    SLUICE_RETURN_IF_ERROR(store.PrefixScan(prefix, [&](std::string_view key, std::string_view value) {
      if (key.size() != prefix.size() + 8 || value.size() < 8) {
        decoded = Status::Corruption("session state of step '" + options_.id + "' has a malformed entry");
        return false;
      }
      pieces.push_back({ReadOrdered(key, prefix.size()), ReadOrdered(value, 0), true, std::string(value.substr(8))});
      return true;
    }));
    SLUICE_RETURN_IF_ERROR(decoded);
    for (uint32_t g : groups) {
      SessionPiece piece;
      piece.start = TimeKeyAt(partial.keys[g], 0);
      piece.end = TimeKeyAt(partial.keys[g], kTimeKeyBytes);
      aggregate_->EncodeAccumulators(partial, g, &piece.accumulators);
      pieces.push_back(std::move(piece));
    }
    // At equal starts the stored session counts as earlier than the batch's.
    std::sort(pieces.begin(), pieces.end(), [](const SessionPiece& a, const SessionPiece& b) {
      return a.start != b.start ? a.start < b.start : a.stored > b.stored;
    });
    for (size_t first = 0; first < pieces.size();) {
      size_t last = first + 1;
      int64_t end = pieces[first].end;
      bool touched = !pieces[first].stored;
      for (; last < pieces.size() && pieces[last].start <= end; ++last) {
        end = std::max(end, pieces[last].end);
        touched = touched || !pieces[last].stored;
      }
      if (touched)
        SLUICE_RETURN_IF_ERROR(WriteMergedSession(store, other_keys, pieces, first, last, end, changed, counts));
      first = last;
    }
    return Status::OK();
  }

  // Replaces pieces[first, last) by one session [pieces[first].start, end).
  Status WriteMergedSession(StateStore& store, const std::string& other_keys, const std::vector<SessionPiece>& pieces,
                            size_t first, size_t last, int64_t end, AggregateState& changed,
                            PartitionCounts& counts) const {
    const int64_t start = pieces[first].start;
    const std::string group = GroupKey(start, end, other_keys);
    // Latest first: MergeEncoded treats what it adds as earlier than what the
    // group already holds, so order-sensitive aggregates see event order.
    for (size_t i = last; i-- > first;)
      SLUICE_RETURN_IF_ERROR(aggregate_->MergeEncoded(changed, group, pieces[i].accumulators));
    for (size_t i = first; i < last; ++i) {
      const SessionPiece& piece = pieces[i];
      if (!piece.stored) continue;
      SLUICE_RETURN_IF_ERROR(store.Remove(EndIndexKey(piece.end, other_keys, piece.start)));
      if (piece.start != start) {  // absorbed; the one at `start` is overwritten below
        SLUICE_RETURN_IF_ERROR(store.Remove(SessionStateKey(other_keys, piece.start)));
        ++counts.removed;
      }
    }
    std::string value;
    AppendOrdered(value, end);
    std::string accumulators;
    aggregate_->EncodeAccumulators(changed, *changed.Find(group), &accumulators);
    value += accumulators;
    SLUICE_RETURN_IF_ERROR(store.Put(SessionStateKey(other_keys, start), value));
    SLUICE_RETURN_IF_ERROR(store.Put(EndIndexKey(end, other_keys, start), ""));
    ++counts.updated;
    return Status::OK();
  }

  // Removes every session with end <= watermark, across all keys, adding it
  // to *emit when that is not null.
  Status EvictClosedSessions(StateStore& store, int64_t watermark, AggregateState* emit,
                             PartitionCounts& counts) const {
    struct Closed {
      int64_t end, start;
      std::string other_keys;
    };
    std::vector<Closed> closed;
    Status decoded = Status::OK();
    SLUICE_RETURN_IF_ERROR(store.RangeScan(std::string(1, kEndIndexSpace), EndIndexBoundAfter(watermark),
                                           [&](std::string_view key, std::string_view) {
      if (key.size() < 17) {
        decoded = Status::Corruption("session end index of step '" + options_.id + "' has a malformed entry");
        return false;
      }
      closed.push_back({ReadOrdered(key, 1), ReadOrdered(key, key.size() - 8),
                        std::string(key.substr(9, key.size() - 17))});
      return true;
    }));
    SLUICE_RETURN_IF_ERROR(decoded);
    std::string value;
    for (const Closed& c : closed) {
      const std::string session_key = SessionStateKey(c.other_keys, c.start);
      SLUICE_ASSIGN_OR_RETURN(bool found, store.Get(session_key, &value));
      if (found && emit) {
        if (value.size() < 8) return Status::Corruption("session state of step '" + options_.id + "' is truncated");
        SLUICE_RETURN_IF_ERROR(
            aggregate_->MergeEncoded(*emit, GroupKey(c.start, c.end, c.other_keys), std::string_view(value).substr(8)));
      }
      SLUICE_RETURN_IF_ERROR(store.Remove(session_key));
      SLUICE_RETURN_IF_ERROR(store.Remove(EndIndexKey(c.end, c.other_keys, c.start)));
      ++counts.removed;
    }
    return Status::OK();
  }

  Status EmitAllSessions(StateStore& store, AggregateState& out) const {
    Status merged = Status::OK();
    SLUICE_RETURN_IF_ERROR(store.PrefixScan(std::string(1, kSessionSpace), [&](std::string_view key,
                                                                               std::string_view value) {
      if (key.size() < 9 || value.size() < 8) {
        merged = Status::Corruption("session state of step '" + options_.id + "' has a malformed entry");
        return false;
      }
      const std::string group =
          GroupKey(ReadOrdered(key, key.size() - 8), ReadOrdered(value, 0), key.substr(1, key.size() - 9));
      merged = aggregate_->MergeEncoded(out, group, value.substr(8));
      return merged.ok();
    }));
    return merged;
  }

  StreamingAggregateOptions options_;
  SessionWindowSpec spec_;
  SchemaPtr expanded_schema_;  // the input plus session_window_start / session_window_end
  std::unique_ptr<BatchAggregate> aggregate_;
  bool time_is_event_time_;
};

}  // namespace

bool IsSessionWindowKey(std::string_view text) { return OpeningParen(text) != std::string_view::npos; }

std::unique_ptr<StatefulOperator> MakeSessionWindowAggregate(const StreamingAggregateOptions& options,
                                                             const Schema& input, expr::ExprError* error,
                                                             size_t* item) {
  auto fail = [&](size_t at, expr::ExprError e) -> std::unique_ptr<StatefulOperator> {
    *error = std::move(e);
    *item = at;
    return nullptr;
  };
  std::optional<size_t> session_item;
  for (size_t i = 0; i < options.key_texts.size(); ++i) {
    const std::string& text = options.key_texts[i];
    if (IsSessionWindowKey(text)) {
      if (session_item) return fail(i, {0, "only one session_window() key is allowed"});
      session_item = i;
      continue;
    }
    WindowSpec unused;
    expr::ExprError e;
    if (ParseWindowKey(text, input, &unused, &e) || !e.message.empty())
      return fail(i, {0, "window() and session_window() cannot be combined in one group_by"});
  }
  if (!session_item) return fail(0, {0, "group_by has no session_window() key"});
  // AggUtils.planStreamingAggregationForSession rejects a global session window (§4).
  if (options.key_texts.size() < 2)
    return fail(*session_item, {0, "session_window() needs at least one other group_by key: sessions are per key, "
                                   "as in Spark, which rejects a global session window"});
  SessionWindowSpec spec;
  expr::ExprError e;
  if (!ParseSessionWindowKey(options.key_texts[*session_item], input, &spec, &e)) return fail(*session_item, e);
  for (std::string_view name : {kStartColumn, kEndColumn})
    if (input.IndexOf(name) >= 0)
      return fail(*session_item, {0, "the input already has a column named " + std::string(name) +
                                         ", which session_window() outputs; rename it first"});

  // The session bounds are ordinary columns of the expanded batch, so they
  // group like any key and come out under their own names.
  std::vector<Field> fields = input.fields();
  fields.push_back({std::string(kStartColumn), DataType::kTimestamp, false});
  fields.push_back({std::string(kEndColumn), DataType::kTimestamp, false});
  auto expanded = std::make_shared<const Schema>(std::move(fields));
  std::vector<std::shared_ptr<expr::CompiledExpr>> keys;
  for (std::string_view name : {kStartColumn, kEndColumn})
    keys.push_back(expr::CompileExpression("`" + std::string(name) + "`", *expanded, &e));
  for (size_t i = 0; i < options.key_texts.size(); ++i) {
    if (i == *session_item) continue;
    auto key = expr::CompileExpression(options.key_texts[i], *expanded, &e);
    if (!key) return fail(i, e);
    keys.push_back(std::move(key));
  }
  std::vector<AggregateSpec> aggregates;
  for (size_t i = 0; i < options.aggregate_texts.size(); ++i) {
    AggregateSpec aggregate;
    if (!ParseAggregate(options.aggregate_texts[i], *expanded, &aggregate, &e))
      return fail(options.key_texts.size() + i, e);
    aggregates.push_back(std::move(aggregate));
  }
  // The late filter and eviction need the watermark on the session's own
  // time column (WatermarkSupport.findEventTimeColumn, §2).
  const bool time_is_event_time = !spec.time_column.empty() && !options.watermark_column.empty() &&
                                  Schema::EqualsIgnoreCase(spec.time_column, options.watermark_column);
  auto aggregate = std::make_unique<BatchAggregate>(std::move(keys), std::move(aggregates));
  return std::make_unique<SessionWindowAggregate>(options, std::move(spec), std::move(expanded), std::move(aggregate),
                                                  time_is_event_time);
}

}  // namespace sluice
