// Progress events after every micro-batch, modelled on Spark's
// StreamingQueryProgress: the same field names, so dashboards and habits carry
// over. Each event is logged and appended as one JSON line to the progress file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "exec/stateful_operators.h"
#include "sluice/status.h"

namespace sluice {

struct SourceProgress {
  std::string description;
  std::optional<std::string> start_offset;  // raw JSON, as the source wrote it
  std::optional<std::string> end_offset;
  std::optional<std::string> latest_offset;
  int64_t num_input_rows = 0;
  int64_t num_bad_records = 0;     // every malformed record reported
  int64_t num_dropped_records = 0; // ...of which dropped (on_error = drop)
  int64_t num_dead_letter_records = 0;  // ...of which written to the dead-letter file
  double input_rows_per_second = 0;
  double processed_rows_per_second = 0;
  std::map<std::string, int64_t> metrics;  // the source's own counters
};

struct SinkProgress {
  std::string name;
  std::string description;
  int64_t num_output_rows = 0;
};

struct ProgressEvent {
  std::string id;      // query id
  std::string run_id;  // this run
  std::string name;
  std::string timestamp;  // trigger start, ISO-8601 UTC
  int64_t batch_id = 0;
  int64_t num_input_rows = 0;
  double input_rows_per_second = 0;
  double processed_rows_per_second = 0;
  // Spark's durationMs: each a part of triggerExecution. addBatch is reading,
  // the steps and the sinks (Spark runs the whole plan inside addBatch);
  // walCommit the offset-log write, commitOffsets the commit-log write (and
  // the sources' commits), present only for a checkpointed query.
  int64_t latest_offset_ms = 0;
  int64_t add_batch_ms = 0;
  std::optional<int64_t> wal_commit_ms;
  std::optional<int64_t> commit_offsets_ms;
  int64_t trigger_execution_ms = 0;
  std::vector<SourceProgress> sources;
  std::vector<SinkProgress> sinks;
  std::vector<StateOperatorProgress> state_operators;
  bool has_event_time = false;
  std::string watermark;  // ISO-8601; with min/max/avg only when the batch had event times
  std::optional<std::string> event_time_min, event_time_max, event_time_avg;

  std::string ToJson() const;
};

class ProgressReporter {
 public:
  ProgressReporter() = default;
  ~ProgressReporter();
  // Empty path: log only.
  Status Open(const std::string& progress_file);
  Status Report(const ProgressEvent& event);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace sluice
