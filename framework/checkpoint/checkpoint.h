// A query's checkpoint directory, Spark's layout:
//   metadata             query id and the pipeline's shape (sources, stateful operators, sinks)
//   offsets/<batchId>    written before the batch runs (OffsetLog)
//   commits/<batchId>    written after every sink committed it (CommitLog)
//   sources/<n>/         owned by source n (e.g. the file source's list of files taken)
//   sinks/<name>/        owned by a sink
//   state/               state stores of stateful operators
//   dead-letter/, progress.jsonl
// Opening a checkpoint written by a different pipeline checks the shape and
// refuses changes that would make recovery wrong, naming the difference.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "checkpoint/batch_logs.h"
#include "sluice/status.h"

namespace sluice {

struct QueryShape {
  struct Named {
    std::string name;
    std::string type;
    std::string path;  // sinks: output path, if any (for `sluice checkpoint inspect`)
    bool operator==(const Named& o) const { return name == o.name && type == o.type; }
  };
  std::string pipeline_name;
  std::vector<Named> sources;             // in pipeline order: index n owns sources/<n>
  std::vector<Named> stateful_operators;  // name and kind of each stateful step
  std::vector<Named> sinks;
  std::string state_provider;  // "" when the pipeline has no stateful step
};

struct CheckpointMetadata {
  std::string query_id;
  QueryShape shape;
};

class Checkpoint {
 public:
  // Creates the directory and its metadata on first use; otherwise reads the
  // metadata and checks `shape` against it. Errors: Corruption (garbled
  // metadata), InvalidArgument (incompatible pipeline, with the difference).
  // A new checkpoint records `new_query_id` (a fresh UUID when empty).
  static Result<std::unique_ptr<Checkpoint>> Open(const std::string& dir, const QueryShape& shape,
                                                  const std::string& new_query_id = "");
  static Result<CheckpointMetadata> ReadMetadata(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::string& query_id() const { return metadata_.query_id; }
  const CheckpointMetadata& metadata() const { return metadata_; }
  OffsetLog& offsets() { return offsets_; }
  CommitLog& commits() { return commits_; }

 private:
  Checkpoint(std::string dir, CheckpointMetadata metadata)
      : dir_(std::move(dir)), metadata_(std::move(metadata)), offsets_(dir_), commits_(dir_) {}
  std::string dir_;
  CheckpointMetadata metadata_;
  OffsetLog offsets_;
  CommitLog commits_;
};

// The first difference that makes `now` unable to recover from a checkpoint
// written by `then`, or "" if compatible. Like Spark: sources may not be
// added, removed, renamed or change type; stateful operators may not change;
// stateless steps and sinks may.
std::string IncompatibleChange(const QueryShape& then, const QueryShape& now);

}  // namespace sluice
