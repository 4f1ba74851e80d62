// The offset log and the commit log: Spark's write-ahead contract.
//
// offsets/<batchId> is written, durably, before batch <batchId> runs: the
// range every source will read, the batch's watermark and timestamp. Replaying
// a batch after a crash reads exactly this range again. commits/<batchId> is
// written after every sink committed the batch. A batch with an offset entry
// and no commit entry is the one to redo on restart, with the same id.
//
// File format (Spark's OffsetSeq, one item per line, each line ending in \n):
//   v1
//   {"batchWatermarkMs":0,"batchTimestampMs":1714564800000,"conf":{...}}
//   <offset of source 0 as JSON, or "-" if it has none yet>
//   <offset of source 1> ...
// and for commits:
//   v1
//   {"nextBatchWatermarkMs":0}
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice {

struct OffsetSeqMetadata {
  int64_t batch_watermark_ms = 0;
  int64_t batch_timestamp_ms = 0;
  std::map<std::string, std::string> conf;
};

struct OffsetSeq {
  OffsetSeqMetadata metadata;
  std::vector<std::optional<std::string>> offsets;  // one per source, in pipeline order
};

struct CommitMetadata {
  int64_t next_batch_watermark_ms = 0;
};

// A directory of files named by batch id.
class BatchLogDirectory {
 public:
  BatchLogDirectory(std::string dir, std::string kind) : dir_(std::move(dir)), kind_(std::move(kind)) {}
  const std::string& dir() const { return dir_; }
  // Batch ids present, ascending. Temporary files and other names are ignored.
  Result<std::vector<int64_t>> List() const;
  Result<std::optional<int64_t>> Latest() const;
  bool Exists(int64_t batch_id) const;
  // Removes every entry with id < `batch_id`.
  Status PurgeBefore(int64_t batch_id);
  std::string PathOf(int64_t batch_id) const { return dir_ + "/" + std::to_string(batch_id); }

 protected:
  // "offsets/17": how errors name a file.
  std::string NameOf(int64_t batch_id) const { return kind_ + "/" + std::to_string(batch_id); }
  Status Corrupt(int64_t batch_id, const std::string& what) const;

  std::string dir_;
  std::string kind_;
};

class OffsetLog : public BatchLogDirectory {
 public:
  explicit OffsetLog(const std::string& checkpoint) : BatchLogDirectory(checkpoint + "/offsets", "offsets") {}
  Status Add(int64_t batch_id, const OffsetSeq& seq);
  // Checks the header, the JSON of every line and that there are
  // `expected_sources` offsets; Corruption naming the file and batch otherwise.
  Result<OffsetSeq> Get(int64_t batch_id, size_t expected_sources) const;
  static std::string Serialize(const OffsetSeq& seq);
};

class CommitLog : public BatchLogDirectory {
 public:
  explicit CommitLog(const std::string& checkpoint) : BatchLogDirectory(checkpoint + "/commits", "commits") {}
  Status Add(int64_t batch_id, const CommitMetadata& meta);
  Result<CommitMetadata> Get(int64_t batch_id) const;
};

}  // namespace sluice
