// The local working copy of one lmdb state store: an LMDB environment in
// <local_dir>/<hash of StateStoreId::Dir()>, shared by every provider instance
// of the process that opens the same store (LMDB forbids opening one
// environment twice in a process), and what the process knows about the
// store's checkpoint directory.
//
// The environment holds two named databases: "data" (the state; every key is
// stored behind a 0x00 byte so that the empty key is storable) and "meta" (the
// committed version, the commit token of that version's checkpoint file, and
// the checkpoint directory the environment belongs to). It is opened with
// MDB_NOLOCK: the provider itself allows one store (one write transaction) at
// a time per environment, which also lets a batch begin and end on different
// threads; an flock on "owner.lock" keeps a second process out.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "sluice/status.h"

namespace sluice::state_lmdb {

// What a local environment (or a checkpoint file) holds: a version and the
// token of the commit that made it.
struct CommittedVersion {
  int64_t version = 0;
  uint64_t token = 0;
  bool operator==(const CommittedVersion&) const = default;
};

Status LmdbError(const std::string& what, int rc);

// Writes `committed` into the meta database inside `txn`; returns the LMDB
// code (MDB_MAP_FULL asks the caller to grow the map and redo the transaction).
int RecordCommittedVersion(MDB_txn* txn, MDB_dbi meta, const CommittedVersion& committed);

class LocalEnvironment {
 public:
  LocalEnvironment(std::string path, std::string store_dir, size_t initial_map_size);
  ~LocalEnvironment();
  LocalEnvironment(const LocalEnvironment&) = delete;
  LocalEnvironment& operator=(const LocalEnvironment&) = delete;

  const std::string& path() const { return path_; }
  MDB_env* env() const { return env_; }
  MDB_dbi data_dbi() const { return data_dbi_; }
  MDB_dbi meta_dbi() const { return meta_dbi_; }
  // The largest key the data database takes (LMDB's limit less the 0x00 prefix).
  size_t max_key_size() const { return max_key_size_; }

  // Opens the environment, creating it if needed. An environment that belongs
  // to another checkpoint directory (a hash collision, a reused local_dir) is
  // wiped, unless `adopt` (after restoring a snapshot copied from a moved
  // checkpoint), which rewrites the directory it belongs to instead.
  Status EnsureOpen(bool adopt = false);
  // Closes the LMDB environment (keeping the files and the owner lock).
  void CloseEnvironment();

  // Doubles the map size. No transaction may be active.
  Status GrowMap();

  Result<CommittedVersion> ReadCommitted();
  // Empties the data database and records version 0.
  Status ResetToEmpty();
  // Replaces the environment's data file with the snapshot at `snapshot_path`
  // (checked against its checksum while copying). Returns what it holds.
  Result<CommittedVersion> ReplaceWithSnapshot(const std::string& snapshot_path, int64_t version);

  // Bytes of the map in use as of the last commit (mapped file pages, not heap).
  int64_t MappedBytesInUse() const;

  // Set while a store has a write transaction open; guarded by mu.
  std::mutex mu;
  bool in_use = false;

  // What is known of the checkpoint directory, maintained by commits (the
  // process is the only writer of its stores' directories).
  bool checkpoint_known = false;
  bool checkpoint_dir_exists = false;
  int64_t newest_version_on_disk = 0;

  bool keep_on_release = false;

 private:
  Status OpenOnce(bool adopt, bool* foreign);
  Status LockOwner();

  std::string path_;
  std::string store_dir_;
  size_t map_size_;
  MDB_env* env_ = nullptr;
  MDB_dbi data_dbi_ = 0;
  MDB_dbi meta_dbi_ = 0;
  size_t max_key_size_ = 0;
  int owner_lock_fd_ = -1;
};

// One use of a shared LocalEnvironment; the last release in the process closes
// it and, unless it is to be kept, removes its directory.
class EnvironmentLease {
 public:
  EnvironmentLease() = default;
  // Acquires the environment of `store_dir` in `local_root`.
  EnvironmentLease(const std::string& local_root, const std::string& store_dir, size_t initial_map_size,
                   bool keep_local);
  ~EnvironmentLease() { Release(); }
  EnvironmentLease(EnvironmentLease&& other) noexcept : env_(std::move(other.env_)) {}
  EnvironmentLease& operator=(EnvironmentLease&& other) noexcept;
  EnvironmentLease(const EnvironmentLease&) = delete;
  EnvironmentLease& operator=(const EnvironmentLease&) = delete;

  LocalEnvironment* get() const { return env_.get(); }
  LocalEnvironment* operator->() const { return env_.get(); }
  void Release();

 private:
  std::shared_ptr<LocalEnvironment> env_;
};

// <local_root>/<16 hex digits of a hash of the absolute store directory>.
std::string LocalPathFor(const std::string& local_root, const std::string& store_dir);

}  // namespace sluice::state_lmdb
