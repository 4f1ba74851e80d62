// The lmdb state store's local environments (see local_environment.h) and the
// process-wide registry that shares one environment among every provider
// instance opening the same store.

#include "local_environment.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "checkpoint_files.h"

namespace sluice::state_lmdb {
namespace {

namespace fs = std::filesystem;

constexpr char kDataDatabase[] = "data";
constexpr char kMetaDatabase[] = "meta";
constexpr char kVersionKey[] = "version";
constexpr char kTokenKey[] = "token";
constexpr char kStoreDirKey[] = "store_dir";
constexpr char kDataFile[] = "data.mdb";
constexpr char kOwnerLockFile[] = "owner.lock";

MDB_val Val(const void* data, size_t size) { return MDB_val{size, const_cast<void*>(data)}; }
MDB_val Val(std::string_view s) { return Val(s.data(), s.size()); }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

std::string EncodeU64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::optional<uint64_t> DecodeU64(const MDB_val& v) {
  if (v.mv_size != 8) return std::nullopt;
  const auto* p = static_cast<const unsigned char*>(v.mv_data);
  uint64_t out = 0;
  for (int i = 0; i < 8; ++i) out |= static_cast<uint64_t>(p[i]) << (8 * i);
  return out;
}

// Process-wide: LMDB allows one open of an environment per process, whichever
// provider instance asks. Leaked on purpose so that no environment is closed by
// static destruction while a detached thread could still use it.
class EnvironmentRegistry {
 public:
  static EnvironmentRegistry& Instance() {
    static auto* registry = new EnvironmentRegistry();
    return *registry;
  }

  std::shared_ptr<LocalEnvironment> Acquire(const std::string& path, const std::string& store_dir,
                                            size_t initial_map_size, bool keep_local) {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& entry = entries_[path];
    if (!entry.env) entry.env = std::make_shared<LocalEnvironment>(path, store_dir, initial_map_size);
    if (keep_local) entry.env->keep_on_release = true;
    ++entry.users;
    return entry.env;
  }

  // Closing and removing happen under the registry lock, so a concurrent
  // Acquire of the same path never sees a directory being removed.
  void Release(const std::shared_ptr<LocalEnvironment>& env) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(env->path());
    if (it == entries_.end() || it->second.env != env || --it->second.users > 0) return;
    env->CloseEnvironment();
    if (!env->keep_on_release) {
      std::error_code ec;
      fs::remove_all(env->path(), ec);
      fs::remove(fs::path(env->path()).parent_path(), ec);  // the root too, once empty
    }
    entries_.erase(it);
  }

 private:
  struct Entry {
    std::shared_ptr<LocalEnvironment> env;
    int users = 0;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

uint64_t Fnv1a64(std::string_view s) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace

Status LmdbError(const std::string& what, int rc) {
  std::string message = what + ": " + mdb_strerror(rc);
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
    return Status::Corruption(message);
  return Status::IOError(message);
}

std::string LocalPathFor(const std::string& local_root, const std::string& store_dir) {
  std::error_code ec;
  fs::path absolute = fs::absolute(store_dir, ec);
  std::string key = ec ? store_dir : absolute.lexically_normal().string();
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(Fnv1a64(key)));
  return (fs::path(local_root) / hex).string();
}

LocalEnvironment::LocalEnvironment(std::string path, std::string store_dir, size_t initial_map_size)
    : path_(std::move(path)), store_dir_(std::move(store_dir)), map_size_(initial_map_size) {}

LocalEnvironment::~LocalEnvironment() {
  CloseEnvironment();
  if (owner_lock_fd_ >= 0) ::close(owner_lock_fd_);  // releases the flock
}

Status LocalEnvironment::LockOwner() {
  if (owner_lock_fd_ >= 0) return Status::OK();
  std::string lock_path = (fs::path(path_) / kOwnerLockFile).string();
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return Status::IOError("the local LMDB environment " + path_ + " of state store " + store_dir_ +
                             " is in use by another process");
    return Status::IOError("cannot lock " + lock_path + ": " + std::strerror(err));
  }
  owner_lock_fd_ = fd;
  return Status::OK();
}

Status LocalEnvironment::EnsureOpen(bool adopt) {
  if (env_) return Status::OK();
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec) return Status::IOError("cannot create the local directory " + path_ + ": " + ec.message());
  SLUICE_RETURN_IF_ERROR(LockOwner());
  bool foreign = false;
  SLUICE_RETURN_IF_ERROR(OpenOnce(adopt, &foreign));
  if (!foreign) return Status::OK();
  // Another store's environment: start this one empty.
  CloseEnvironment();
  fs::remove((fs::path(path_) / kDataFile).string(), ec);
  SLUICE_RETURN_IF_ERROR(OpenOnce(adopt, &foreign));
  return foreign ? Status::Internal("a fresh LMDB environment in " + path_ + " belongs to another store")
                 : Status::OK();
}

Status LocalEnvironment::OpenOnce(bool adopt, bool* foreign) {
  *foreign = false;
  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) {
    env_ = nullptr;
    return LmdbError("cannot create an LMDB environment", rc);
  }
  auto fail = [&](const std::string& what, int code) {
    CloseEnvironment();
    return LmdbError(what, code);
  };
  if ((rc = mdb_env_set_maxdbs(env_, 2)) != MDB_SUCCESS) return fail("cannot configure " + path_, rc);
  if ((rc = mdb_env_set_mapsize(env_, map_size_)) != MDB_SUCCESS) return fail("cannot set the map size of " + path_, rc);
  if ((rc = mdb_env_open(env_, path_.c_str(), MDB_NOLOCK, 0644)) != MDB_SUCCESS)
    return fail("cannot open the LMDB environment " + path_, rc);
  // LMDB raises the map size to what an existing data file needs.
  MDB_envinfo info;
  if (mdb_env_info(env_, &info) == MDB_SUCCESS && info.me_mapsize > map_size_) map_size_ = info.me_mapsize;
  max_key_size_ = static_cast<size_t>(mdb_env_get_maxkeysize(env_)) - 1;

  // A map just big enough for a restored copy may need to grow for the record below.
  for (;;) {
    MDB_txn* txn = nullptr;
    if ((rc = mdb_txn_begin(env_, nullptr, 0, &txn)) != MDB_SUCCESS)
      return fail("cannot begin a transaction on " + path_, rc);
    if ((rc = mdb_dbi_open(txn, kDataDatabase, MDB_CREATE, &data_dbi_)) != MDB_SUCCESS ||
        (rc = mdb_dbi_open(txn, kMetaDatabase, MDB_CREATE, &meta_dbi_)) != MDB_SUCCESS) {
      mdb_txn_abort(txn);
      if (rc != MDB_MAP_FULL) return fail("cannot open the databases of " + path_, rc);
    } else {
      MDB_val key = Val(std::string_view(kStoreDirKey)), value;
      rc = mdb_get(txn, meta_dbi_, &key, &value);
      if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return fail("cannot read the metadata of " + path_, rc);
      }
      bool recorded = rc == MDB_SUCCESS && View(value) == store_dir_;
      if (rc == MDB_SUCCESS && !recorded && !adopt) {
        mdb_txn_abort(txn);
        *foreign = true;
        return Status::OK();
      }
      MDB_val dir_value = Val(store_dir_);
      rc = recorded ? MDB_SUCCESS : mdb_put(txn, meta_dbi_, &key, &dir_value, 0);
      if (rc != MDB_SUCCESS) mdb_txn_abort(txn);
      else rc = mdb_txn_commit(txn);  // frees the transaction, committed or not
      if (rc == MDB_SUCCESS) return Status::OK();
      if (rc != MDB_MAP_FULL) return fail("cannot record the store directory in " + path_, rc);
    }
    Status grown = GrowMap();
    if (!grown.ok()) {
      CloseEnvironment();
      return grown;
    }
  }
}

void LocalEnvironment::CloseEnvironment() {
  if (env_) mdb_env_close(env_);
  env_ = nullptr;
}

Status LocalEnvironment::GrowMap() {
  size_t grown = map_size_ * 2;
  int rc = mdb_env_set_mapsize(env_, grown);
  if (rc != MDB_SUCCESS) return LmdbError("cannot grow the map of " + path_ + " to " + std::to_string(grown) + " bytes", rc);
  map_size_ = grown;
  return Status::OK();
}

Result<CommittedVersion> LocalEnvironment::ReadCommitted() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != MDB_SUCCESS) return LmdbError("cannot begin a read transaction on " + path_, rc);
  CommittedVersion committed;
  MDB_val key = Val(std::string_view(kVersionKey)), value;
  if (mdb_get(txn, meta_dbi_, &key, &value) == MDB_SUCCESS)
    committed.version = static_cast<int64_t>(DecodeU64(value).value_or(0));
  key = Val(std::string_view(kTokenKey));
  if (mdb_get(txn, meta_dbi_, &key, &value) == MDB_SUCCESS) committed.token = DecodeU64(value).value_or(0);
  mdb_txn_abort(txn);
  return committed;
}

int RecordCommittedVersion(MDB_txn* txn, MDB_dbi meta, const CommittedVersion& committed) {
  std::string version = EncodeU64(static_cast<uint64_t>(committed.version));
  std::string token = EncodeU64(committed.token);
  MDB_val version_key = Val(std::string_view(kVersionKey)), version_value = Val(version);
  MDB_val token_key = Val(std::string_view(kTokenKey)), token_value = Val(token);
  int rc = mdb_put(txn, meta, &version_key, &version_value, 0);
  return rc != MDB_SUCCESS ? rc : mdb_put(txn, meta, &token_key, &token_value, 0);
}

Status LocalEnvironment::ResetToEmpty() {
  for (;;) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != MDB_SUCCESS) return LmdbError("cannot begin a transaction on " + path_, rc);
    rc = mdb_drop(txn, data_dbi_, 0);
    if (rc != MDB_SUCCESS) {
      mdb_txn_abort(txn);
      return LmdbError("cannot empty " + path_, rc);
    }
    rc = RecordCommittedVersion(txn, meta_dbi_, CommittedVersion{});
    if (rc != MDB_SUCCESS) mdb_txn_abort(txn);
    else rc = mdb_txn_commit(txn);  // frees the transaction, committed or not
    if (rc == MDB_SUCCESS) return Status::OK();
    if (rc != MDB_MAP_FULL) return LmdbError("cannot commit to " + path_, rc);
    SLUICE_RETURN_IF_ERROR(GrowMap());
  }
}

Result<CommittedVersion> LocalEnvironment::ReplaceWithSnapshot(const std::string& snapshot_path, int64_t version) {
  CloseEnvironment();
  const std::string data_path = (fs::path(path_) / kDataFile).string();
  const std::string copy_path = data_path + ".restoring";
  auto trailer = VerifySnapshotFile(snapshot_path, version, &copy_path);
  if (!trailer.ok()) return trailer.status();
  if (::rename(copy_path.c_str(), data_path.c_str()) != 0) {
    Status st = Status::IOError("cannot rename " + copy_path + " to " + data_path + ": " + std::strerror(errno));
    ::unlink(copy_path.c_str());
    return st;
  }
  // Room for the batches to come without an immediate regrowth.
  map_size_ = std::max<size_t>(map_size_, static_cast<size_t>(trailer->data_length) * 2);
  SLUICE_RETURN_IF_ERROR(EnsureOpen(/*adopt=*/true));
  SLUICE_ASSIGN_OR_RETURN(CommittedVersion held, ReadCommitted());
  // The copy was taken right after the commit that recorded this version and token.
  if (held != CommittedVersion{version, trailer->token})
    return Status::Corruption("checkpoint file " + snapshot_path + " is corrupt: its environment records version " +
                              std::to_string(held.version) + ", not " + std::to_string(version) +
                              " with the token of its trailer");
  return held;
}

int64_t LocalEnvironment::MappedBytesInUse() const {
  if (!env_) return 0;
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env_, &info) != MDB_SUCCESS || mdb_env_stat(env_, &stat) != MDB_SUCCESS) return 0;
  return static_cast<int64_t>((info.me_last_pgno + 1) * stat.ms_psize);
}

EnvironmentLease::EnvironmentLease(const std::string& local_root, const std::string& store_dir,
                                   size_t initial_map_size, bool keep_local)
    : env_(EnvironmentRegistry::Instance().Acquire(LocalPathFor(local_root, store_dir), store_dir, initial_map_size,
                                                   keep_local)) {}

EnvironmentLease& EnvironmentLease::operator=(EnvironmentLease&& other) noexcept {
  if (this != &other) {
    Release();
    env_ = std::move(other.env_);
  }
  return *this;
}

void EnvironmentLease::Release() {
  if (!env_) return;
  EnvironmentRegistry::Instance().Release(env_);
  env_.reset();
}

}  // namespace sluice::state_lmdb
