// A pipeline as declared in TOML, before anything is built: named sources, a
// DAG of named steps, sinks, and the query settings. Every element remembers
// where it was written so errors can name file:line:column.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/options.h"
#include "sluice/sink.h"

namespace sluice {

struct SourcePos {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

// "file:line:column: message", the shape compilers use, so editors can jump to it.
struct Diagnostic {
  SourcePos pos;
  std::string message;
  std::string ToString() const;
};

// A string value from the file that holds an expression, with enough of its
// position to point at a character inside it.
struct ExprText {
  std::string text;
  SourcePos pos;         // where the TOML string starts (its opening quote)
  int quote_length = 1;  // 1 for "..." or '...', 3 for triple-quoted
  bool locatable = true; // false when escapes or line breaks make offsets unreliable
  // Position of character `offset` of `text`.
  SourcePos At(size_t offset) const;
};

// with_watermark = { column = "ts", delay = "10 minutes" }
struct WatermarkSpec {
  std::string column;
  int64_t delay_us = 0;
  SourcePos pos;
};

struct OptionEntry {
  OptionValue value;
  SourcePos pos;
};

enum class OnError { kFail, kDrop, kDeadLetter };
inline const char* OnErrorName(OnError e) {
  switch (e) {
    case OnError::kFail: return "fail";
    case OnError::kDrop: return "drop";
    case OnError::kDeadLetter: return "dead_letter";
  }
  return "?";
}

struct SourceSpec {
  std::string name;
  std::string type;  // plugin name
  SourcePos pos;     // the [sources.<name>] header
  SourcePos type_pos;
  std::map<std::string, OptionEntry> options;  // plugin options only
  OnError on_error = OnError::kFail;
  std::string dead_letter_path;  // resolved; empty = default under the checkpoint
  SourcePos dead_letter_pos;
  std::optional<WatermarkSpec> watermark;
};

enum class StepKind { kSelect, kWhere, kWithColumn, kAggregate, kWatermark, kDeduplicate };


struct StepSpec {
  std::string name;
  std::string input;
  SourcePos pos;
  SourcePos input_pos;
  StepKind kind = StepKind::kSelect;
  std::vector<ExprText> items;   // select items, the where predicate, or group_by keys
  std::vector<ExprText> aggregates;  // for kAggregate
  std::string column_name;       // for kWithColumn
  std::string scope = "stream";  // for kAggregate: "stream" (stateful, across batches) or "batch"
  SourcePos scope_pos;
  WatermarkSpec watermark;       // for kWatermark
  std::vector<std::string> dedup_columns;  // for kDeduplicate; empty = all columns
};

struct SinkSpec {
  std::string name;
  std::string type;
  std::string input;
  // Spark's asynchronous progress tracking (engine keys in a sink table).
  bool async_progress = false;
  int64_t async_progress_interval_ms = 1000;
  SourcePos async_progress_pos;
  SourcePos pos;
  SourcePos type_pos;
  SourcePos input_pos;
  std::map<std::string, OptionEntry> options;
};

enum class TriggerKind { kDefault, kProcessingTime, kOnce, kAvailableNow };

struct TriggerSpec {
  TriggerKind kind = TriggerKind::kDefault;
  int64_t interval_micros = 0;  // for kProcessingTime
};

struct PipelineSpec {
  bool parsed = false;    // the file was read and is valid TOML (its contents may still have errors)
  std::string file;       // as given
  std::string directory;  // relative paths resolve against this
  std::string name;
  TriggerSpec trigger;
  std::string checkpoint;  // resolved; empty = none
  OutputMode output_mode = OutputMode::kAppend;
  SourcePos output_mode_pos;
  int threads = 0;            // 0 = one per core
  std::string progress_file;  // resolved; empty = <checkpoint>/progress.jsonl or none
  int64_t idle_poll_micros = 100000;
  int64_t min_batches_to_retain = 100;  // offset/commit entries kept, as Spark's minBatchesToRetain
  int shuffle_partitions = 4;           // state partitions of each stateful operator
  bool watermark_policy_max = false;    // several watermarks: min (default, Spark's) or max
  std::string state_provider = "memory";  // [state] provider
  SourcePos state_pos;
  std::map<std::string, OptionEntry> state_options;
  std::vector<SourceSpec> sources;
  std::vector<StepSpec> steps;
  std::vector<SinkSpec> sinks;
};

// Reads and checks the shape of a pipeline file: TOML syntax, known tables
// and keys, value types, names. Plugin options and expressions are checked
// later, when the query is built. Every problem found is appended to
// `diagnostics`; the spec is usable only when none were added.
PipelineSpec LoadPipelineFile(const std::string& path, std::vector<Diagnostic>* diagnostics);
// The same from a string (`path` is used in messages and to resolve relative paths).
PipelineSpec LoadPipelineString(const std::string& toml_text, const std::string& path,
                                std::vector<Diagnostic>* diagnostics);

// Resolves `path` against the pipeline's directory unless it is absolute.
std::string ResolvePath(const std::string& directory, const std::string& path);

}  // namespace sluice
