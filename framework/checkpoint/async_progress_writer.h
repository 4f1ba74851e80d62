// Spark's asynchronous progress tracking: the offset and commit logs are
// written off the critical path, by a background thread, at most once per
// interval. Batches run without waiting for the logs; after a crash the query
// resumes from the newest batch whose entries reached disk and processes
// again what came after it, so output is at-least-once. The engine allows it
// only where Spark does (Kafka sinks, no stateful steps).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include "checkpoint/checkpoint.h"

namespace sluice {

class AsyncProgressWriter {
 public:
  AsyncProgressWriter(Checkpoint& checkpoint, int64_t interval_ms, int64_t min_batches_to_retain);
  ~AsyncProgressWriter();

  // Hands over a finished batch's entries; only the newest pending one is
  // kept. Returns the error of an earlier background write, if any.
  Status Submit(int64_t batch_id, OffsetSeq offsets, CommitMetadata commit);
  // Writes what is pending now and waits for it.
  Status Flush();
  int64_t entries_written() const;

 private:
  struct Entry {
    int64_t batch_id;
    OffsetSeq offsets;
    CommitMetadata commit;
  };
  void Loop();
  Status Write(const Entry& e);

  Checkpoint& checkpoint_;
  const int64_t interval_ms_;
  const int64_t min_batches_to_retain_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Entry> pending_;
  bool flush_requested_ = false;
  bool writing_ = false;
  bool stopping_ = false;
  Status error_;
  int64_t written_ = 0;
  std::thread thread_;
};

}  // namespace sluice
