// Sink: where a stream's results go.
//
// The executor calls AddBatch once per micro-batch with every row the batch
// produced for this sink, together with the batch id. A batch id can be
// delivered again after a crash (the batch is replayed from the offset log);
// a sink that remembers which ids it committed can skip a replay and so give
// exactly-once output. Each sink states its guarantee.
//
// Threads: all methods are called from the executor's thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sluice/options.h"
#include "sluice/record_batch.h"
#include "sluice/status.h"

namespace sluice {

enum class DeliveryGuarantee { kAtMostOnce, kAtLeastOnce, kExactlyOnce };

inline const char* DeliveryGuaranteeName(DeliveryGuarantee g) {
  switch (g) {
    case DeliveryGuarantee::kAtMostOnce: return "at-most-once";
    case DeliveryGuarantee::kAtLeastOnce: return "at-least-once";
    case DeliveryGuarantee::kExactlyOnce: return "exactly-once";
  }
  return "?";
}

// Spark's output modes: what a batch's rows mean for the sink.
enum class OutputMode { kAppend, kUpdate, kComplete };

inline const char* OutputModeName(OutputMode m) {
  switch (m) {
    case OutputMode::kAppend: return "append";
    case OutputMode::kUpdate: return "update";
    case OutputMode::kComplete: return "complete";
  }
  return "?";
}

// Given to the sink when it is created.
struct SinkContext {
  std::string name;            // "[sinks.<name>]"
  std::string query_id;        // stable across restarts of one checkpoint (a UUID); fresh per run without one
  std::string checkpoint_dir;  // a directory the sink owns; empty without a checkpoint
  Options options;
  Schema input_schema;         // schema of every batch the sink will receive
  OutputMode output_mode = OutputMode::kAppend;
};

// One micro-batch's output for one sink.
struct BatchData {
  int64_t batch_id = 0;
  SchemaPtr schema;
  std::vector<RecordBatchPtr> batches;  // in order; may be empty
  int64_t num_rows() const {
    int64_t n = 0;
    for (const auto& b : batches) n += b->num_rows();
    return n;
  }
};

class Sink {
 public:
  virtual ~Sink() = default;

  virtual DeliveryGuarantee guarantee() const = 0;

  // A short description for progress events, e.g. "FileSink[/data/out]".
  virtual std::string Description() const = 0;

  // Writes one batch. Returning OK means the batch is durably committed as far
  // as this sink can promise; the executor then records it in the commit log.
  virtual Status AddBatch(const BatchData& data) = 0;

  // Release resources. Idempotent.
  virtual Status Stop() { return Status::OK(); }
};

}  // namespace sluice
