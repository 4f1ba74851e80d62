// The "lmdb" state store provider: each store's state lives in a local,
// memory-mapped LMDB environment (local_environment.h), and every commit also
// writes a checkpoint file into StateStoreId::Dir() (checkpoint_files.h), from
// which any committed version is rebuilt on another machine or after the local
// copy is lost.
//
// A batch is one LMDB write transaction: Get and the scans read inside it, so
// they see the batch's own changes, in key order (LMDB compares keys with
// memcmp). Commit is mdb_txn_commit followed by the checkpoint file; Abort is
// mdb_txn_abort. The batch's changes are also kept in memory (last write per
// key), for two reasons: when the map is full the transaction is aborted, the
// map doubled and the changes replayed, so a batch never fails for want of map
// space; and they are the content of the version's delta file.
//
// Checkpoints (the incremental scheme): version V is written as
//   - <V>.mdb, a compacted copy of the whole environment, when V is a multiple
//     of snapshot_interval (default 10), or else
//   - <V>.delta, the batch's puts and removes.
// Loading V therefore needs the newest snapshot S <= V and the deltas S+1..V:
// the snapshot is copied in as the environment's data file, the deltas are
// applied in one transaction. This is sound because a delta holds the final
// value of every key the batch touched, so S plus the deltas in order is
// exactly V. Purge(K) keeps the newest snapshot <= K and everything after it.
//
// Guarantees:
//   - Commit of V returns only once V's file is durable (temporary name, fsync,
//     rename, directory fsync). Before anything is written, the files of V and
//     later versions left by an earlier attempt are removed, so a replayed
//     commit replaces them.
//   - The local environment records the version it holds and the commit token
//     of that version's checkpoint file. Open(V) uses it without a rebuild only
//     when V's checkpoint file carries the same token (so it is the same commit,
//     and the version was neither purged nor replaced by a replay), and, the
//     first time a provider instance uses it (after a restart), only once the
//     whole checkpoint file has passed its checksum. Otherwise V is rebuilt from
//     the checkpoint. A local commit whose checkpoint file was never written
//     (a crash in between) is thus never served.
//   - A damaged checkpoint file is Corruption naming it; a missing one is
//     NotFound naming it. Version 0 is empty and needs no file.
// Crash points: state-lmdb:before-commit (nothing of the commit done),
// state-lmdb:after-local-commit (local transaction committed, checkpoint file
// not yet written).
// Limits: keys up to 510 bytes (LMDB's 511 less the prefix byte that makes the
// empty key storable), values up to 4 GiB; a single batch may dirty at most
// LMDB's ~512 MiB of pages per transaction (MDB_TXN_FULL otherwise).
// Memory: the mapped environment is paged by the kernel, not held on the heap;
// metrics report the mapped pages in use plus the batch's change log.

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "checkpoint_files.h"
#include "local_environment.h"
#include "sluice/sluice.h"

namespace sluice::state_lmdb {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPluginName = "lmdb";
// As the memory provider and Spark (minDeltasForSnapshot): a compacted copy of
// the whole environment every version would write the state size per batch.
constexpr int64_t kDefaultSnapshotInterval = 10;
constexpr int64_t kDefaultInitialMapMb = 64;
// Doublings of the map before a batch gives up (64 MiB * 2^30 is far past any disk).
constexpr int kMaxMapDoublings = 30;
// Approximate heap a change-log entry costs beyond its key and value bytes.
constexpr int64_t kChangeOverheadBytes = 96;

// No exception may reach the host (the provider is not wrapped by the SDK).
template <typename Fn>
auto Guarded(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("state store '") + kPluginName + "' failed: " + e.what());
  } catch (...) {
    return Status::Internal(std::string("state store '") + kPluginName + "' failed with an unknown exception");
  }
}

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

// Stored keys carry a leading 0x00 so that the empty key is storable; one
// common prefix keeps the bytewise order of the keys.
void EncodeKey(std::string_view key, std::string* out) {
  out->assign(1, '\0');
  out->append(key);
}
std::string_view DecodeKey(const MDB_val& stored) { return View(stored).substr(1); }

uint64_t NewCommitToken() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  uint64_t token;
  do token = rng();
  while (token == 0);  // 0 stands for version 0, which no file holds
  return token;
}

std::string FileIn(const std::string& dir, const std::string& name) { return dir + "/" + name; }

std::string VersionName(const std::string& dir, int64_t version) {
  return "version " + std::to_string(version) + " of state store " + dir;
}

struct ProviderConfig {
  std::string local_root;
  size_t initial_map_size = 0;
  int64_t snapshot_interval = kDefaultSnapshotInterval;
  bool keep_local = false;
};

// The local environments a provider instance has checked against the
// checkpoint: store directory -> the version and token it found there. Only
// these are used without reading the whole checkpoint file again.
class TrustedVersions {
 public:
  bool Contains(const std::string& dir, const CommittedVersion& committed) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = trusted_.find(dir);
    return it != trusted_.end() && it->second == committed;
  }
  void Set(const std::string& dir, const CommittedVersion& committed) {
    std::lock_guard<std::mutex> lock(mu_);
    trusted_.insert_or_assign(dir, committed);
  }
  void Forget(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    trusted_.erase(dir);
  }
  void ForgetOlderThan(const std::string& dir, int64_t version) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = trusted_.find(dir);
    if (it != trusted_.end() && it->second.version < version) trusted_.erase(it);
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, CommittedVersion> trusted_;
};

// Marks a local environment as held by one store; released on destruction
// unless handed over.
class InUseReservation {
 public:
  explicit InUseReservation(LocalEnvironment* env) : env_(env) {}
  ~InUseReservation() {
    if (env_) Release(env_);
  }
  InUseReservation(const InUseReservation&) = delete;
  InUseReservation& operator=(const InUseReservation&) = delete;

  static Status Acquire(LocalEnvironment* env, const std::string& dir) {
    std::lock_guard<std::mutex> lock(env->mu);
    if (env->in_use)
      return Status::Internal("state store " + dir +
                              " is already open in this process: commit or abort it before opening it again");
    env->in_use = true;
    return Status::OK();
  }
  static void Release(LocalEnvironment* env) {
    std::lock_guard<std::mutex> lock(env->mu);
    env->in_use = false;
  }
  void HandOver() { env_ = nullptr; }

 private:
  LocalEnvironment* env_;
};

class LmdbStateStore final : public StateStore {
 public:
  LmdbStateStore(std::shared_ptr<TrustedVersions> trusted, const ProviderConfig& config, std::string dir,
                 EnvironmentLease lease, int64_t version, MDB_txn* txn)
      : trusted_(std::move(trusted)), snapshot_interval_(config.snapshot_interval), dir_(std::move(dir)),
        lease_(std::move(lease)), version_(version), txn_(txn) {}

  ~LmdbStateStore() override { Abort(); }

  int64_t version() const override { return version_; }

  Result<bool> Get(std::string_view key, std::string* value) override {
    return Guarded([&]() -> Result<bool> {
      SLUICE_RETURN_IF_ERROR(CheckUsable());
      SLUICE_RETURN_IF_ERROR(CheckKey(key));
      EncodeKey(key, &key_buffer_);
      MDB_val k = Val(key_buffer_), v;
      int rc = mdb_get(txn_, lease_->data_dbi(), &k, &v);
      if (rc == MDB_NOTFOUND) return false;
      if (rc != MDB_SUCCESS) return Fail(LmdbError("cannot read state store " + dir_, rc));
      value->assign(static_cast<const char*>(v.mv_data), v.mv_size);  // reuses the caller's capacity
      return true;
    });
  }

  Status Put(std::string_view key, std::string_view value) override {
    return Guarded([&]() -> Status {
      SLUICE_RETURN_IF_ERROR(CheckUsable());
      SLUICE_RETURN_IF_ERROR(CheckKey(key));
      if (value.size() > std::numeric_limits<uint32_t>::max())
        return Status::InvalidArgument("a state value of " + std::to_string(value.size()) +
                                       " bytes is larger than the 4 GiB the lmdb state store holds");
      RecordChange(key, std::string(value));
      EncodeKey(key, &key_buffer_);
      MDB_val k = Val(key_buffer_), v = Val(value);
      return AfterWrite(mdb_put(txn_, lease_->data_dbi(), &k, &v, 0));
    });
  }

  Status Remove(std::string_view key) override {
    return Guarded([&]() -> Status {
      SLUICE_RETURN_IF_ERROR(CheckUsable());
      SLUICE_RETURN_IF_ERROR(CheckKey(key));
      RecordChange(key, std::nullopt);
      EncodeKey(key, &key_buffer_);
      MDB_val k = Val(key_buffer_);
      int rc = mdb_del(txn_, lease_->data_dbi(), &k, nullptr);
      return AfterWrite(rc == MDB_NOTFOUND ? MDB_SUCCESS : rc);
    });
  }

  Status PrefixScan(std::string_view prefix, const StateScanFn& fn) override {
    return Guarded([&]() -> Status {
      SLUICE_RETURN_IF_ERROR(CheckUsable());
      if (prefix.size() > lease_->max_key_size()) return Status::OK();  // no stored key is that long
      return Scan(prefix, [&](std::string_view key, std::string_view value, bool* stop) {
        if (!key.starts_with(prefix)) *stop = true;
        else *stop = !fn(key, value);
      });
    });
  }

  Status RangeScan(std::string_view from, std::string_view to, const StateScanFn& fn) override {
    return Guarded([&]() -> Status {
      SLUICE_RETURN_IF_ERROR(CheckUsable());
      if (!(from < to)) return Status::OK();
      // A `from` longer than any key starts at its longest prefix and skips what sorts before it.
      std::string_view start = from.substr(0, std::min(from.size(), lease_->max_key_size()));
      return Scan(start, [&](std::string_view key, std::string_view value, bool* stop) {
        if (key < from) return;
        if (!(key < to)) *stop = true;
        else *stop = !fn(key, value);
      });
    });
  }

  Result<int64_t> Commit() override {
    return Guarded([&]() -> Result<int64_t> {
      SLUICE_RETURN_IF_ERROR(CheckUsable());
      auto started = std::chrono::steady_clock::now();
      CrashPoint("state-lmdb:before-commit");
      const int64_t new_version = version_ + 1;
      const std::string what = "cannot commit " + VersionName(dir_, new_version);
      Status prepared = RemoveFilesOfEarlierAttempts(new_version);
      if (!prepared.ok()) return Finish(prepared.WithContext(what));

      const CommittedVersion committed{new_version, NewCommitToken()};
      int64_t num_keys = 0;
      for (;;) {
        int rc = RecordCommittedVersion(txn_, lease_->meta_dbi(), committed);
        if (rc == MDB_SUCCESS) {
          MDB_stat stat;
          rc = mdb_stat(txn_, lease_->data_dbi(), &stat);
          num_keys = static_cast<int64_t>(stat.ms_entries);
        }
        if (rc == MDB_SUCCESS) {
          rc = mdb_txn_commit(txn_);
          txn_ = nullptr;  // freed whether committed or not
          if (rc == MDB_SUCCESS) break;
        }
        if (rc != MDB_MAP_FULL) return Finish(LmdbError(what, rc));
        Status grown = GrowAndReplay();
        if (!grown.ok()) return Finish(grown.WithContext(what));
      }
      CrashPoint("state-lmdb:after-local-commit");

      Status written = WriteCheckpointFile(committed);
      if (!written.ok()) {
        trusted_->Forget(dir_);  // the local environment is ahead of the checkpoint
        lease_->checkpoint_known = false;
        return Finish(written.WithContext(what));
      }
      trusted_->Set(dir_, committed);
      final_metrics_.num_keys = num_keys;
      final_metrics_.memory_used_bytes = lease_->MappedBytesInUse();
      final_metrics_.commit_time_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
      SLUICE_RETURN_IF_ERROR(Finish(Status::OK()));
      return new_version;
    });
  }

  void Abort() override {
    if (finished_) return;
    try {
      (void)Finish(Status::OK());
    } catch (...) {
    }
  }

  StateStoreMetrics metrics() const override {
    if (finished_ || !txn_) return final_metrics_;
    StateStoreMetrics m;
    MDB_stat stat;
    if (mdb_stat(txn_, lease_->data_dbi(), &stat) == MDB_SUCCESS) m.num_keys = static_cast<int64_t>(stat.ms_entries);
    m.memory_used_bytes = lease_->MappedBytesInUse() + change_log_bytes_;
    return m;
  }

 private:
  using ScanStep = std::function<void(std::string_view key, std::string_view value, bool* stop)>;

  Status CheckUsable() const {
    if (finished_) return Status::Internal("state store used after Commit or Abort; open the committed version again");
    return broken_;
  }

  Status CheckKey(std::string_view key) const {
    if (key.size() <= lease_->max_key_size()) return Status::OK();
    return Status::InvalidArgument("a state key of " + std::to_string(key.size()) + " bytes is longer than the " +
                                   std::to_string(lease_->max_key_size()) + " bytes the lmdb state store holds");
  }

  // A failed transaction cannot go on: the batch is lost and every later call says why.
  Status Fail(Status status) {
    broken_ = status;
    if (txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
    return status;
  }

  // Ends the batch: aborts an uncommitted transaction and lets the next store open.
  Status Finish(Status status) {
    if (finished_) return status;
    finished_ = true;
    if (txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
    if (lease_.get()) {
      InUseReservation::Release(lease_.get());
      lease_.Release();
    }
    changes_.clear();
    return status;
  }

  void RecordChange(std::string_view key, std::optional<std::string> value) {
    int64_t value_size = value ? static_cast<int64_t>(value->size()) : 0;
    auto it = changes_.find(key);
    if (it == changes_.end()) {
      change_log_bytes_ += static_cast<int64_t>(key.size()) + value_size + kChangeOverheadBytes;
      changes_.emplace(std::string(key), std::move(value));
    } else {
      change_log_bytes_ += value_size - (it->second ? static_cast<int64_t>(it->second->size()) : 0);
      it->second = std::move(value);
    }
  }

  // The change is already in the log, so a full map is cured by growing and
  // replaying the log, this change included.
  Status AfterWrite(int rc) {
    if (rc == MDB_SUCCESS) return Status::OK();
    if (rc == MDB_MAP_FULL) {
      Status grown = GrowAndReplay();
      return grown.ok() ? grown : Fail(grown);
    }
    return Fail(LmdbError("cannot write to state store " + dir_, rc));
  }

  Status GrowAndReplay() {
    for (int doubling = 0; doubling < kMaxMapDoublings; ++doubling) {
      if (txn_) mdb_txn_abort(txn_);
      txn_ = nullptr;
      SLUICE_RETURN_IF_ERROR(lease_->GrowMap());
      int rc = mdb_txn_begin(lease_->env(), nullptr, 0, &txn_);
      if (rc != MDB_SUCCESS) {
        txn_ = nullptr;
        return LmdbError("cannot begin a transaction on " + lease_->path(), rc);
      }
      rc = ReplayChanges();
      if (rc == MDB_SUCCESS) return Status::OK();
      if (rc != MDB_MAP_FULL) return LmdbError("cannot replay the batch into state store " + dir_, rc);
    }
    return Status::IOError("the map of state store " + dir_ + " cannot grow enough for this batch");
  }

  int ReplayChanges() {
    std::string encoded;
    for (const auto& [key, value] : changes_) {
      EncodeKey(key, &encoded);
      MDB_val k = Val(encoded);
      int rc;
      if (value) {
        MDB_val v = Val(*value);
        rc = mdb_put(txn_, lease_->data_dbi(), &k, &v, 0);
      } else {
        rc = mdb_del(txn_, lease_->data_dbi(), &k, nullptr);
        if (rc == MDB_NOTFOUND) rc = MDB_SUCCESS;
      }
      if (rc != MDB_SUCCESS) return rc;
    }
    return MDB_SUCCESS;
  }

  // Walks the data database from the first key >= `start` until `step` says stop.
  Status Scan(std::string_view start, const ScanStep& step) {
    MDB_cursor* cursor = nullptr;
    int rc = mdb_cursor_open(txn_, lease_->data_dbi(), &cursor);
    if (rc != MDB_SUCCESS) return Fail(LmdbError("cannot scan state store " + dir_, rc));
    std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> closer(cursor, mdb_cursor_close);
    std::string encoded;
    EncodeKey(start, &encoded);
    MDB_val k = Val(encoded), v;
    bool stop = false;
    for (rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && !stop;
         rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT))
      step(DecodeKey(k), View(v), &stop);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return Fail(LmdbError("cannot scan state store " + dir_, rc));
    return Status::OK();
  }

  // A replayed batch: files of `version` and later belong to an earlier,
  // uncommitted history, and a stale snapshot would win over the new file.
  Status RemoveFilesOfEarlierAttempts(int64_t version) {
    LocalEnvironment& env = *lease_.get();
    if (!env.checkpoint_known) {
      SLUICE_ASSIGN_OR_RETURN(CheckpointListing listing, ListCheckpointDir(dir_));
      env.checkpoint_dir_exists = listing.dir_exists;
      env.newest_version_on_disk = listing.NewestVersion();
      env.checkpoint_known = true;
    }
    if (!env.checkpoint_dir_exists) {
      SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(dir_));
      env.checkpoint_dir_exists = true;
    }
    if (env.newest_version_on_disk >= version) {
      SLUICE_ASSIGN_OR_RETURN(CheckpointListing listing, ListCheckpointDir(dir_));
      SLUICE_RETURN_IF_ERROR(RemoveFilesDurably(dir_, listing.PathsFrom(version)));
    }
    // From here on a file of `version` may exist, whatever happens next.
    env.newest_version_on_disk = version;
    return Status::OK();
  }

  Status WriteCheckpointFile(const CommittedVersion& committed) {
    if (committed.version % snapshot_interval_ == 0)
      return WriteSnapshotFile(lease_->env(), FileIn(dir_, SnapshotFileName(committed.version)), committed.version,
                               committed.token);
    return WriteDeltaFile(FileIn(dir_, DeltaFileName(committed.version)), committed.version, committed.token,
                          changes_);
  }

  std::shared_ptr<TrustedVersions> trusted_;
  int64_t snapshot_interval_;
  std::string dir_;
  EnvironmentLease lease_;
  int64_t version_;
  MDB_txn* txn_;
  BatchChanges changes_;
  int64_t change_log_bytes_ = 0;
  std::string key_buffer_;
  Status broken_;
  bool finished_ = false;
  StateStoreMetrics final_metrics_;
};

class LmdbStateStoreProvider final : public StateStoreProvider {
 public:
  explicit LmdbStateStoreProvider(const StateStoreContext& ctx) : trusted_(std::make_shared<TrustedVersions>()) {
    Status valid = Validate(ctx.options);
    if (!valid.ok()) throw std::invalid_argument(valid.message());
    config_.local_root = ctx.options.GetString("local_dir", "");
    if (config_.local_root.empty()) config_.local_root = (fs::temp_directory_path() / "sluice-state-lmdb").string();
    config_.initial_map_size =
        static_cast<size_t>(ctx.options.GetInt("initial_map_mb", kDefaultInitialMapMb)) * 1024 * 1024;
    config_.snapshot_interval = ctx.options.GetInt("snapshot_interval", kDefaultSnapshotInterval);
    config_.keep_local = ctx.options.GetBool("keep_local", false);
  }

  static Status Validate(const Options& options) {
    int64_t interval = options.GetInt("snapshot_interval", kDefaultSnapshotInterval);
    if (interval < 1)
      return Status::InvalidArgument("snapshot_interval must be at least 1, got " + std::to_string(interval));
    int64_t map_mb = options.GetInt("initial_map_mb", kDefaultInitialMapMb);
    if (map_mb < 1 || map_mb > (int64_t{1} << 30))
      return Status::InvalidArgument("initial_map_mb must be between 1 and 2^30, got " + std::to_string(map_mb));
    return Status::OK();
  }

  Result<std::unique_ptr<StateStore>> Open(const StateStoreId& id, int64_t version) override {
    return Guarded([&]() -> Result<std::unique_ptr<StateStore>> {
      if (version < 0)
        return Status::InvalidArgument("cannot open version " + std::to_string(version) + " of state store " +
                                       id.Dir() + ": versions start at 0");
      const std::string dir = id.Dir();
      // Checked first: a version that does not exist needs no local environment.
      CommittedVersion wanted;
      if (version > 0) {
        SLUICE_ASSIGN_OR_RETURN(wanted, CheckpointedVersion(dir, version));
      }

      EnvironmentLease lease(config_.local_root, dir, config_.initial_map_size, config_.keep_local);
      SLUICE_RETURN_IF_ERROR(InUseReservation::Acquire(lease.get(), dir));
      InUseReservation reservation(lease.get());
      SLUICE_RETURN_IF_ERROR(lease->EnsureOpen());
      if (version == 0) SLUICE_RETURN_IF_ERROR(lease->ResetToEmpty());
      else SLUICE_RETURN_IF_ERROR(BringToVersion(*lease.get(), dir, wanted));

      MDB_txn* txn = nullptr;
      int rc = mdb_txn_begin(lease->env(), nullptr, 0, &txn);
      if (rc != MDB_SUCCESS) return LmdbError("cannot begin a transaction on " + lease->path(), rc);
      KeepOpen(dir);
      reservation.HandOver();
      return std::unique_ptr<StateStore>(
          std::make_unique<LmdbStateStore>(trusted_, config_, dir, std::move(lease), version, txn));
    });
  }

  Status Purge(const StateStoreId& id, int64_t oldest_to_keep) override {
    return Guarded([&]() -> Status {
      const std::string dir = id.Dir();
      SLUICE_ASSIGN_OR_RETURN(CheckpointListing listing, ListCheckpointDir(dir));
      int64_t base = listing.NewestSnapshotAtOrBefore(oldest_to_keep);
      // Without a snapshot at or before oldest_to_keep every delta is still needed.
      if (base == 0) return Status::OK();
      trusted_->ForgetOlderThan(dir, base);
      return RemoveFilesDurably(dir, listing.PathsBefore(base));
    });
  }

  Status Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    open_environments_.clear();
    return Status::OK();
  }

 private:
  // The version and commit token V's own checkpoint file records; every way of
  // loading V needs that file.
  static Result<CommittedVersion> CheckpointedVersion(const std::string& dir, int64_t version) {
    const std::string what = "cannot load " + VersionName(dir, version);
    auto trailer = ReadSnapshotTrailer(FileIn(dir, SnapshotFileName(version)), version);
    if (trailer.ok()) return CommittedVersion{version, trailer->token};
    if (!trailer.status().IsNotFound()) return trailer.status().WithContext(what);
    auto token = ReadDeltaToken(FileIn(dir, DeltaFileName(version)), version);
    if (token.ok()) return CommittedVersion{version, *token};
    if (!token.status().IsNotFound()) return token.status().WithContext(what);
    return Status::NotFound(VersionName(dir, version) + " does not exist: there is no " + SnapshotFileName(version) +
                            " or " + DeltaFileName(version) + " (never committed, or purged)");
  }

  // Makes the local environment hold `wanted`, reusing it when it already does.
  Status BringToVersion(LocalEnvironment& env, const std::string& dir, const CommittedVersion& wanted) {
    SLUICE_ASSIGN_OR_RETURN(CommittedVersion held, env.ReadCommitted());
    if (held == wanted) {
      if (trusted_->Contains(dir, wanted)) return Status::OK();
      // First use by this provider instance (a restart): the local copy is as
      // good as the checkpoint file it matches, so that file must be intact.
      SLUICE_RETURN_IF_ERROR(VerifyWholeFile(dir, wanted.version));
      trusted_->Set(dir, wanted);
      return Status::OK();
    }
    return Restore(env, dir, wanted);
  }

  static Status VerifyWholeFile(const std::string& dir, int64_t version) {
    const std::string what = "cannot load " + VersionName(dir, version);
    const std::string snapshot = FileIn(dir, SnapshotFileName(version));
    std::error_code ec;
    if (fs::exists(snapshot, ec)) return VerifySnapshotFile(snapshot, version).status().WithContext(what);
    uint64_t token = 0;
    return ReadDeltaFile(FileIn(dir, DeltaFileName(version)), version,
                         [](std::string_view, const std::string*) { return Status::OK(); }, &token)
        .WithContext(what);
  }

  // Newest snapshot at or before the version, then every delta after it.
  Status Restore(LocalEnvironment& env, const std::string& dir, const CommittedVersion& wanted) {
    const int64_t version = wanted.version;
    const std::string what = "cannot load " + VersionName(dir, version);
    SLUICE_ASSIGN_OR_RETURN(CheckpointListing listing, ListCheckpointDir(dir));
    const int64_t base = listing.NewestSnapshotAtOrBefore(version);
    for (int64_t v = base + 1; v <= version; ++v)
      if (!listing.HasDelta(v))
        return Status::NotFound(VersionName(dir, version) + " needs " + DeltaFileName(v) + ", which is missing");

    trusted_->Forget(dir);
    CommittedVersion loaded;
    if (base > 0) {
      auto restored = env.ReplaceWithSnapshot(FileIn(dir, SnapshotFileName(base)), base);
      if (!restored.ok()) return restored.status().WithContext(what);
      loaded = *restored;
    } else {
      SLUICE_RETURN_IF_ERROR(env.ResetToEmpty());
    }
    if (base < version) {
      SLUICE_ASSIGN_OR_RETURN(loaded, ApplyDeltas(env, dir, base, version));
    }
    if (loaded != wanted)
      return Status::Corruption(what + ": the checkpoint files changed while it was loading (token mismatch)");
    trusted_->Set(dir, loaded);
    return Status::OK();
  }

  // Applies deltas base+1..version in one transaction; a full map grows and the
  // whole transaction is redone.
  static Result<CommittedVersion> ApplyDeltas(LocalEnvironment& env, const std::string& dir, int64_t base,
                                              int64_t version) {
    const std::string what = "cannot load " + VersionName(dir, version);
    for (int doubling = 0;; ++doubling) {
      MDB_txn* txn = nullptr;
      int rc = mdb_txn_begin(env.env(), nullptr, 0, &txn);
      if (rc != MDB_SUCCESS) return LmdbError("cannot begin a transaction on " + env.path(), rc);
      bool map_full = false;
      uint64_t token = 0;
      std::string encoded;
      Status applied;
      for (int64_t v = base + 1; v <= version && applied.ok(); ++v) {
        const std::string path = FileIn(dir, DeltaFileName(v));
        applied = ReadDeltaFile(
            path, v,
            [&](std::string_view key, const std::string* value) -> Status {
              // Commits never write such a key, so it can only be damage.
              if (key.size() > env.max_key_size())
                return Status::Corruption("checkpoint file " + path + " is corrupt: it holds a key of " +
                                          std::to_string(key.size()) + " bytes");
              EncodeKey(key, &encoded);
              MDB_val k = Val(encoded);
              int put_rc;
              if (value) {
                MDB_val val = Val(*value);
                put_rc = mdb_put(txn, env.data_dbi(), &k, &val, 0);
              } else {
                put_rc = mdb_del(txn, env.data_dbi(), &k, nullptr);
                if (put_rc == MDB_NOTFOUND) put_rc = MDB_SUCCESS;
              }
              if (put_rc == MDB_MAP_FULL) map_full = true;
              if (put_rc != MDB_SUCCESS) return LmdbError("cannot apply " + path, put_rc);
              return Status::OK();
            },
            &token);
      }
      CommittedVersion loaded{version, token};
      if (applied.ok()) {
        rc = RecordCommittedVersion(txn, env.meta_dbi(), loaded);
        if (rc == MDB_SUCCESS) {
          rc = mdb_txn_commit(txn);
          txn = nullptr;
          if (rc == MDB_SUCCESS) return loaded;
        }
        if (rc == MDB_MAP_FULL) map_full = true;
        else applied = LmdbError("cannot commit to " + env.path(), rc);
      }
      if (txn) mdb_txn_abort(txn);
      if (!map_full || doubling >= kMaxMapDoublings) return applied.WithContext(what);
      SLUICE_RETURN_IF_ERROR(env.GrowMap());
    }
  }

  // Holds the environment between batches, so that it is not closed (and
  // removed) when a batch's store goes away.
  void KeepOpen(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    if (open_environments_.count(dir) == 0)
      open_environments_.emplace(
          dir, EnvironmentLease(config_.local_root, dir, config_.initial_map_size, config_.keep_local));
  }

  ProviderConfig config_;
  std::shared_ptr<TrustedVersions> trusted_;
  std::mutex mu_;
  std::unordered_map<std::string, EnvironmentLease> open_environments_;
};

const OptionSpec kOptions[] = {
    {"local_dir", OptionType::kPath, nullptr, false,
     "directory for the stores' local LMDB environments, one subdirectory per store named after a hash of its "
     "checkpoint directory (default: <system temp dir>/sluice-state-lmdb); a working copy, rebuilt from the "
     "checkpoint when missing or stale"},
    {"initial_map_mb", OptionType::kInt, "64", false,
     "initial LMDB map size in MiB; the map doubles whenever a batch needs more"},
    {"snapshot_interval", OptionType::kInt, "10", false,
     "write a full copy of the environment every this many versions (at least 1) and a delta of the batch's "
     "changes for the versions in between; loading a version replays at most this many minus one deltas"},
    {"keep_local", OptionType::kBool, "false", false,
     "keep each store's local environment when the provider closes, so that a restart reuses it (once its "
     "checkpoint file has been verified) instead of rebuilding it"},
};

}  // namespace
}  // namespace sluice::state_lmdb

SLUICE_REGISTER_STATE_STORE("lmdb", SLUICE_VERSION_STRING,
                            "Versioned state in a local memory-mapped LMDB environment per store, checkpointed as "
                            "compacted environment copies and per-batch deltas",
                            sluice::state_lmdb::kOptions, sluice::state_lmdb::LmdbStateStoreProvider)
