// Keeps malformed records of a source with on_error = "dead_letter": one JSON
// line per record with the source, batch, position, error and the raw text,
// appended to a file and fsynced before the batch's output is committed, so a
// bad record is never lost even when the process dies right after.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

class DeadLetterWriter {
 public:
  explicit DeadLetterWriter(std::string path) : path_(std::move(path)) {}
  ~DeadLetterWriter();
  const std::string& path() const { return path_; }
  // Thread-safe: workers reading partitions call it concurrently.
  Status Write(std::string_view source, int64_t batch_id, std::string_view position, std::string_view error,
               std::string_view raw);
  // Flushes and fsyncs what was written.
  Status Sync();

 private:
  std::string path_;
  std::mutex mu_;
  std::FILE* file_ = nullptr;
  bool dirty_ = false;
};

}  // namespace sluice
