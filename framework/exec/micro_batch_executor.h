// Runs a Query as a sequence of micro-batches, Spark's incremental model.
//
// Each trigger asks every source for its latest offset and processes only the
// range since the previous batch: read the range's partitions in parallel on
// the worker pool, run each step over the batches (stateless steps batch by
// batch in parallel, per-batch aggregations as parallel partial aggregates
// merged at the end), hand each sink the rows of its input, then commit the
// sources and report progress. Triggers: default (next batch as soon as the
// previous one ends), processing time (fixed interval), once (everything
// available, one batch, then stop) and available-now (everything available
// at start, in batches bounded by the sources' limits, then stop).
//
// Threads: Run() is called on one thread; RequestStop() from any thread or a
// signal-watching thread. A stop takes effect between batches, never inside one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/async_progress_writer.h"
#include "checkpoint/checkpoint.h"
#include "common/worker_pool.h"
#include "exec/dead_letter_writer.h"
#include "exec/progress_reporter.h"
#include "exec/query.h"

namespace sluice {

struct ExecutorOptions {
  std::string progress_file;  // overrides the pipeline's; empty = the pipeline's
  // Called after every batch with its progress event, for tests and the daemon.
  std::function<void(const ProgressEvent&)> on_progress;
};

class MicroBatchExecutor {
 public:
  MicroBatchExecutor(Query& query, ExecutorOptions options = {});
  ~MicroBatchExecutor();

  // Runs until the trigger says the query is done or a stop is requested.
  // Returns the error that stopped the query, if any.
  Status Run();
  void RequestStop();
  int64_t batches_run() const { return batches_run_; }

 private:
  struct SourceRange {
    std::optional<Offset> start;
    std::optional<Offset> end;  // nullopt or == start: no new data
    bool has_data() const { return end.has_value() && end != start; }
  };
  struct BatchStats;
  // Which steps run on the reading threads (see BuildFusedPlan).
  struct FusedPlan {
    std::vector<bool> fused;                  // per node: runs as each record batch is read
    std::vector<bool> keep;                   // per node: its batches are needed after the read
    std::vector<std::vector<size_t>> fused_consumers;  // per node: fused steps reading it
    std::vector<std::vector<size_t>> source_nodes;     // per source: its nodes
  };
  FusedPlan BuildFusedPlan(bool fuse) const;

  Status RunBatch(int64_t batch_id, const std::vector<SourceRange>& ranges, BatchStats& stats);
  Status ReadSources(int64_t batch_id, const std::vector<SourceRange>& ranges, BatchStats& stats,
                     std::vector<std::vector<RecordBatchPtr>>& node_outputs);
  Status RunStep(const QueryNode& node, const std::vector<RecordBatchPtr>& input, std::vector<RecordBatchPtr>& out,
                 BatchStats& stats);
  // Spark's WatermarkTracker.updateWatermark, at the end of a batch.
  void UpdateWatermark(const BatchStats& stats);
  bool HasWatermarkEvictingOperator() const;
  size_t WatermarkNode(size_t watermark_index) const;
  // Opens the checkpoint and works out where to resume: the next batch id,
  // the committed offsets, and a batch to redo if its commit never happened.
  Status Recover();
  void WaitFor(int64_t micros);
  void StopAll();

  Query& query_;
  ExecutorOptions options_;
  WorkerPool pool_;
  ProgressReporter progress_;
  std::vector<std::unique_ptr<DeadLetterWriter>> dead_letters_;  // per source, or null
  // Per source: where the next batch starts (the end of the last batch run,
  // whose commit-log entry may still wait for its state to be durable).
  std::vector<std::optional<Offset>> committed_;
  std::atomic<bool> stop_{false};
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  int64_t batches_run_ = 0;
  std::unique_ptr<Checkpoint> checkpoint_;
  int64_t next_batch_id_ = 0;
  // A batch found in the offset log without its commit: rerun first, with
  // exactly its ranges, id and timestamp.
  struct PendingBatch {
    int64_t batch_id;
    std::vector<SourceRange> ranges;
    int64_t timestamp_ms;
    int64_t late_watermark_ms;
    int64_t batch_watermark_ms;
  };
  std::deque<PendingBatch> pending_;
  // A batch whose sinks have it but whose commit-log entry waits for its
  // state to be durable (asynchronous state checkpointing).
  struct CommittableBatch {
    int64_t batch_id;
    int64_t next_watermark_ms;
    std::vector<std::optional<Offset>> source_ends;   // nullopt: the source had no data
    std::vector<std::optional<Offset>> planned_ends;  // where every source stands after the batch
  };
  std::optional<CommittableBatch> deferred_commit_;
  // Set when the sinks ask for asynchronous progress tracking.
  std::unique_ptr<AsyncProgressWriter> async_progress_;
  // Writes the batch's commit-log entry (after its state is durable) and lets
  // the sources forget what it read.
  Status CommitBatch(const CommittableBatch& batch);
  // Watermarks in milliseconds, as Spark keeps them. batch_watermark_ms_ is
  // the watermark of the batch about to run (its eviction watermark E);
  // previous_batch_watermark_ms_ that of the batch before (the late-row
  // watermark L). Each operator's own watermark is -1 until it saw data.
  int64_t batch_watermark_ms_ = 0;
  int64_t previous_batch_watermark_ms_ = 0;
  int64_t global_watermark_ms_ = 0;
  std::vector<int64_t> operator_watermarks_ms_;
  // State of a query without a checkpoint lives in a temporary directory.
  std::string state_scratch_dir_;
  expr::EvalContext eval_ctx_;
  FusedPlan fused_plan_;    // stateless steps fused into the reads
  FusedPlan unfused_plan_;  // every step after the read
};

}  // namespace sluice
