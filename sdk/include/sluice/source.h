// Source: where a stream's rows come from.
//
// The executor drives a source through Spark's micro-batch contract:
//   1. LatestOffset(start, limit) -> how far the next batch may read;
//   2. the executor writes [start, end) to its offset log (write-ahead);
//   3. PlanPartitions(start, end) -> independent pieces of the range;
//   4. ReadPartition(piece) for each piece, concurrently on the worker pool;
//   5. after every sink committed the batch, Commit(end) lets the source forget
//      what it no longer needs.
// Offsets are opaque strings (JSON by convention) that the executor stores and
// hands back; after a restart the same (start, end) must read the same rows.
//
// Threads: every method except ReadPartition is called from the executor's
// thread only. ReadPartition is called concurrently from worker threads, for
// different pieces of the same batch.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/options.h"
#include "sluice/record_batch.h"
#include "sluice/status.h"

namespace sluice {

using Offset = std::string;

// How much one batch may take. kDefault applies the source's own limits
// (max_files_per_trigger, max_records_per_trigger...); kAll ignores them, as
// Spark's Trigger.Once does.
enum class ReadLimit { kDefault, kAll };

// Given to the source when it is created.
struct SourceContext {
  std::string name;            // the source's name in the pipeline ("[sources.<name>]")
  std::string query_id;        // stable across restarts of one checkpoint (a UUID); fresh per run without one
  std::string checkpoint_dir;  // a directory the source owns for its own logs; empty without a checkpoint
  Options options;             // validated against the plugin's OptionSpec table, defaults applied
};

// Where ReadPartition delivers rows and reports malformed records.
class ReadContext {
 public:
  virtual ~ReadContext() = default;
  // Hands a batch of rows with the source's schema to the engine.
  virtual Status Emit(RecordBatchPtr batch) = 0;
  // Reports a record that could not be parsed. What happens next is the
  // source's `on_error` setting, applied by the engine: "fail" returns a non-OK
  // Status (return it), "drop" counts it, "dead_letter" also writes it to the
  // dead-letter file. `position` says where it was ("file.csv:17", "offset 42").
  virtual Status BadRecord(std::string_view raw, std::string_view position, std::string_view error) = 0;
  // True once the engine has been asked to stop; long reads may return early
  // with Status::Aborted.
  virtual bool StopRequested() const = 0;
};

class Source {
 public:
  virtual ~Source() = default;

  // The schema of every batch this source emits. Fixed for the source's life.
  virtual Schema schema() const = 0;

  // A short description for progress events, e.g. "FileSource[/data/in]".
  virtual std::string Description() const = 0;

  // The end offset of the next batch, starting from `start` (nullopt before the
  // first batch). Returns `start` itself (or nullopt) when there is nothing new.
  virtual Result<std::optional<Offset>> LatestOffset(const std::optional<Offset>& start, ReadLimit limit) = 0;

  // Called once before the first LatestOffset under the available-now trigger:
  // remember what exists now; later LatestOffset calls never go beyond it.
  virtual Status PrepareForAvailableNow() { return Status::OK(); }

  // Splits [start, end) into pieces that can be read independently. Each piece
  // is an opaque string passed back to ReadPartition.
  virtual Result<std::vector<std::string>> PlanPartitions(const std::optional<Offset>& start, const Offset& end) = 0;

  // Reads one piece, emitting batches in order. Thread-safe.
  virtual Status ReadPartition(const std::string& partition, ReadContext& ctx) = 0;

  // Every batch up to `end` is committed by all sinks.
  virtual Status Commit(const Offset& end) { (void)end; return Status::OK(); }

  // Release resources. Idempotent.
  virtual void Stop() {}

  // Counters of the source's own (cumulative since it was created), shown in
  // each progress event under sources[].metrics, e.g. {"recordsLost": 5}.
  virtual std::map<std::string, int64_t> Metrics() const { return {}; }
};

}  // namespace sluice
