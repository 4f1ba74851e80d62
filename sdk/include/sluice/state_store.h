// StateStore: versioned key-value state for stateful operators.
//
// Declared here so that state backends can be written as plugins; the engine's
// stateful operators (aggregations, windows, deduplication) arrive with it.
// The model is Spark's: one store per (operator, partition); a batch loads the
// version committed by the previous batch, reads and writes keys, and commits
// a new version (or aborts, leaving the old version intact). A version once
// committed can be loaded again after a restart.
//
// Threads: one store instance is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/options.h"
#include "sluice/status.h"

namespace sluice {

struct StateStoreId {
  std::string checkpoint_dir;  // <checkpoint>/state
  std::string operator_id;     // stable id of the stateful operator
  int partition = 0;
};

struct StateStoreMetrics {
  int64_t num_keys = 0;
  int64_t memory_used_bytes = 0;
  int64_t commit_time_ms = 0;
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual int64_t version() const = 0;
  // nullopt when the key is absent.
  virtual Result<std::optional<std::string>> Get(std::string_view key) = 0;
  virtual Status Put(std::string_view key, std::string_view value) = 0;
  virtual Status Remove(std::string_view key) = 0;
  // Calls `fn` for each key starting with `prefix`, in key order; stop by returning false.
  virtual Status PrefixScan(std::string_view prefix,
                            const std::function<bool(std::string_view key, std::string_view value)>& fn) = 0;
  // Makes this batch's changes durable as version()+1 and returns that version.
  virtual Result<int64_t> Commit() = 0;
  // Drops this batch's changes.
  virtual void Abort() = 0;
  virtual StateStoreMetrics metrics() const = 0;
};

class StateStoreProvider {
 public:
  virtual ~StateStoreProvider() = default;
  // Opens the store for `id` at `version` (0 = empty).
  virtual Result<std::unique_ptr<StateStore>> Open(const StateStoreId& id, int64_t version) = 0;
};

struct StateStoreContext {
  std::string name;
  Options options;
};

}  // namespace sluice
