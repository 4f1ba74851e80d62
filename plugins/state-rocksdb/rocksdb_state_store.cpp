// The "rocksdb" state store provider, modelled on the RocksDB state store of
// Spark and Databricks: each store (operator, partition) is a RocksDB instance
// in a local working directory, and every commit is checkpointed incrementally
// into StateStoreId::Dir(): only SST files the checkpoint does not hold yet are
// copied, shared between versions and reference-counted by the per-version
// manifests (layout and format in checkpoint_files.h).
//
// Guarantees:
//   - A batch's changes live in a WriteBatchWithIndex until Commit; Get and the
//     scans read the batch merged with the DB, in key order. Abort drops it.
//   - Commit of version V writes the batch to the local DB with the WAL off and
//     flushes it (the local DB is a cache, never trusted after a restart, so a
//     WAL would only be written and thrown away: the flushed SSTs are what the
//     checkpoint needs), makes a RocksDB checkpoint (hard links) beside it, and
//     copies that into Dir(): new SSTs to sst/, the other files to <V>/, then
//     <V>.manifest, written atomically and durably. Before copying, a commit
//     removes the manifests of V and later versions left by an earlier
//     attempt, so a replay replaces them.
//   - Without async_checkpoint, Commit returns once <V>.manifest is durable.
//     With it, Commit returns after the local commit and one background thread
//     per store copies the version; the next Commit waits for that copy
//     (checkpoint_wait_ms), AwaitDurable waits for it, and a failed copy is
//     sticky: every later Open, Commit and AwaitDurable of that store returns
//     it. Close waits for the copies in flight.
//   - Open(V) reuses the local DB when it holds V (batch N+1 opening what batch
//     N committed), otherwise rebuilds it from V's manifest, checking each
//     file's size and CRC32: NotFound naming <V>.manifest when it is missing,
//     Corruption naming the damaged file. A new provider (a restart) always
//     rebuilds from the checkpoint. Version 0 is the empty DB and has no files.
//   - Purge(id, K) removes the manifests of versions below K (never the newest
//     one), then every shared SST and version directory that no remaining
//     manifest names; files of copies in flight in this process are kept.
//   - num_keys is exact: each Put and Remove looks the key up first.
// Memory: one LRU block cache of block_cache_mb shared by every store of a
// provider (index and filter blocks are charged to it), and memtables of at
// most write_buffer_mb per store. memory_used_bytes reports the store's own
// memtables, table readers and uncommitted batch; the shared block cache is
// not attributed to any store.
// Crash points: state-rocksdb:before-commit (nothing written),
// state-rocksdb:after-local-commit (committed locally, nothing copied),
// state-rocksdb:after-sst-copy (files copied, the manifest not written).
// One provider instance writes a store's checkpoint directory at a time.

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "checkpoint_files.h"
#include "sluice/sluice.h"

namespace sluice::state_rocksdb {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kPluginName = "rocksdb";
constexpr int64_t kDefaultBlockCacheMb = 64;
constexpr int64_t kDefaultWriteBufferMb = 16;

int64_t MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

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

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  if (s.IsNotFound()) return Status::NotFound(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

std::string RandomHex64() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// FNV-1a: a stable name for a checkpoint directory's local working directory.
std::string HashHex(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The local DB is a cache: a restarted provider rebuilds it from the
// checkpoint, so it never needs to survive a crash. Its file system skips every
// fsync (flushes, MANIFEST updates, checkpoints, opens), which would otherwise
// cost more than the commit itself; the checkpoint copy is made durable by
// checkpoint_files.cpp.
class NoSyncWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  rocksdb::IOStatus Sync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
};

class NoSyncDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  using FSDirectoryWrapper::FSDirectoryWrapper;
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions&, rocksdb::IODebugContext*,
                                        const rocksdb::DirFsyncOptions&) override {
    return rocksdb::IOStatus::OK();
  }
};

class NoSyncFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit NoSyncFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base) : FileSystemWrapper(base) {}
  const char* Name() const override { return "SluiceNoSyncFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->NewWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReopenWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReuseWritableFile(name, old_name, options, result, dbg), result);
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewDirectory(name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<NoSyncDirectory>(std::move(*result));
    return s;
  }

 private:
  static rocksdb::IOStatus Wrap(rocksdb::IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* result) {
    if (s.ok()) *result = std::make_unique<NoSyncWritableFile>(std::move(*result));
    return s;
  }
};

struct Settings {
  std::string local_dir;  // parent of every store's working directory
  bool async_checkpoint = false;
  int64_t block_cache_mb = kDefaultBlockCacheMb;
  int64_t write_buffer_mb = kDefaultWriteBufferMb;
  std::optional<int64_t> fail_upload_after;  // test-only
  int64_t upload_delay_ms = 0;               // test-only
};

// What every provider in this process knows about one checkpoint directory:
// copies in flight (a restore waits for them, so a version committed
// asynchronously by one provider opens in another) and the files they will
// name (a purge must not delete them before their manifest exists).
struct CheckpointDirState {
  std::mutex mu;
  std::condition_variable idle;
  int copies_in_flight = 0;
  std::multiset<std::string> protected_paths;  // relative to the directory
};

std::shared_ptr<CheckpointDirState> DirStateFor(const std::string& dir) {
  static std::mutex registry_mu;
  static std::map<std::string, std::weak_ptr<CheckpointDirState>> registry;
  std::lock_guard<std::mutex> lock(registry_mu);
  auto& entry = registry[dir];
  if (auto state = entry.lock()) return state;
  auto state = std::make_shared<CheckpointDirState>();
  entry = state;
  // Drop the entries of directories no store uses any more.
  for (auto it = registry.begin(); it != registry.end();) it = it->second.expired() ? registry.erase(it) : std::next(it);
  return state;
}

// One version's copy into the checkpoint directory, planned at commit time.
struct PlannedFile {
  std::string local_path;  // in the local RocksDB checkpoint (hard links)
  CheckpointFile file;
  bool needs_copy = true;  // false: a shared SST the checkpoint already holds
};

struct CheckpointCopy {
  std::string local_checkpoint_dir;
  CheckpointManifest manifest;
  std::vector<PlannedFile> files;
};

// A store's local DB, and its checkpointing state, kept by the provider
// across batches.
struct StoreSlot {
  StoreSlot(std::string checkpoint_dir, std::string working_dir)
      : dir(std::move(checkpoint_dir)), local_root(std::move(working_dir)), dir_state(DirStateFor(dir)) {}
  ~StoreSlot() { (void)Shutdown(); }

  std::string db_path() const { return local_root + "/db"; }

  // Stops the copy thread after its last copy, closes the DB unless a store
  // still uses it, removes the working directory. Returns a failed copy's error.
  Status Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    changed.notify_all();
    if (worker.joinable()) worker.join();
    std::lock_guard<std::mutex> lock(mu);
    if (!store_open) {
      if (db) (void)db->Close();
      db.reset();
      local_version = -1;
      std::error_code ec;
      fs::remove_all(local_root, ec);
    }
    return sticky_error;
  }

  const std::string dir;         // the checkpoint directory, StateStoreId::Dir()
  const std::string local_root;  // this store's working directory
  const std::shared_ptr<CheckpointDirState> dir_state;

  std::mutex mu;  // guards everything below
  std::condition_variable changed;
  std::unique_ptr<rocksdb::DB> db;
  int64_t local_version = -1;  // the version the local DB holds; -1: none to trust
  int64_t local_num_keys = 0;
  bool store_open = false;
  // Local SST name -> its copy in the checkpoint, for the history of local_version.
  std::map<std::string, CheckpointFile> checkpointed_ssts;
  std::optional<CheckpointCopy> queued;  // handed to the copy thread, not yet taken
  bool copy_in_flight = false;
  int64_t durable_version = 0;  // newest version whose manifest this provider wrote
  Status sticky_error;  // a failed asynchronous copy
  bool stopping = false;
  std::thread worker;
};

// State shared by a provider and the stores and threads it created.
class ProviderCore {
 public:
  explicit ProviderCore(Settings s)
      : settings(std::move(s)),
        local_env(rocksdb::NewCompositeEnv(std::make_shared<NoSyncFileSystem>(rocksdb::FileSystem::Default()))) {
    db_options.env = local_env.get();
    block_cache = rocksdb::NewLRUCache(static_cast<size_t>(settings.block_cache_mb) << 20);
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = block_cache;
    // Index and filter blocks count against the shared cache, keeping memory bounded.
    table.cache_index_and_filter_blocks = true;
    // Every Put looks its key up (for the exact key count): a filter makes misses cheap.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    db_options.create_if_missing = true;
    db_options.write_buffer_size = static_cast<size_t>(settings.write_buffer_mb) << 20;
    db_options.max_write_buffer_number = 2;
    db_options.info_log_level = rocksdb::WARN_LEVEL;
    db_options.keep_log_file_num = 1;
    // Nothing unflushed matters at close: every commit flushed.
    db_options.avoid_flush_during_shutdown = true;
  }

  Result<std::unique_ptr<rocksdb::DB>> OpenDb(const std::string& path) const {
    rocksdb::DB* raw = nullptr;
    SLUICE_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(db_options, path, &raw), "cannot open RocksDB at " + path));
    return std::unique_ptr<rocksdb::DB>(raw);
  }

  // Copies one planned version into the checkpoint directory.
  Status CopyIntoCheckpoint(const std::string& dir, CheckpointCopy& copy) {
    const int64_t version = copy.manifest.version;
    if (settings.upload_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(settings.upload_delay_ms));
    int64_t attempt = ++copies_started;
    if (settings.fail_upload_after && attempt > *settings.fail_upload_after)
      return Status::IOError("injected failure of checkpoint copy " + std::to_string(attempt) +
                             " (test-only option test_fail_upload_after = " +
                             std::to_string(*settings.fail_upload_after) + ")");
    const std::string sst_dir = dir + "/" + kSharedSstDir;
    const std::string version_dir = dir + "/" + VersionDirName(version);
    SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(sst_dir));

    // A replay: the manifests of this and later versions belong to an earlier
    // attempt. Manifests go first, so a crash leaves only unreferenced files.
    SLUICE_ASSIGN_OR_RETURN(CheckpointDirListing listing, ListCheckpointDir(dir));
    std::vector<std::string> stale_manifests, stale_dirs;
    for (int64_t v : listing.manifest_versions)
      if (v >= version) stale_manifests.push_back(dir + "/" + ManifestFileName(v));
    for (int64_t v : listing.version_dirs)
      if (v >= version) stale_dirs.push_back(dir + "/" + VersionDirName(v));
    SLUICE_RETURN_IF_ERROR(RemovePathsDurably(dir, stale_manifests));
    SLUICE_RETURN_IF_ERROR(RemovePathsDurably(dir, stale_dirs));
    SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(version_dir));

    bool copied_shared_sst = false;
    for (auto& planned : copy.files) {
      const std::string target = dir + "/" + planned.file.checkpoint_path;
      if (!planned.needs_copy) {
        // Shared SSTs were protected from purges when this copy was planned;
        // one gone before that (an unusual purge) is simply copied again.
        std::error_code ec;
        if (fs::file_size(target, ec) == planned.file.size && !ec) continue;
      }
      copied_shared_sst |= planned.file.is_shared_sst();
      SLUICE_ASSIGN_OR_RETURN(CopiedFile copied, CopyFile(planned.local_path, target, /*durable=*/true));
      planned.file.size = copied.size;
      planned.file.crc32 = copied.crc32;
    }
    if (copied_shared_sst) SLUICE_RETURN_IF_ERROR(SyncDirectory(sst_dir));
    SLUICE_RETURN_IF_ERROR(SyncDirectory(version_dir));
    CrashPoint("state-rocksdb:after-sst-copy");

    copy.manifest.files.clear();
    for (const auto& planned : copy.files) copy.manifest.files.push_back(planned.file);
    return WriteManifest(dir, copy.manifest);
  }

  // After a copy, successful or not: releases its files for purges, and
  // records the outcome in the slot.
  void FinishCopy(StoreSlot& slot, const CheckpointCopy& copy, const Status& outcome) {
    {
      std::lock_guard<std::mutex> lock(slot.dir_state->mu);
      auto& protected_paths = slot.dir_state->protected_paths;
      for (const auto& path : ProtectedPaths(copy))
        if (auto it = protected_paths.find(path); it != protected_paths.end()) protected_paths.erase(it);
      --slot.dir_state->copies_in_flight;
    }
    slot.dir_state->idle.notify_all();
    std::error_code ec;
    fs::remove_all(copy.local_checkpoint_dir, ec);
    {
      std::lock_guard<std::mutex> lock(slot.mu);
      if (outcome.ok()) {
        slot.durable_version = std::max(slot.durable_version, copy.manifest.version);
        slot.checkpointed_ssts.clear();
        for (const auto& f : copy.manifest.files)
          if (f.is_shared_sst()) slot.checkpointed_ssts.emplace(f.local_name, f);
      } else {
        // The local DB holds a version the checkpoint does not: rebuild it on the next Open.
        if (slot.local_version == copy.manifest.version) slot.local_version = -1;
        slot.checkpointed_ssts.clear();
        if (settings.async_checkpoint && slot.sticky_error.ok()) slot.sticky_error = outcome;
      }
      slot.copy_in_flight = false;
    }
    slot.changed.notify_all();
  }

  static std::vector<std::string> ProtectedPaths(const CheckpointCopy& copy) {
    std::vector<std::string> paths;
    paths.push_back(VersionDirName(copy.manifest.version));
    for (const auto& planned : copy.files)
      if (planned.file.is_shared_sst()) paths.push_back(planned.file.checkpoint_path);
    return paths;
  }

  // The copy thread of one store: copies queued versions in order until stopped.
  void RunCopies(StoreSlot& slot) {
    for (;;) {
      std::unique_lock<std::mutex> lock(slot.mu);
      slot.changed.wait(lock, [&] { return slot.queued.has_value() || slot.stopping; });
      if (!slot.queued) return;  // stopping, with every copy done
      CheckpointCopy copy = std::move(*slot.queued);
      slot.queued.reset();
      lock.unlock();
      Status outcome = Guarded([&] { return CopyIntoCheckpoint(slot.dir, copy); });
      if (!outcome.ok())
        outcome = outcome.WithContext("asynchronous checkpoint of version " + std::to_string(copy.manifest.version) +
                                      " of state store " + slot.dir + " failed; the query must stop");
      FinishCopy(slot, copy, outcome);
    }
  }

  Settings settings;
  std::unique_ptr<rocksdb::Env> local_env;  // outlives every DB: stores hold the core
  std::shared_ptr<rocksdb::Cache> block_cache;
  rocksdb::Options db_options;
  std::atomic<int64_t> copies_started{0};
};

class RocksDbStateStore final : public StateStore {
 public:
  RocksDbStateStore(std::shared_ptr<ProviderCore> core, std::shared_ptr<StoreSlot> slot, int64_t version,
                    int64_t num_keys)
      : core_(std::move(core)), slot_(std::move(slot)), db_(slot_->db.get()), version_(version),
        num_keys_(num_keys), batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true) {}

  ~RocksDbStateStore() override { Abort(); }

  int64_t version() const override { return version_; }

  Result<bool> Get(std::string_view key, std::string* value) override {
    return Guarded([&]() -> Result<bool> {
      if (finished_) return Finished();
      rocksdb::Status s = batch_.GetFromBatchAndDB(db_, read_options_, ToSlice(key), value);
      if (s.IsNotFound()) return false;
      SLUICE_RETURN_IF_ERROR(FromRocks(s, "cannot read state store " + slot_->dir));
      return true;
    });
  }

  Status Put(std::string_view key, std::string_view value) override {
    return Guarded([&]() -> Status {
      if (finished_) return Finished();
      SLUICE_ASSIGN_OR_RETURN(bool existed, Exists(key));
      SLUICE_RETURN_IF_ERROR(FromRocks(batch_.Put(ToSlice(key), ToSlice(value)), "cannot write state"));
      if (!existed) ++num_keys_;
      return Status::OK();
    });
  }

  Status Remove(std::string_view key) override {
    return Guarded([&]() -> Status {
      if (finished_) return Finished();
      SLUICE_ASSIGN_OR_RETURN(bool existed, Exists(key));
      if (!existed) return Status::OK();  // no tombstone for an absent key
      SLUICE_RETURN_IF_ERROR(FromRocks(batch_.Delete(ToSlice(key)), "cannot write state"));
      --num_keys_;
      return Status::OK();
    });
  }

  Status PrefixScan(std::string_view prefix, const StateScanFn& fn) override {
    return Scan(prefix, [&](std::string_view key) { return key.starts_with(prefix); }, fn);
  }

  Status RangeScan(std::string_view from, std::string_view to, const StateScanFn& fn) override {
    return Scan(from, [&](std::string_view key) { return key < to; }, fn);
  }

  Result<int64_t> Commit() override {
    return Guarded([&]() -> Result<int64_t> {
      if (finished_) return Finished();
      const auto started = Clock::now();
      CrashPoint("state-rocksdb:before-commit");
      const int64_t new_version = version_ + 1;
      Status committed = CommitVersion(new_version);
      final_metrics_ = CurrentMetrics();
      final_metrics_.commit_time_ms = MillisSince(started);
      final_metrics_.checkpoint_wait_ms = checkpoint_wait_ms_;
      Release();
      if (!committed.ok())
        return committed.WithContext("cannot commit version " + std::to_string(new_version) + " of state store " +
                                     slot_->dir);
      return new_version;
    });
  }

  void Abort() override {
    if (finished_) return;
    try {
      final_metrics_ = CurrentMetrics();
    } catch (...) {
    }
    Release();
  }

  StateStoreMetrics metrics() const override { return finished_ ? final_metrics_ : CurrentMetrics(); }

 private:
  static Status Finished() {
    return Status::Internal("state store used after Commit or Abort; open the committed version again");
  }
  static rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

  Result<bool> Exists(std::string_view key) {
    rocksdb::Status s = batch_.GetFromBatchAndDB(db_, read_options_, ToSlice(key), &lookup_);
    lookup_.Reset();
    if (s.IsNotFound()) return false;
    SLUICE_RETURN_IF_ERROR(FromRocks(s, "cannot read state store " + slot_->dir));
    return true;
  }

  // The batch merged over the DB, from `start` while `in_range` holds.
  template <typename InRange>
  Status Scan(std::string_view start, const InRange& in_range, const StateScanFn& fn) {
    return Guarded([&]() -> Status {
      if (finished_) return Finished();
      std::unique_ptr<rocksdb::Iterator> it(batch_.NewIteratorWithBase(db_->NewIterator(read_options_)));
      for (it->Seek(ToSlice(start)); it->Valid(); it->Next()) {
        std::string_view key(it->key().data(), it->key().size());
        if (!in_range(key)) break;
        if (!fn(key, std::string_view(it->value().data(), it->value().size()))) break;
      }
      return FromRocks(it->status(), "cannot scan state store " + slot_->dir);
    });
  }

  // Writes the batch into the local DB and checkpoints it, synchronously or not.
  Status CommitVersion(int64_t new_version) {
    StoreSlot& slot = *slot_;
    std::unique_lock<std::mutex> lock(slot.mu);
    // At most one copy in flight per store: this commit waits for the previous one.
    const auto wait_started = Clock::now();
    slot.changed.wait(lock, [&] { return !slot.copy_in_flight; });
    checkpoint_wait_ms_ = MillisSince(wait_started);
    if (!slot.sticky_error.ok()) return slot.sticky_error;

    // From the first write on, the local DB no longer holds the opened version.
    slot.local_version = -1;
    rocksdb::WriteOptions write_options;
    write_options.disableWAL = true;  // the flush below is what the checkpoint needs
    SLUICE_RETURN_IF_ERROR(FromRocks(db_->Write(write_options, batch_.GetWriteBatch()), "cannot write to RocksDB"));
    SLUICE_RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "cannot flush RocksDB"));
    batch_.Clear();
    slot.local_version = new_version;
    slot.local_num_keys = num_keys_;
    CrashPoint("state-rocksdb:after-local-commit");

    SLUICE_ASSIGN_OR_RETURN(CheckpointCopy copy, PlanCopy(slot, new_version));
    {
      std::lock_guard<std::mutex> dir_lock(slot.dir_state->mu);
      for (auto& path : ProviderCore::ProtectedPaths(copy)) slot.dir_state->protected_paths.insert(std::move(path));
      ++slot.dir_state->copies_in_flight;
    }
    slot.copy_in_flight = true;
    if (core_->settings.async_checkpoint) {
      slot.queued = std::move(copy);
      if (!slot.worker.joinable()) {
        StoreSlot* raw = &slot;  // the slot joins this thread before it goes away
        slot.worker = std::thread([core = core_, raw] { core->RunCopies(*raw); });
      }
      lock.unlock();
      slot.changed.notify_all();
      return Status::OK();
    }
    lock.unlock();
    Status outcome = Guarded([&] { return core_->CopyIntoCheckpoint(slot.dir, copy); });
    core_->FinishCopy(slot, copy, outcome);
    return outcome;
  }

  // A RocksDB checkpoint of the committed DB (hard links, cheap) and the list
  // of files to copy from it: SSTs the checkpoint directory lacks, and every
  // other file.
  Result<CheckpointCopy> PlanCopy(StoreSlot& slot, int64_t version) {
    CheckpointCopy copy;
    copy.local_checkpoint_dir = slot.local_root + "/checkpoint-" + std::to_string(version);
    std::error_code ec;
    fs::remove_all(copy.local_checkpoint_dir, ec);
    rocksdb::Checkpoint* raw = nullptr;
    SLUICE_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_, &raw), "cannot checkpoint RocksDB"));
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    SLUICE_RETURN_IF_ERROR(FromRocks(checkpoint->CreateCheckpoint(copy.local_checkpoint_dir),
                                     "cannot checkpoint RocksDB into " + copy.local_checkpoint_dir));
    copy.manifest.version = version;
    copy.manifest.commit_id = RandomHex64();
    copy.manifest.num_keys = num_keys_;
    for (const auto& entry : fs::directory_iterator(copy.local_checkpoint_dir)) {
      PlannedFile planned;
      planned.local_path = entry.path().string();
      planned.file.local_name = entry.path().filename().string();
      planned.file.size = entry.file_size();
      // With the WAL off, a WAL file is empty; the restored DB makes its own.
      if (planned.file.local_name.ends_with(".log") && planned.file.size == 0) continue;
      if (planned.file.local_name.ends_with(".sst")) {
        auto known = slot.checkpointed_ssts.find(planned.file.local_name);
        if (known != slot.checkpointed_ssts.end() && known->second.size == planned.file.size) {
          planned.file = known->second;
          planned.needs_copy = false;
        } else {
          std::string stem = planned.file.local_name.substr(0, planned.file.local_name.size() - 4);
          planned.file.checkpoint_path = std::string(kSharedSstDir) + "/" + stem + "-" + RandomHex64() + ".sst";
        }
      } else {
        planned.file.checkpoint_path = VersionDirName(version) + "/" + planned.file.local_name;
      }
      copy.files.push_back(std::move(planned));
    }
    return copy;
  }

  StateStoreMetrics CurrentMetrics() const {
    StateStoreMetrics m;
    m.num_keys = num_keys_;
    uint64_t memtables = 0, table_readers = 0;
    db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &memtables);
    db_->GetIntProperty("rocksdb.estimate-table-readers-mem", &table_readers);
    m.memory_used_bytes = static_cast<int64_t>(memtables + table_readers + batch_.GetWriteBatch()->GetDataSize());
    m.checkpoint_wait_ms = checkpoint_wait_ms_;
    return m;
  }

  void Release() {
    finished_ = true;
    batch_.Clear();
    {
      std::lock_guard<std::mutex> lock(slot_->mu);
      slot_->store_open = false;
    }
    slot_->changed.notify_all();
  }

  std::shared_ptr<ProviderCore> core_;
  std::shared_ptr<StoreSlot> slot_;
  rocksdb::DB* db_;  // the slot's; not replaced while this store is open
  int64_t version_;
  int64_t num_keys_;
  mutable rocksdb::WriteBatchWithIndex batch_;  // mutable: its size is read by metrics()
  rocksdb::ReadOptions read_options_;
  rocksdb::PinnableSlice lookup_;
  int64_t checkpoint_wait_ms_ = 0;
  bool finished_ = false;
  StateStoreMetrics final_metrics_;
};

class RocksDbStateStoreProvider final : public StateStoreProvider {
 public:
  explicit RocksDbStateStoreProvider(const StateStoreContext& ctx) {
    Status valid = Validate(ctx.options);
    if (!valid.ok()) throw std::invalid_argument(valid.message());
    Settings s;
    s.local_dir = ctx.options.GetString("local_dir");
    if (s.local_dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      s.local_dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/sluice-rocksdb";
    }
    s.async_checkpoint = ctx.options.GetBool("async_checkpoint", false);
    s.block_cache_mb = ctx.options.GetInt("block_cache_mb", kDefaultBlockCacheMb);
    s.write_buffer_mb = ctx.options.GetInt("write_buffer_mb", kDefaultWriteBufferMb);
    if (ctx.options.Has("test_fail_upload_after")) s.fail_upload_after = ctx.options.GetInt("test_fail_upload_after");
    s.upload_delay_ms = ctx.options.GetInt("test_upload_delay_ms", 0);
    core_ = std::make_shared<ProviderCore>(std::move(s));
  }

  ~RocksDbStateStoreProvider() override { (void)Close(); }

  static Status Validate(const Options& options) {
    if (options.GetInt("block_cache_mb", kDefaultBlockCacheMb) < 1)
      return Status::InvalidArgument("block_cache_mb must be at least 1");
    if (options.GetInt("write_buffer_mb", kDefaultWriteBufferMb) < 1)
      return Status::InvalidArgument("write_buffer_mb must be at least 1");
    if (options.Has("test_fail_upload_after") && options.GetInt("test_fail_upload_after") < 0)
      return Status::InvalidArgument("test_fail_upload_after must not be negative");
    return Status::OK();
  }

  bool asynchronous() const override { return core_->settings.async_checkpoint; }

  Result<std::unique_ptr<StateStore>> Open(const StateStoreId& id, int64_t version) override {
    return Guarded([&]() -> Result<std::unique_ptr<StateStore>> {
      const std::string dir = id.Dir();
      if (version < 0)
        return Status::InvalidArgument("cannot open version " + std::to_string(version) + " of state store " + dir +
                                       ": versions start at 0");
      std::shared_ptr<StoreSlot> slot = SlotFor(dir, /*create=*/true);
      std::unique_lock<std::mutex> lock(slot->mu);
      // A failed asynchronous copy stops the store for good: the query must fail.
      if (!slot->sticky_error.ok()) return slot->sticky_error;
      if (slot->store_open)
        return Status::Aborted("state store " + dir + " is already open in this provider; commit or abort it first");
      if (!slot->db || slot->local_version != version) {
        Status restored = Restore(*slot, lock, version);
        if (!restored.ok()) return restored.WithContext("cannot load version " + std::to_string(version));
      }
      slot->store_open = true;
      return std::unique_ptr<StateStore>(
          std::make_unique<RocksDbStateStore>(core_, slot, version, slot->local_num_keys));
    });
  }

  Status Purge(const StateStoreId& id, int64_t oldest_to_keep) override {
    return Guarded([&]() -> Status {
      const std::string dir = id.Dir();
      auto dir_state = DirStateFor(dir);
      std::lock_guard<std::mutex> dir_lock(dir_state->mu);
      SLUICE_ASSIGN_OR_RETURN(CheckpointDirListing listing, ListCheckpointDir(dir));
      if (listing.manifest_versions.empty()) return Status::OK();
      // The newest manifest stays whatever is asked: the store keeps a loadable version.
      const int64_t newest = listing.manifest_versions.back();
      std::vector<std::string> dropped;
      std::set<int64_t> retained;
      for (int64_t v : listing.manifest_versions) {
        if (v < oldest_to_keep && v != newest) dropped.push_back(dir + "/" + ManifestFileName(v));
        else retained.insert(v);
      }
      if (dropped.empty()) return Status::OK();
      // Manifests first: a crash then leaves unreferenced files, never a manifest without its files.
      SLUICE_RETURN_IF_ERROR(RemovePathsDurably(dir, dropped));

      std::set<std::string> referenced(dir_state->protected_paths.begin(), dir_state->protected_paths.end());
      for (int64_t v : retained) {
        auto manifest = ReadManifest(dir, v);
        if (!manifest.ok())
          return manifest.status().WithContext("cannot purge state store " + dir + ": a retained version is unreadable");
        for (const auto& f : manifest->files)
          if (f.is_shared_sst()) referenced.insert(f.checkpoint_path);
      }
      std::vector<std::string> unreferenced_ssts, unreferenced_dirs;
      for (const auto& name : listing.shared_ssts) {
        std::string path = std::string(kSharedSstDir) + "/" + name;
        if (!referenced.count(path)) unreferenced_ssts.push_back(dir + "/" + path);
      }
      for (int64_t v : listing.version_dirs)
        if (!retained.count(v) && !referenced.count(VersionDirName(v)))
          unreferenced_dirs.push_back(dir + "/" + VersionDirName(v));
      // Temporary manifests are left by crashed writers unless a copy is running now.
      if (dir_state->copies_in_flight == 0)
        for (const auto& name : listing.temp_files) unreferenced_dirs.push_back(dir + "/" + name);
      SLUICE_RETURN_IF_ERROR(RemovePathsDurably(dir + "/" + kSharedSstDir, unreferenced_ssts));
      return RemovePathsDurably(dir, unreferenced_dirs);
    });
  }

  Status AwaitDurable(const StateStoreId& id, int64_t version) override {
    return Guarded([&]() -> Status {
      std::shared_ptr<StoreSlot> slot = SlotFor(id.Dir(), /*create=*/false);
      if (!slot) return Status::OK();  // nothing of this store was committed by this provider
      std::unique_lock<std::mutex> lock(slot->mu);
      // Wait for this version only, not for a later one the next batch queued:
      // that copy is what overlaps the next batch.
      slot->changed.wait(lock, [&] {
        return slot->durable_version >= version || !slot->sticky_error.ok() ||
               (!slot->copy_in_flight && !slot->queued);
      });
      if (!slot->sticky_error.ok())
        return slot->sticky_error.WithContext("version " + std::to_string(version) + " is not durable");
      return Status::OK();
    });
  }

  Status Close() override {
    return Guarded([&]() -> Status {
      std::map<std::string, std::shared_ptr<StoreSlot>> slots;
      {
        std::lock_guard<std::mutex> lock(slots_mu_);
        slots.swap(slots_);
      }
      Status first_error;
      for (auto& [dir, slot] : slots) {
        Status st = slot->Shutdown();
        if (first_error.ok() && !st.ok()) first_error = st;
      }
      return first_error;
    });
  }

 private:
  std::shared_ptr<StoreSlot> SlotFor(const std::string& dir, bool create) {
    std::lock_guard<std::mutex> lock(slots_mu_);
    auto it = slots_.find(dir);
    if (it != slots_.end()) return it->second;
    if (!create) return nullptr;
    // <local_dir>/<hash of Dir()>-<pid>-<n>: unique per slot, so two providers
    // (or a provider reopened after Close) never share a RocksDB directory.
    static std::atomic<int64_t> slots_created{0};
    const std::string hash = HashHex(dir);
    RemoveDeadProcessDirs(hash);
    std::string local_root = core_->settings.local_dir + "/" + hash + "-" + std::to_string(::getpid()) + "-" +
                             std::to_string(++slots_created);
    auto slot = std::make_shared<StoreSlot>(dir, std::move(local_root));
    slots_.emplace(dir, slot);
    return slot;
  }

  // Working directories of processes that died without cleaning up (a crash, kill -9).
  void RemoveDeadProcessDirs(const std::string& hash) const {
    std::error_code ec;
    fs::directory_iterator it(core_->settings.local_dir, ec);
    if (ec) return;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (!name.starts_with(hash + "-")) continue;
      std::string rest = name.substr(hash.size() + 1);
      pid_t pid = static_cast<pid_t>(std::strtol(rest.c_str(), nullptr, 10));
      if (pid <= 0 || pid == ::getpid()) continue;
      if (::kill(pid, 0) != 0 && errno == ESRCH) {
        std::error_code remove_ec;
        fs::remove_all(it->path(), remove_ec);
      }
    }
  }

  // Rebuilds the local DB at `version` from the checkpoint directory.
  Status Restore(StoreSlot& slot, std::unique_lock<std::mutex>& slot_lock, int64_t version) {
    // This store's own copy first (it updates checkpointed_ssts), then any other in this process.
    slot.changed.wait(slot_lock, [&] { return !slot.copy_in_flight; });
    if (slot.db) (void)slot.db->Close();
    slot.db.reset();
    slot.local_version = -1;
    slot.checkpointed_ssts.clear();

    std::unique_lock<std::mutex> dir_lock(slot.dir_state->mu);
    slot.dir_state->idle.wait(dir_lock, [&] { return slot.dir_state->copies_in_flight == 0; });
    // Holding the directory lock keeps a purge from deleting files mid-copy.
    CheckpointManifest manifest;
    if (version > 0) {
      SLUICE_ASSIGN_OR_RETURN(manifest, ReadManifest(slot.dir, version));
    }
    const std::string db_path = slot.db_path();
    std::error_code ec;
    fs::remove_all(db_path, ec);
    fs::create_directories(db_path, ec);
    if (ec) return Status::IOError("cannot create local RocksDB directory " + db_path + ": " + ec.message());
    const std::string manifest_path = slot.dir + "/" + ManifestFileName(version);
    for (const auto& f : manifest.files) {
      const std::string source = slot.dir + "/" + f.checkpoint_path;
      auto copied = CopyFile(source, db_path + "/" + f.local_name, /*durable=*/false);
      if (!copied.ok()) {
        if (copied.status().code() == StatusCode::kNotFound)
          return Status::Corruption("state checkpoint file " + source + " named by " + manifest_path + " is missing");
        return copied.status();
      }
      if (copied->size != f.size || copied->crc32 != f.crc32)
        return Status::Corruption("state checkpoint file " + source + " is corrupt: " +
                                  (copied->size != f.size
                                       ? "it is " + std::to_string(copied->size) + " bytes, " + manifest_path +
                                             " says " + std::to_string(f.size) + " (truncated?)"
                                       : std::string("its checksum does not match the one in ") + manifest_path));
    }
    dir_lock.unlock();

    auto db = core_->OpenDb(db_path);
    if (!db.ok()) return db.status().WithContext("the files of " + manifest_path + " do not form a RocksDB");
    slot.db = std::move(db).value();
    slot.local_version = version;
    slot.local_num_keys = manifest.num_keys;
    for (const auto& f : manifest.files)
      if (f.is_shared_sst()) slot.checkpointed_ssts.emplace(f.local_name, f);
    return Status::OK();
  }

  std::shared_ptr<ProviderCore> core_;
  std::mutex slots_mu_;
  std::map<std::string, std::shared_ptr<StoreSlot>> slots_;
};

const OptionSpec kOptions[] = {
    {"local_dir", OptionType::kPath, nullptr, false,
     "parent of the local RocksDB working directories (one per store, named after a hash of the checkpoint "
     "directory); default $TMPDIR/sluice-rocksdb or /tmp/sluice-rocksdb. Rebuilt from the checkpoint when needed"},
    {"async_checkpoint", OptionType::kBool, "false", false,
     "commit locally and copy the version into the checkpoint in the background (one copy in flight per store); "
     "the batch is recorded only once the copy is durable"},
    {"block_cache_mb", OptionType::kInt, "64", false,
     "size of the LRU block cache shared by every store of this provider (index and filter blocks included)"},
    {"write_buffer_mb", OptionType::kInt, "16", false, "memtable size of each store"},
    {"test_fail_upload_after", OptionType::kInt, nullptr, false,
     "TEST ONLY: checkpoint copies after this many (per provider) fail with an I/O error"},
    {"test_upload_delay_ms", OptionType::kInt, "0", false,
     "TEST ONLY: sleep this long before each checkpoint copy"},
};

}  // namespace
}  // namespace sluice::state_rocksdb

SLUICE_REGISTER_STATE_STORE("rocksdb", SLUICE_VERSION_STRING,
                            "RocksDB state per store in a local directory, checkpointed incrementally (shared, "
                            "reference-counted SST files), optionally asynchronously",
                            sluice::state_rocksdb::kOptions, sluice::state_rocksdb::RocksDbStateStoreProvider)
