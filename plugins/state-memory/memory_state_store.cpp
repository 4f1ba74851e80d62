// The "memory" state store provider, modelled on Spark's HDFS-backed state
// store: each store's state lives in memory as a sorted map, and every commit
// also writes the batch's changes to disk as a delta file, plus a full snapshot
// every `snapshot_interval` versions, so any committed version can be rebuilt
// after a restart.
//
// Guarantees:
//   - Commit of version V returns only once `<dir>/V.delta` is durable (written
//     under a temporary name, fsynced, renamed, directory fsynced); a crash at
//     any point leaves either the whole file or none of it. A commit replaces
//     the files of its own and of every later version left by earlier,
//     uncommitted attempts, before it writes anything.
//   - Open(V) rebuilds V from the newest snapshot at or below V and the deltas
//     after it, or reuses the provider's in-memory map when it already holds V
//     (the common case: batch N+1 opens what batch N committed), in O(1). A missing delta in that chain is NotFound naming it; a damaged
//     file (bad header, truncation, bad length, bad checksum) is Corruption
//     naming it. Version 0 is the empty state and needs no file.
//   - Abort (or dropping a store without Commit) undoes the batch through an
//     undo log holding the original value of each key the batch changed, so
//     the cached map is the opened version again without copying the map.
//   - Purge(id, K) removes only files older than the newest snapshot <= K, so
//     every version >= K still loads.
//   - Get copies into the caller's string and allocates nothing else.
// Crash points: state-memory:before-commit (nothing of the commit written),
// state-memory:after-delta (delta durable; the snapshot, if this version has
// one, not yet written). Memory: the whole state of every store a provider
// opened stays in memory (the latest version per store), as in Spark. One
// provider instance owns a store directory at a time: a second live instance
// writing the same directory would leave the first one's cached map stale.
// File format: state_file.h.

#include <algorithm>
#include <chrono>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/sluice.h"
#include "state_file.h"

namespace sluice::state_memory {
namespace {

constexpr const char* kPluginName = "memory";
constexpr int64_t kDefaultSnapshotInterval = 10;
// Approximate bytes a map entry costs beyond its key and value bytes: the tree
// node (links and color) and two std::string headers.
constexpr int64_t kEntryOverheadBytes = 96;

// std::less<> allows lookups by string_view without building a std::string.
using StateMap = std::map<std::string, std::string, std::less<>>;

// One version of one store, and what is known about its directory on disk.
struct LoadedState {
  int64_t version = 0;
  StateMap entries;
  int64_t payload_bytes = 0;  // sum of key and value sizes
  bool dir_exists = false;
  // The highest version with a file on disk; a commit at or below it must first
  // remove the files an earlier attempt left there.
  int64_t newest_version_on_disk = 0;

  void Set(std::string_view key, std::string_view value) {
    auto it = entries.lower_bound(key);
    if (it != entries.end() && it->first == key) {
      payload_bytes += static_cast<int64_t>(value.size()) - static_cast<int64_t>(it->second.size());
      it->second.assign(value);
    } else {
      entries.emplace_hint(it, key, value);
      payload_bytes += static_cast<int64_t>(key.size() + value.size());
    }
  }
  void Erase(std::string_view key) {
    auto it = entries.find(key);
    if (it == entries.end()) return;
    payload_bytes -= static_cast<int64_t>(it->first.size() + it->second.size());
    entries.erase(it);
  }
};

// The latest state the provider holds for each store directory. A store takes
// the state out while it is open and hands it back on Commit or Abort, so no
// two stores ever share a map.
class StateCache {
 public:
  std::optional<LoadedState> Take(const std::string& dir, int64_t version) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = latest_.find(dir);
    if (it == latest_.end() || it->second.version != version) return std::nullopt;
    std::optional<LoadedState> out(std::move(it->second));
    latest_.erase(it);
    return out;
  }

  void Put(const std::string& dir, LoadedState state) {
    std::lock_guard<std::mutex> lock(mu_);
    latest_.insert_or_assign(dir, std::move(state));
  }

  // For an aborted batch: a look at an old version must not evict the latest.
  void PutUnlessNewerHeld(const std::string& dir, LoadedState state) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = latest_.find(dir);
    if (it == latest_.end()) latest_.emplace(dir, std::move(state));
    else if (it->second.version <= state.version) it->second = std::move(state);
  }

  // After a purge, versions below `oldest_loadable` must not open from memory either.
  void DropOlderThan(const std::string& dir, int64_t oldest_loadable) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = latest_.find(dir);
    if (it != latest_.end() && it->second.version < oldest_loadable) latest_.erase(it);
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    latest_.clear();
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, LoadedState> latest_;
};

// No exception may reach the host (the provider is not wrapped by the SDK):
// turns one into a Status naming the plugin.
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

std::string VersionFile(const std::string& dir, const std::string& name) { return dir + "/" + name; }

Status CheckRecordSize(std::string_view what, size_t size) {
  if (size <= std::numeric_limits<uint32_t>::max()) return Status::OK();
  return Status::InvalidArgument("a state " + std::string(what) + " of " + std::to_string(size) +
                                 " bytes is larger than the 4 GiB the memory state store holds");
}

class MemoryStateStore final : public StateStore {
 public:
  MemoryStateStore(std::shared_ptr<StateCache> cache, std::string dir, LoadedState state, int64_t snapshot_interval)
      : cache_(std::move(cache)), dir_(std::move(dir)), state_(std::move(state)),
        snapshot_interval_(snapshot_interval) {}

  ~MemoryStateStore() override {
    if (!finished_) {
      try {
        Rollback();
      } catch (...) {
      }
    }
  }

  int64_t version() const override { return state_.version; }

  Result<bool> Get(std::string_view key, std::string* value) override {
    return Guarded([&]() -> Result<bool> {
      if (finished_) return Finished();
      auto it = state_.entries.find(key);
      if (it == state_.entries.end()) return false;
      value->assign(it->second);  // reuses the caller's capacity
      return true;
    });
  }

  Status Put(std::string_view key, std::string_view value) override {
    return Guarded([&]() -> Status {
      if (finished_) return Finished();
      SLUICE_RETURN_IF_ERROR(CheckRecordSize("key", key.size()));
      SLUICE_RETURN_IF_ERROR(CheckRecordSize("value", value.size()));
      auto it = state_.entries.lower_bound(key);
      auto undo = undo_.lower_bound(key);
      const bool first_change = undo == undo_.end() || undo->first != key;
      if (it != state_.entries.end() && it->first == key) {
        int64_t old_size = static_cast<int64_t>(it->second.size());
        // The first change of a key moves its original value into the undo log.
        if (first_change) {
          undo_payload_bytes_ += static_cast<int64_t>(key.size()) + old_size;
          undo_.emplace_hint(undo, std::string(key), Change{std::move(it->second), it});
        }
        it->second.assign(value);
        state_.payload_bytes += static_cast<int64_t>(value.size()) - old_size;
      } else {
        auto inserted = state_.entries.emplace_hint(it, key, value);
        if (first_change) {
          undo_payload_bytes_ += static_cast<int64_t>(key.size());
          undo_.emplace_hint(undo, std::string(key), Change{std::nullopt, inserted});
        } else {
          undo->second.now = inserted;  // removed earlier in this batch, back now
        }
        state_.payload_bytes += static_cast<int64_t>(key.size() + value.size());
      }
      return Status::OK();
    });
  }

  Status Remove(std::string_view key) override {
    return Guarded([&]() -> Status {
      if (finished_) return Finished();
      auto it = state_.entries.find(key);
      if (it == state_.entries.end()) return Status::OK();
      auto node = state_.entries.extract(it);
      int64_t size = static_cast<int64_t>(node.key().size() + node.mapped().size());
      state_.payload_bytes -= size;
      auto undo = undo_.lower_bound(node.key());
      if (undo == undo_.end() || undo->first != node.key()) {
        undo_payload_bytes_ += size;
        undo_.emplace_hint(undo, std::move(node.key()), Change{std::move(node.mapped()), state_.entries.end()});
      } else {
        undo->second.now = state_.entries.end();
      }
      return Status::OK();
    });
  }

  Status PrefixScan(std::string_view prefix, const StateScanFn& fn) override {
    return Guarded([&]() -> Status {
      if (finished_) return Finished();
      for (auto it = state_.entries.lower_bound(prefix); it != state_.entries.end(); ++it) {
        if (!std::string_view(it->first).starts_with(prefix)) break;
        if (!fn(it->first, it->second)) break;
      }
      return Status::OK();
    });
  }

  Status RangeScan(std::string_view from, std::string_view to, const StateScanFn& fn) override {
    return Guarded([&]() -> Status {
      if (finished_) return Finished();
      for (auto it = state_.entries.lower_bound(from); it != state_.entries.end(); ++it) {
        if (!(std::string_view(it->first) < to)) break;
        if (!fn(it->first, it->second)) break;
      }
      return Status::OK();
    });
  }

  Result<int64_t> Commit() override {
    return Guarded([&]() -> Result<int64_t> {
      if (finished_) return Finished();
      auto started = std::chrono::steady_clock::now();
      CrashPoint("state-memory:before-commit");
      int64_t new_version = state_.version + 1;
      Status written = WriteVersion(new_version);
      if (!written.ok()) {
        Rollback(/*after_failed_commit=*/true);
        return written.WithContext("cannot commit version " + std::to_string(new_version) + " of state store " +
                                   dir_);
      }
      state_.version = new_version;
      undo_.clear();
      undo_payload_bytes_ = 0;
      final_metrics_ = CurrentMetrics();
      final_metrics_.commit_time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - started)
                                          .count();
      finished_ = true;
      cache_->Put(dir_, std::move(state_));
      return new_version;
    });
  }

  void Abort() override {
    if (finished_) return;
    try {
      Rollback();
    } catch (...) {
      // Only allocation can fail here; the map was handed back or dropped either way.
    }
  }

  StateStoreMetrics metrics() const override { return finished_ ? final_metrics_ : CurrentMetrics(); }

 private:
  static Status Finished() {
    return Status::Internal("state store used after Commit or Abort; open the committed version again");
  }

  StateStoreMetrics CurrentMetrics() const {
    StateStoreMetrics m;
    m.num_keys = static_cast<int64_t>(state_.entries.size());
    m.memory_used_bytes = state_.payload_bytes + m.num_keys * kEntryOverheadBytes + undo_payload_bytes_ +
                          static_cast<int64_t>(undo_.size()) * kEntryOverheadBytes;
    return m;
  }

  // Restores the opened version from the undo log and hands the map back.
  // After a failed commit the files on disk may have changed (stale versions
  // removed), so the cache must take this state and its knowledge of them.
  void Rollback(bool after_failed_commit = false) {
    finished_ = true;
    for (auto& [key, change] : undo_) {
      if (change.original) state_.Set(key, *change.original);
      else state_.Erase(key);
    }
    undo_.clear();
    undo_payload_bytes_ = 0;
    final_metrics_ = CurrentMetrics();
    if (after_failed_commit) cache_->Put(dir_, std::move(state_));
    else cache_->PutUnlessNewerHeld(dir_, std::move(state_));
  }

  // Makes `version` durable: stale files first, then the delta, then the snapshot.
  Status WriteVersion(int64_t version) {
    if (!state_.dir_exists) {
      SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(dir_));
      state_.dir_exists = true;
    }
    if (state_.newest_version_on_disk >= version) SLUICE_RETURN_IF_ERROR(RemoveVersionsFrom(version));
    // From here on a file of `version` may exist, whatever happens next.
    state_.newest_version_on_disk = version;

    StateFileWriter delta(VersionFile(dir_, DeltaFileName(version)), StateFileKind::kDelta, version);
    SLUICE_RETURN_IF_ERROR(delta.Open());
    // The undo log holds exactly the keys this batch changed, in key order,
    // each with where its value is now.
    for (const auto& [key, change] : undo_) {
      if (change.now != state_.entries.end()) SLUICE_RETURN_IF_ERROR(delta.AddPut(key, change.now->second));
      else if (change.original) SLUICE_RETURN_IF_ERROR(delta.AddRemove(key));
    }
    SLUICE_RETURN_IF_ERROR(delta.Finish());
    CrashPoint("state-memory:after-delta");

    if (version % snapshot_interval_ != 0) return Status::OK();
    StateFileWriter snapshot(VersionFile(dir_, SnapshotFileName(version)), StateFileKind::kSnapshot, version);
    SLUICE_RETURN_IF_ERROR(snapshot.Open());
    for (const auto& [key, value] : state_.entries) SLUICE_RETURN_IF_ERROR(snapshot.AddPut(key, value));
    return snapshot.Finish();
  }

  // A replayed batch: the files of `version` and later belong to an earlier,
  // uncommitted history. A stale snapshot would otherwise win over the new delta.
  Status RemoveVersionsFrom(int64_t version) {
    SLUICE_ASSIGN_OR_RETURN(StateDirListing listing, ListStateDir(dir_));
    return RemoveFilesDurably(dir_, listing.PathsFrom(version));
  }

  std::shared_ptr<StateCache> cache_;
  std::string dir_;
  LoadedState state_;
  int64_t snapshot_interval_;
  // A key this batch changed: its value when the store was opened (nullopt:
  // absent) and its entry now (entries.end(): removed). Map iterators stay
  // valid until their entry is erased, and Remove resets `now` first.
  struct Change {
    std::optional<std::string> original;
    StateMap::iterator now;
  };
  std::map<std::string, Change, std::less<>> undo_;
  int64_t undo_payload_bytes_ = 0;
  bool finished_ = false;
  StateStoreMetrics final_metrics_;
};

class MemoryStateStoreProvider final : public StateStoreProvider {
 public:
  explicit MemoryStateStoreProvider(const StateStoreContext& ctx)
      : snapshot_interval_(ctx.options.GetInt("snapshot_interval", kDefaultSnapshotInterval)),
        cache_(std::make_shared<StateCache>()) {
    Status valid = Validate(ctx.options);
    if (!valid.ok()) throw std::invalid_argument(valid.message());
  }

  static Status Validate(const Options& options) {
    int64_t interval = options.GetInt("snapshot_interval", kDefaultSnapshotInterval);
    if (interval < 1)
      return Status::InvalidArgument("snapshot_interval must be at least 1, got " + std::to_string(interval));
    return Status::OK();
  }

  Result<std::unique_ptr<StateStore>> Open(const StateStoreId& id, int64_t version) override {
    return Guarded([&]() -> Result<std::unique_ptr<StateStore>> {
      if (version < 0)
        return Status::InvalidArgument("cannot open version " + std::to_string(version) + " of state store " +
                                       id.Dir() + ": versions start at 0");
      std::string dir = id.Dir();
      std::optional<LoadedState> state = cache_->Take(dir, version);
      if (!state) {
        SLUICE_ASSIGN_OR_RETURN(LoadedState loaded, LoadFromDisk(dir, version));
        state.emplace(std::move(loaded));
      }
      return std::unique_ptr<StateStore>(
          std::make_unique<MemoryStateStore>(cache_, std::move(dir), std::move(*state), snapshot_interval_));
    });
  }

  Status Purge(const StateStoreId& id, int64_t oldest_to_keep) override {
    return Guarded([&]() -> Status {
      std::string dir = id.Dir();
      SLUICE_ASSIGN_OR_RETURN(StateDirListing listing, ListStateDir(dir));
      int64_t base = listing.NewestSnapshotAtOrBefore(oldest_to_keep);
      // Without a snapshot at or before oldest_to_keep every delta is still needed.
      if (base == 0) return Status::OK();
      cache_->DropOlderThan(dir, base);
      return RemoveFilesDurably(dir, listing.PathsBefore(base));
    });
  }

  Status Close() override {
    cache_->Clear();
    return Status::OK();
  }

 private:
  // Newest snapshot at or before `version`, then every delta after it, in order.
  Result<LoadedState> LoadFromDisk(const std::string& dir, int64_t version) {
    SLUICE_ASSIGN_OR_RETURN(StateDirListing listing, ListStateDir(dir));
    LoadedState state;
    state.version = version;
    state.dir_exists = listing.dir_exists;
    state.newest_version_on_disk = listing.NewestVersion();
    if (version == 0) return state;

    std::string what = "version " + std::to_string(version) + " of state store " + dir;
    int64_t base = listing.NewestSnapshotAtOrBefore(version);
    if (base != version && !listing.HasDelta(version))
      return Status::NotFound(what + " does not exist: there is no " + DeltaFileName(version) + " or " +
                              SnapshotFileName(version) + " (never committed, or purged)");
    for (int64_t v = base + 1; v <= version; ++v)
      if (!listing.HasDelta(v)) return Status::NotFound(what + " needs " + DeltaFileName(v) + ", which is missing");

    if (base > 0) {
      // Snapshot keys arrive in ascending order, so each insert is at the end.
      Status read = ReadStateFile(VersionFile(dir, SnapshotFileName(base)), StateFileKind::kSnapshot, base,
                                  [&](std::string_view key, const std::string* value) {
                                    state.entries.emplace_hint(state.entries.end(), key, *value);
                                    state.payload_bytes += static_cast<int64_t>(key.size() + value->size());
                                    return Status::OK();
                                  });
      if (!read.ok()) return read.WithContext("cannot load " + what);
    }
    for (int64_t v = base + 1; v <= version; ++v) {
      Status read = ReadStateFile(VersionFile(dir, DeltaFileName(v)), StateFileKind::kDelta, v,
                                  [&](std::string_view key, const std::string* value) {
                                    if (value) state.Set(key, *value);
                                    else state.Erase(key);
                                    return Status::OK();
                                  });
      if (!read.ok()) return read.WithContext("cannot load " + what);
    }
    return state;
  }

  int64_t snapshot_interval_;
  std::shared_ptr<StateCache> cache_;
};

const OptionSpec kOptions[] = {
    {"snapshot_interval", OptionType::kInt, "10", false,
     "write a full snapshot every this many versions (at least 1); loading a version replays at most this many "
     "deltas after the newest snapshot"},
};

}  // namespace
}  // namespace sluice::state_memory

SLUICE_REGISTER_STATE_STORE("memory", SLUICE_VERSION_STRING,
                            "In-memory versioned state, made durable by a delta file per commit and periodic "
                            "snapshots (Spark's HDFS-backed state store)",
                            sluice::state_memory::kOptions, sluice::state_memory::MemoryStateStoreProvider)
