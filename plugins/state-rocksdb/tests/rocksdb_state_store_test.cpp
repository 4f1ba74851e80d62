// Tests of what is particular to the rocksdb state store, beyond the shared
// conformance suite (tests/state_store_conformance_test.cpp): the checkpoint
// layout, incremental copies (a second version copies only its new SSTs),
// reference counting on purge, restore into an empty local directory, a
// missing manifest, asynchronous checkpointing (Commit returns before the copy,
// AwaitDurable waits for it, the next Commit reports its wait, a failed copy is
// a sticky error) and the three crash points, run in a child process killed by
// SIGKILL. The plugin is loaded from its shared library.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using testing::MakeStateStore;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

using Model = std::map<std::string, std::string>;

#define ASSERT_OK(expr)                              \
  do {                                               \
    ::sluice::Status _status = (expr);               \
    ASSERT_TRUE(_status.ok()) << _status.ToString(); \
  } while (0)

std::shared_ptr<StateStoreProvider> NewProvider(const std::map<std::string, OptionValue>& options = {}) {
  auto provider = MakeStateStore("rocksdb", options);
  if (!provider.ok()) throw std::runtime_error(provider.status().ToString());
  return *provider;
}

// Opens `version`, writes `keys` keys "<tag><n>" with `value_size`-byte values, commits.
Status CommitKeys(StateStoreProvider& provider, const StateStoreId& id, int64_t version, const std::string& tag,
                  int keys, size_t value_size = 100) {
  auto store = provider.Open(id, version);
  if (!store.ok()) return store.status();
  for (int k = 0; k < keys; ++k)
    SLUICE_RETURN_IF_ERROR((*store)->Put(tag + std::to_string(k), std::string(value_size, static_cast<char>('a' + k % 26))));
  auto committed = (*store)->Commit();
  return committed.ok() ? Status::OK() : committed.status();
}

Result<Model> ReadAll(StateStoreProvider& provider, const StateStoreId& id, int64_t version) {
  auto store = provider.Open(id, version);
  if (!store.ok()) return store.status();
  Model model;
  SLUICE_RETURN_IF_ERROR((*store)->PrefixScan("", [&](std::string_view k, std::string_view v) {
    model.emplace(k, v);
    return true;
  }));
  (*store)->Abort();
  return model;
}

// Names in a directory, sorted; empty when it does not exist.
std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The checkpoint paths a manifest names ("sst/..." and "<V>/...").
std::set<std::string> ManifestPaths(const std::string& dir, int64_t version) {
  std::set<std::string> paths;
  std::istringstream in(ReadFile(dir + "/" + std::to_string(version) + ".manifest"));
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("file ")) paths.insert(line.substr(5, line.find(' ', 5) - 5));
  return paths;
}

std::set<std::string> SharedSsts(const std::string& dir) {
  std::set<std::string> paths;
  for (const auto& name : Names(dir + "/sst")) paths.insert("sst/" + name);
  return paths;
}

class RocksDbStateStoreTest : public ::testing::Test {
 protected:
  std::map<std::string, OptionValue> Options(std::map<std::string, OptionValue> extra = {}) const {
    extra.emplace("local_dir", dir_ / "local");
    return extra;
  }

  TempDir dir_;
  StateStoreId id_{dir_ / "state", "7", 3};
};

TEST_F(RocksDbStateStoreTest, CheckpointLayoutIsManifestsSharedSstsAndVersionDirs) {
  auto provider = NewProvider(Options());
  ASSERT_OK(CommitKeys(*provider, id_, 0, "a", 10));
  ASSERT_OK(CommitKeys(*provider, id_, 1, "b", 10));
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"1", "1.manifest", "2", "2.manifest", "sst"}));
  std::vector<std::string> version_files = Names(id_.Dir() + "/2");
  EXPECT_TRUE(std::count(version_files.begin(), version_files.end(), "CURRENT"));
  EXPECT_TRUE(std::any_of(version_files.begin(), version_files.end(),
                          [](const std::string& n) { return n.starts_with("MANIFEST-"); }));
  EXPECT_TRUE(std::none_of(version_files.begin(), version_files.end(),
                           [](const std::string& n) { return n.ends_with(".sst"); }));
  // The local working directory is under local_dir, named after a hash of Dir().
  EXPECT_EQ(Names(dir_ / "local").size(), 1u);
  // A closed provider leaves no working directory behind.
  ASSERT_OK(provider->Close());
  EXPECT_TRUE(Names(dir_ / "local").empty());
}

TEST_F(RocksDbStateStoreTest, SecondCheckpointCopiesOnlyTheNewSst) {
  auto provider = NewProvider(Options());
  ASSERT_OK(CommitKeys(*provider, id_, 0, "first", 200));
  const std::set<std::string> after_first = SharedSsts(id_.Dir());
  ASSERT_EQ(after_first.size(), 1u);
  const auto first_sst = *after_first.begin();
  const auto first_written = fs::last_write_time(id_.Dir() + "/" + first_sst);

  ASSERT_OK(CommitKeys(*provider, id_, 1, "second", 200));
  const std::set<std::string> after_second = SharedSsts(id_.Dir());
  ASSERT_EQ(after_second.size(), 2u);  // one new file, the first one shared
  EXPECT_TRUE(after_second.count(first_sst));
  EXPECT_EQ(fs::last_write_time(id_.Dir() + "/" + first_sst), first_written);
  EXPECT_EQ(ManifestPaths(id_.Dir(), 1).count(first_sst), 1u);
  std::set<std::string> v2 = ManifestPaths(id_.Dir(), 2);
  EXPECT_EQ(std::count_if(v2.begin(), v2.end(), [](const std::string& p) { return p.starts_with("sst/"); }), 2);
  EXPECT_TRUE(v2.count(first_sst));

  // A version without changes copies no SST at all.
  ASSERT_OK(CommitKeys(*provider, id_, 2, "none", 0));
  EXPECT_EQ(SharedSsts(id_.Dir()), after_second);
}

TEST_F(RocksDbStateStoreTest, PurgeDeletesSharedSstsNoRetainedManifestNames) {
  auto provider = NewProvider(Options());
  // Overwriting the same keys lets compaction replace earlier SSTs, so later
  // versions stop naming them.
  for (int64_t v = 0; v < 12; ++v) ASSERT_OK(CommitKeys(*provider, id_, v, "k", 300));
  ASSERT_OK(CommitKeys(*provider, id_, 12, "extra", 5));
  std::set<std::string> named_by_any;
  for (int64_t v = 1; v <= 13; ++v)
    for (const auto& p : ManifestPaths(id_.Dir(), v)) named_by_any.insert(p);
  std::set<std::string> named_by_kept;
  for (int64_t v = 10; v <= 13; ++v)
    for (const auto& p : ManifestPaths(id_.Dir(), v))
      if (p.starts_with("sst/")) named_by_kept.insert(p);
  EXPECT_GT(SharedSsts(id_.Dir()).size(), named_by_kept.size()) << "compaction left no SST to purge";

  ASSERT_OK(provider->Purge(id_, 10));
  // Exactly the SSTs some retained manifest names are left, and their version directories.
  EXPECT_EQ(SharedSsts(id_.Dir()), named_by_kept);
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"10", "10.manifest", "11", "11.manifest", "12", "12.manifest",
                                                         "13", "13.manifest", "sst"}));
  auto restarted = NewProvider(Options());
  for (int64_t v = 10; v <= 13; ++v) {
    auto model = ReadAll(*restarted, id_, v);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ(model->size(), v == 13 ? 305u : 300u);
  }
  EXPECT_EQ(restarted->Open(id_, 9).status().code(), StatusCode::kNotFound);
  // Purging past the newest version keeps the newest one.
  ASSERT_OK(provider->Purge(id_, 100));
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"13", "13.manifest", "sst"}));
  std::set<std::string> named_by_newest;
  for (const auto& p : ManifestPaths(id_.Dir(), 13))
    if (p.starts_with("sst/")) named_by_newest.insert(p);
  EXPECT_EQ(SharedSsts(id_.Dir()), named_by_newest);
}

TEST_F(RocksDbStateStoreTest, RestoresIntoAnEmptyLocalDirectory) {
  auto writer = NewProvider(Options());
  ASSERT_OK(CommitKeys(*writer, id_, 0, "a", 50));
  ASSERT_OK(CommitKeys(*writer, id_, 1, "b", 50));
  {
    auto store = writer->Open(id_, 2);
    ASSERT_TRUE(store.ok());
    ASSERT_OK((*store)->Remove("a7"));
    ASSERT_TRUE((*store)->Commit().ok());
  }

  const std::string fresh_local = dir_ / "fresh-local";
  auto reader = NewProvider({{"local_dir", fresh_local}});
  EXPECT_TRUE(Names(fresh_local).empty());
  auto model = ReadAll(*reader, id_, 3);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->size(), 99u);
  EXPECT_FALSE(model->count("a7"));
  EXPECT_EQ(model->at("b3"), std::string(100, 'd'));
  // The rebuilt DB lives in the new local directory and knows its key count.
  ASSERT_EQ(Names(fresh_local).size(), 1u);
  auto store = reader->Open(id_, 3);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->metrics().num_keys, 99);
  EXPECT_GT((*store)->metrics().memory_used_bytes, 0);
  (*store)->Abort();
}

TEST_F(RocksDbStateStoreTest, MissingManifestIsNotFoundNamingIt) {
  auto provider = NewProvider(Options());
  ASSERT_OK(CommitKeys(*provider, id_, 0, "a", 3));
  ASSERT_OK(CommitKeys(*provider, id_, 1, "b", 3));
  fs::remove(id_.Dir() + "/1.manifest");
  auto restarted = NewProvider(Options());
  auto missing = restarted->Open(id_, 1);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(id_.Dir() + "/1.manifest"), std::string::npos)
      << missing.status().ToString();
  EXPECT_TRUE(ReadAll(*restarted, id_, 2).ok());
}

TEST_F(RocksDbStateStoreTest, AsyncCommitReturnsBeforeTheCopyAndAwaitDurableWaitsForIt) {
  auto provider = NewProvider(Options({{"async_checkpoint", true}, {"test_upload_delay_ms", int64_t{300}}}));
  EXPECT_TRUE(provider->asynchronous());
  ASSERT_OK(CommitKeys(*provider, id_, 0, "a", 10));
  // Committed locally: the version opens at once, but is not in the checkpoint yet.
  EXPECT_FALSE(fs::exists(id_.Dir() + "/1.manifest"));
  auto model = ReadAll(*provider, id_, 1);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->size(), 10u);
  ASSERT_OK(provider->AwaitDurable(id_, 1));
  EXPECT_TRUE(fs::exists(id_.Dir() + "/1.manifest"));

  // The next commit waits for the copy before it, and reports the wait.
  ASSERT_OK(CommitKeys(*provider, id_, 1, "b", 10));
  auto store = provider->Open(id_, 2);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_OK((*store)->Put("c", "3"));
  ASSERT_TRUE((*store)->Commit().ok());
  EXPECT_GE((*store)->metrics().checkpoint_wait_ms, 150);
  EXPECT_GE((*store)->metrics().commit_time_ms, (*store)->metrics().checkpoint_wait_ms);

  // Close waits for the copy in flight.
  ASSERT_OK(provider->Close());
  EXPECT_TRUE(fs::exists(id_.Dir() + "/3.manifest"));
  auto restarted = NewProvider(Options());
  auto v3 = ReadAll(*restarted, id_, 3);
  ASSERT_TRUE(v3.ok()) << v3.status().ToString();
  EXPECT_EQ(v3->size(), 21u);
}

TEST_F(RocksDbStateStoreTest, FailedAsyncCopyIsAStickyError) {
  auto provider = NewProvider(Options({{"async_checkpoint", true}, {"test_fail_upload_after", int64_t{1}}}));
  ASSERT_OK(CommitKeys(*provider, id_, 0, "a", 3));
  ASSERT_OK(provider->AwaitDurable(id_, 1));
  // The second copy fails after Commit returned.
  ASSERT_OK(CommitKeys(*provider, id_, 1, "b", 3));
  Status durable = provider->AwaitDurable(id_, 2);
  EXPECT_EQ(durable.code(), StatusCode::kIOError);
  EXPECT_NE(durable.message().find("asynchronous checkpoint of version 2"), std::string::npos) << durable.ToString();
  EXPECT_NE(durable.message().find("test_fail_upload_after"), std::string::npos) << durable.ToString();
  EXPECT_EQ(provider->AwaitDurable(id_, 2).code(), StatusCode::kIOError);
  EXPECT_EQ(provider->Open(id_, 2).status().code(), StatusCode::kIOError);
  EXPECT_FALSE(fs::exists(id_.Dir() + "/2.manifest"));
}

TEST_F(RocksDbStateStoreTest, FailedCopyWhileTheNextBatchRunsFailsItsCommit) {
  auto provider = NewProvider(Options({{"async_checkpoint", true}, {"test_upload_delay_ms", int64_t{200}}}));
  ASSERT_OK(CommitKeys(*provider, id_, 0, "a", 3));
  ASSERT_OK(provider->AwaitDurable(id_, 1));
  // A real I/O failure: the shared SST directory is replaced by a file.
  fs::remove_all(id_.Dir() + "/sst");
  WriteFile(id_.Dir() + "/sst", "not a directory");
  ASSERT_OK(CommitKeys(*provider, id_, 1, "b", 3));
  auto store = provider->Open(id_, 2);  // the copy of version 2 is still running
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_OK((*store)->Put("c", "1"));
  auto committed = (*store)->Commit();
  ASSERT_FALSE(committed.ok());
  EXPECT_NE(committed.status().message().find("asynchronous checkpoint of version 2"), std::string::npos)
      << committed.status().ToString();
  EXPECT_NE(committed.status().message().find(id_.Dir() + "/sst"), std::string::npos) << committed.status().ToString();
  EXPECT_FALSE(provider->AwaitDurable(id_, 3).ok());
  EXPECT_FALSE(provider->Close().ok());
}

TEST_F(RocksDbStateStoreTest, FailedSyncCopyFailsTheCommitAndTheVersionStaysUncommitted) {
  auto provider = NewProvider(Options({{"test_fail_upload_after", int64_t{1}}}));
  EXPECT_FALSE(provider->asynchronous());
  ASSERT_OK(CommitKeys(*provider, id_, 0, "a", 3));
  Status failed = CommitKeys(*provider, id_, 1, "b", 3);
  EXPECT_EQ(failed.code(), StatusCode::kIOError) << failed.ToString();
  // The local DB went ahead of the checkpoint: the next open rebuilds it.
  EXPECT_EQ(provider->Open(id_, 2).status().code(), StatusCode::kNotFound);
  auto v1 = ReadAll(*provider, id_, 1);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->size(), 3u);
}

TEST_F(RocksDbStateStoreTest, OptionsAreChecked) {
  EXPECT_FALSE(MakeStateStore("rocksdb", {{"block_cache_mb", int64_t{0}}}).ok());
  EXPECT_FALSE(MakeStateStore("rocksdb", {{"write_buffer_mb", int64_t{-1}}}).ok());
  EXPECT_FALSE(MakeStateStore("rocksdb", {{"test_fail_upload_after", int64_t{-1}}}).ok());
}

TEST_F(RocksDbStateStoreTest, SecondOpenOfAnOpenStoreIsRefused) {
  auto provider = NewProvider(Options());
  auto first = provider->Open(id_, 0);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(provider->Open(id_, 0).status().code(), StatusCode::kAborted);
  (*first)->Abort();
  EXPECT_TRUE(provider->Open(id_, 0).ok());
}

// The crash points kill the process with SIGKILL, so they run in a death-test
// child that re-executes this binary: SLUICE_CRASH_AT is read once per
// process, so it must be set before the first crash point is reached. The
// child is told the parent's directory through the environment.
constexpr const char* kCrashRootVariable = "SLUICE_STATE_ROCKSDB_TEST_ROOT";

class RocksDbStateStoreCrashTest : public RocksDbStateStoreTest {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

  // In the child: commits versions 1..3 (five keys each) in the store under `root`.
  void CommitThreeVersions(const std::string& root, bool async) {
    StateStoreId id{root + "/state", id_.operator_id, id_.partition};
    auto provider = NewProvider({{"local_dir", root + "/local"}, {"async_checkpoint", async}});
    for (int64_t v = 0; v < 3; ++v) {
      (void)CommitKeys(*provider, id, v, std::string(1, static_cast<char>('a' + v)), 5);
      (void)provider->AwaitDurable(id, v + 1);
    }
  }

  // Commits versions 1..3 (keys "a", "b", "c"), crashing where `crash_at` says.
  void CrashWhileCommitting(const char* crash_at, bool async) {
    if (!std::getenv(kCrashRootVariable)) ::setenv(kCrashRootVariable, dir_.path().c_str(), 1);
    EXPECT_EXIT(
        {
          ::setenv("SLUICE_CRASH_AT", crash_at, 1);
          std::string root = std::getenv(kCrashRootVariable);
          if (root != dir_.path()) fs::remove_all(dir_.path());
          CommitThreeVersions(root, async);
          std::exit(0);
        },
        ::testing::KilledBySignal(SIGKILL), "");
    ::unsetenv(kCrashRootVariable);
  }

  void ExpectNewestVersion(int64_t newest) {
    auto provider = NewProvider(Options());
    EXPECT_EQ(provider->Open(id_, newest + 1).status().code(), StatusCode::kNotFound);
    auto model = ReadAll(*provider, id_, newest);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ(model->size(), static_cast<size_t>(5 * newest));
    // The replayed batch commits over whatever the crash left.
    ASSERT_OK(CommitKeys(*provider, id_, newest, "replay", 2));
    auto replayed = ReadAll(*NewProvider(Options()), id_, newest + 1);
    ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
    EXPECT_EQ(replayed->size(), static_cast<size_t>(5 * newest + 2));
  }
};

TEST_F(RocksDbStateStoreCrashTest, BeforeCommitLeavesNothingOfTheVersion) {
  CrashWhileCommitting("state-rocksdb:before-commit@2", false);
  ExpectNewestVersion(1);
}

TEST_F(RocksDbStateStoreCrashTest, AfterLocalCommitTheCheckpointLacksTheVersion) {
  CrashWhileCommitting("state-rocksdb:after-local-commit@2", false);
  ExpectNewestVersion(1);
}

TEST_F(RocksDbStateStoreCrashTest, AfterSstCopyTheVersionDoesNotExistWithoutItsManifest) {
  CrashWhileCommitting("state-rocksdb:after-sst-copy@2", false);
  EXPECT_FALSE(fs::exists(id_.Dir() + "/2.manifest"));
  EXPECT_EQ(SharedSsts(id_.Dir()).size(), 2u);  // version 2's SST was copied
  ExpectNewestVersion(1);
  // The copied but unreferenced SST goes at the next purge.
  auto provider = NewProvider(Options());
  ASSERT_OK(provider->Purge(id_, 2));
  std::set<std::string> named;
  for (const auto& p : ManifestPaths(id_.Dir(), 2))
    if (p.starts_with("sst/")) named.insert(p);
  EXPECT_EQ(SharedSsts(id_.Dir()), named);
}

TEST_F(RocksDbStateStoreCrashTest, AsyncCopyCrashAfterSstCopyLeavesTheEarlierVersion) {
  CrashWhileCommitting("state-rocksdb:after-sst-copy@3", true);
  ExpectNewestVersion(2);
}

}  // namespace
}  // namespace sluice
