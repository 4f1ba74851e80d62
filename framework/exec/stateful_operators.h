// Stateful streaming operators: aggregation across batches (with tumbling and
// sliding event-time windows) and deduplication, built to Spark's rules
// (../shared/reference/spark-stateful-semantics.md):
//  - late rows are dropped with the late-event watermark L (the previous
//    batch's watermark): a windowed row is late when window.end <= L, a row
//    keyed by event time when its time <= L;
//  - state is evicted with the eviction watermark E (this batch's);
//  - append emits exactly the groups evicted this batch, update emits every
//    group the batch changed (with its merged value) then evicts silently,
//    complete emits the whole state and never evicts.
// State lives in StateStores, one per (operator, shuffle partition): keys are
// hashed over `shuffle_partitions` partitions processed in parallel, each
// opening version <batchId> and committing <batchId>+1.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/worker_pool.h"
#include "exec/batch_aggregate.h"
#include "expr/expression.h"
#include "sluice/sink.h"
#include "sluice/state_store.h"

namespace sluice {

// window(ts, '10 minutes'[, '5 minutes'[, '0 seconds']]) as a group key.
struct WindowSpec {
  std::shared_ptr<expr::CompiledExpr> time;  // TIMESTAMP
  std::string time_column;                   // the column it reads, when it is a plain column reference
  int64_t size_us = 0;
  int64_t slide_us = 0;  // == size_us for tumbling windows
  int64_t start_us = 0;  // offset of window starts from the epoch
};

// Parses a window(...) key. Returns false (leaving *error empty) when `text`
// is not a window call at all; false with *error set when it is a bad one.
bool ParseWindowKey(std::string_view text, const Schema& input, WindowSpec* out, expr::ExprError* error);

// Per-batch inputs of a stateful operator.
struct StatefulBatchContext {
  int64_t batch_id = 0;
  bool has_watermark = false;
  int64_t late_watermark_us = 0;      // L
  int64_t eviction_watermark_us = 0;  // E
  OutputMode mode = OutputMode::kAppend;
  StateStoreProvider* provider = nullptr;
  std::string state_root;  // <checkpoint>/state
  int64_t min_batches_to_retain = 100;
  WorkerPool* pool = nullptr;
  expr::EvalContext eval;
};

// One entry of a progress event's stateOperators, as Spark names them.
struct StateOperatorProgress {
  std::string operator_name;
  int64_t num_rows_total = 0;
  int64_t num_rows_updated = 0;
  int64_t num_rows_removed = 0;
  int64_t memory_used_bytes = 0;
  int64_t commit_time_ms = 0;
  // Longest time a partition's commit waited for its previous (asynchronous)
  // state checkpoint; in customMetrics as checkpointWaitMs.
  int64_t checkpoint_wait_ms = 0;
  int64_t num_rows_dropped_by_watermark = 0;
  int num_shuffle_partitions = 0;
};

class StatefulOperator {
 public:
  virtual ~StatefulOperator() = default;
  virtual const SchemaPtr& output_schema() const = 0;
  virtual const std::string& id() const = 0;  // the step's name; state lives under state/<id>/
  virtual std::string kind() const = 0;       // "aggregate" or "deduplicate"
  // Whether a batch with no input may still produce output or evict state
  // once the watermark moves (Spark's shouldRunAnotherBatch).
  virtual bool evicts_by_watermark() const = 0;
  virtual Status Process(const std::vector<RecordBatchPtr>& input, const StatefulBatchContext& ctx,
                         std::vector<RecordBatchPtr>* output, StateOperatorProgress* progress) = 0;
};

struct StreamingAggregateOptions {
  std::string id;
  int partitions = 4;
  std::vector<std::string> key_texts;  // as written in group_by
  std::vector<std::string> aggregate_texts;
  std::string watermark_column;  // the input's event-time column, "" if none
};

// Builds the operator; on failure returns null with *error and *item (index
// into key_texts, then aggregate_texts).
std::unique_ptr<StatefulOperator> MakeStreamingAggregate(const StreamingAggregateOptions& options, const Schema& input,
                                                         expr::ExprError* error, size_t* item);

struct DeduplicateOptions {
  std::string id;
  int partitions = 4;
  std::vector<std::string> columns;  // empty = all columns
  std::string watermark_column;
};

std::unique_ptr<StatefulOperator> MakeStreamingDeduplicate(const DeduplicateOptions& options, const Schema& input,
                                                           std::string* error);

}  // namespace sluice
