#include "exec/progress_reporter.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/json_writer.h"
#include "common/logging.h"

namespace sluice {

std::string ProgressEvent::ToJson() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("id").String(id).Key("runId").String(run_id).Key("name").String(name);
  w.Key("timestamp").String(timestamp).Key("batchId").Int(batch_id);
  w.Key("numInputRows").Int(num_input_rows);
  w.Key("inputRowsPerSecond").Double(input_rows_per_second);
  w.Key("processedRowsPerSecond").Double(processed_rows_per_second);
  w.Key("durationMs").BeginObject();
  w.Key("latestOffset").Int(latest_offset_ms).Key("addBatch").Int(add_batch_ms);
  if (wal_commit_ms) w.Key("walCommit").Int(*wal_commit_ms);
  if (commit_offsets_ms) w.Key("commitOffsets").Int(*commit_offsets_ms);
  w.Key("triggerExecution").Int(trigger_execution_ms);
  w.EndObject();
  w.Key("sources").BeginArray();
  for (const auto& s : sources) {
    w.BeginObject().Key("description").String(s.description);
    auto offset = [&](const char* key, const std::optional<std::string>& o) {
      w.Key(key);
      if (o) w.Raw(*o);
      else w.Null();
    };
    offset("startOffset", s.start_offset);
    offset("endOffset", s.end_offset);
    offset("latestOffset", s.latest_offset);
    w.Key("numInputRows").Int(s.num_input_rows);
    w.Key("inputRowsPerSecond").Double(s.input_rows_per_second);
    w.Key("processedRowsPerSecond").Double(s.processed_rows_per_second);
    w.Key("numBadRecords").Int(s.num_bad_records);
    w.Key("numDroppedRecords").Int(s.num_dropped_records);
    w.Key("numDeadLetterRecords").Int(s.num_dead_letter_records);
    if (!s.metrics.empty()) {
      w.Key("metrics").BeginObject();
      for (const auto& [k, v] : s.metrics) w.Key(k).Int(v);
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("stateOperators").BeginArray();
  for (const auto& o : state_operators) {
    w.BeginObject().Key("operatorName").String(o.operator_name);
    w.Key("numRowsTotal").Int(o.num_rows_total).Key("numRowsUpdated").Int(o.num_rows_updated);
    w.Key("numRowsRemoved").Int(o.num_rows_removed).Key("memoryUsedBytes").Int(o.memory_used_bytes);
    w.Key("commitTimeMs").Int(o.commit_time_ms).Key("numRowsDroppedByWatermark").Int(o.num_rows_dropped_by_watermark);
    w.Key("numShufflePartitions").Int(o.num_shuffle_partitions);
    w.Key("customMetrics").BeginObject().Key("checkpointWaitMs").Int(o.checkpoint_wait_ms).EndObject();
    w.EndObject();
  }
  w.EndArray();
  if (has_event_time) {
    w.Key("eventTime").BeginObject();
    if (event_time_avg) w.Key("avg").String(*event_time_avg);
    if (event_time_max) w.Key("max").String(*event_time_max);
    if (event_time_min) w.Key("min").String(*event_time_min);
    w.Key("watermark").String(watermark).EndObject();
  }
  // Spark has one sink per query; a pipeline may have several. "sink" is the
  // first, as Spark tools expect; "sinks" lists all.
  auto sink = [&](const SinkProgress& s) {
    w.BeginObject().Key("name").String(s.name).Key("description").String(s.description);
    w.Key("numOutputRows").Int(s.num_output_rows).EndObject();
  };
  w.Key("sink");
  if (sinks.empty()) w.Null();
  else sink(sinks[0]);
  w.Key("sinks").BeginArray();
  for (const auto& s : sinks) sink(s);
  w.EndArray();
  w.EndObject();
  return w.str();
}

ProgressReporter::~ProgressReporter() {
  if (file_) std::fclose(file_);
}

Status ProgressReporter::Open(const std::string& progress_file) {
  path_ = progress_file;
  if (path_.empty()) return Status::OK();
  std::error_code ec;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) return Status::IOError("cannot open progress file " + path_ + ": " + std::strerror(errno));
  return Status::OK();
}

Status ProgressReporter::Report(const ProgressEvent& event) {
  std::string json = event.ToJson();
  LogInfo("progress " + json);
  if (!file_) return Status::OK();
  json += "\n";
  if (std::fwrite(json.data(), 1, json.size(), file_) != json.size() || std::fflush(file_) != 0)
    return Status::IOError("cannot write progress file " + path_ + ": " + std::strerror(errno));
  return Status::OK();
}

}  // namespace sluice
