// StateStore: versioned key-value state for stateful operators.
//
// The model is Spark's: one store per (operator, partition). Batch N opens the
// version committed by batch N-1 (version N; version 0 is empty), reads and
// writes keys, and commits version N+1, or aborts and leaves version N
// intact. A committed version can be opened again after a restart, so a
// replayed batch starts from exactly the state its first attempt saw; its
// commit replaces whatever an earlier, uncommitted attempt left.
//
// Keys and values are opaque bytes. Keys sort bytewise (memcmp order), so an
// operator can encode a key to make range scans meaningful (the stateful
// aggregation puts a big-endian window end first, so expired windows are one
// range).
//
// Threads: a StateStore instance is used by one thread at a time; different
// instances (other partitions) are used concurrently. A provider's Open and
// Purge may be called concurrently for different ids.
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
  std::string root_dir;     // <checkpoint>/state
  std::string operator_id;  // stable id of the stateful operator, e.g. "0"
  int partition = 0;
  // <root_dir>/<operator_id>/<partition>: where the provider keeps this store.
  std::string Dir() const { return root_dir + "/" + operator_id + "/" + std::to_string(partition); }
};

struct StateStoreMetrics {
  int64_t num_keys = 0;
  int64_t memory_used_bytes = 0;   // heap (or cache) held for this store
  int64_t commit_time_ms = 0;      // time the last Commit took
  int64_t checkpoint_wait_ms = 0;  // time the last Commit waited for an earlier checkpoint
};

// Called for each key in a scan; return false to stop.
using StateScanFn = std::function<bool(std::string_view key, std::string_view value)>;

class StateStore {
 public:
  virtual ~StateStore() = default;

  // The version this store was opened at (its state is that version plus the
  // uncommitted changes made since).
  virtual int64_t version() const = 0;

  // Copies the value of `key` into *value and returns true, or returns false
  // when the key is absent. `value` is reused by callers to avoid allocation.
  virtual Result<bool> Get(std::string_view key, std::string* value) = 0;
  virtual Status Put(std::string_view key, std::string_view value) = 0;
  // Removing an absent key is not an error.
  virtual Status Remove(std::string_view key) = 0;

  // Every key starting with `prefix` ("" = all keys), in key order, with this
  // batch's changes applied. Do not Put or Remove from inside `fn`.
  virtual Status PrefixScan(std::string_view prefix, const StateScanFn& fn) = 0;
  // Every key in [from, to) in key order.
  virtual Status RangeScan(std::string_view from, std::string_view to, const StateScanFn& fn) = 0;

  // Makes this batch's changes durable as version()+1 and returns it. After
  // Commit or Abort the store must not be used again.
  virtual Result<int64_t> Commit() = 0;
  // Drops this batch's changes.
  virtual void Abort() = 0;

  virtual StateStoreMetrics metrics() const = 0;
};

class StateStoreProvider {
 public:
  virtual ~StateStoreProvider() = default;

  // Opens the store for `id` at `version` (0 = empty). Errors: NotFound when
  // the version was never committed (or was purged), Corruption when its files
  // are damaged (the message names the file).
  virtual Result<std::unique_ptr<StateStore>> Open(const StateStoreId& id, int64_t version) = 0;

  // Deletes what is needed only by versions older than `oldest_to_keep`.
  virtual Status Purge(const StateStoreId& id, int64_t oldest_to_keep) = 0;

  // Asynchronous checkpointing: when true, StateStore::Commit returns once the
  // version is committed locally and copies it into the checkpoint directory
  // in the background (at most one copy in flight per store: the next Commit
  // waits for the previous copy, and reports the wait in checkpoint_wait_ms).
  // The engine then writes a batch's commit-log entry only after
  // AwaitDurable says every partition's version is in the checkpoint.
  virtual bool asynchronous() const { return false; }
  // Blocks until `version` of `id` is durable in the checkpoint directory.
  // Returns the error of a failed background copy (the query then fails, and
  // the batch is redone after a restart). Synchronous providers return OK.
  virtual Status AwaitDurable(const StateStoreId& id, int64_t version) {
    (void)id;
    (void)version;
    return Status::OK();
  }

  // Waits for background work (asynchronous checkpoints) and releases it.
  virtual Status Close() { return Status::OK(); }
};

struct StateStoreContext {
  std::string name;  // the provider's name in the pipeline
  Options options;
};

}  // namespace sluice
