// Tests of what is particular to the memory state store, beyond the shared
// conformance suite (tests/state_store_conformance_test.cpp): the file layout
// (<version>.delta, <version>.snapshot every snapshot_interval versions), the
// exact NotFound message for a missing delta, a replay after the interval
// changed leaving no stale snapshot behind, files of the wrong version,
// leftover temporary files, the option check, and both crash points, run in a
// child process killed by SIGKILL. The plugin is loaded from its shared library.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
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

std::shared_ptr<StateStoreProvider> NewProvider(int64_t snapshot_interval) {
  auto provider = MakeStateStore("memory", {{"snapshot_interval", snapshot_interval}});
  if (!provider.ok()) throw std::runtime_error(provider.status().ToString());
  return *provider;
}

// Commits version `version` + 1 holding key "v" = `version` + 1 and "k<version+1>".
Status CommitNext(StateStoreProvider& provider, const StateStoreId& id, int64_t version, const std::string& tag = "") {
  auto store = provider.Open(id, version);
  if (!store.ok()) return store.status();
  std::string next = std::to_string(version + 1);
  SLUICE_RETURN_IF_ERROR((*store)->Put("v", next + tag));
  SLUICE_RETURN_IF_ERROR((*store)->Put("k" + next, tag));
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

// File names in the store directory, sorted.
std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class MemoryStateStoreTest : public ::testing::Test {
 protected:
  TempDir dir_;
  StateStoreId id_{dir_ / "state", "7", 3};
};

TEST_F(MemoryStateStoreTest, WritesADeltaPerVersionAndASnapshotEveryInterval) {
  EXPECT_EQ(id_.Dir(), dir_ / "state/7/3");
  auto provider = NewProvider(5);
  for (int64_t v = 0; v < 11; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  EXPECT_EQ(Names(id_.Dir()),
            (std::vector<std::string>{"1.delta", "10.delta", "10.snapshot", "11.delta", "2.delta", "3.delta", "4.delta",
                                      "5.delta", "5.snapshot", "6.delta", "7.delta", "8.delta", "9.delta"}));
  // A delta holds only its batch's changes: version 7's names v and k7.
  std::string delta = ReadFile(id_.Dir() + "/7.delta");
  EXPECT_EQ(delta.substr(0, 8), "SLUICEST");
  EXPECT_NE(delta.find("k7"), std::string::npos);
  EXPECT_EQ(delta.find("k6"), std::string::npos);
  std::string snapshot = ReadFile(id_.Dir() + "/10.snapshot");
  for (int k = 1; k <= 10; ++k) EXPECT_NE(snapshot.find("k" + std::to_string(k)), std::string::npos) << k;
}

TEST_F(MemoryStateStoreTest, MissingDeltaIsNotFoundNamingIt) {
  auto provider = NewProvider(5);
  for (int64_t v = 0; v < 8; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  fs::remove(id_.Dir() + "/6.delta");
  auto restarted = NewProvider(5);
  auto store = restarted->Open(id_, 7);
  ASSERT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.status().message(),
            "version 7 of state store " + id_.Dir() + " needs 6.delta, which is missing");
  // Version 5 has its snapshot and needs no delta after it.
  ASSERT_TRUE(restarted->Open(id_, 5).ok());

  auto never = restarted->Open(id_, 9);
  ASSERT_EQ(never.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(never.status().message(), "version 9 of state store " + id_.Dir() +
                                          " does not exist: there is no 9.delta or 9.snapshot (never committed, or "
                                          "purged)");
}

TEST_F(MemoryStateStoreTest, ReplayRemovesTheEarlierAttemptsFilesEvenAfterTheIntervalChanged) {
  {
    auto provider = NewProvider(5);
    for (int64_t v = 0; v < 12; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v, " first").ok());
  }
  // Restarted with another interval, batch 9 runs again: 10 is no longer a
  // snapshot version, so the first attempt's 10.snapshot must not survive.
  auto provider = NewProvider(3);
  ASSERT_TRUE(CommitNext(*provider, id_, 9, " second").ok());
  EXPECT_EQ(Names(id_.Dir()),
            (std::vector<std::string>{"1.delta", "10.delta", "2.delta", "3.delta", "4.delta", "5.delta", "5.snapshot",
                                      "6.delta", "7.delta", "8.delta", "9.delta"}));
  auto restarted = NewProvider(3);
  auto v10 = ReadAll(*restarted, id_, 10);
  ASSERT_TRUE(v10.ok()) << v10.status().ToString();
  EXPECT_EQ(v10->at("v"), "10 second");
  EXPECT_EQ(v10->at("k10"), " second");
  EXPECT_EQ(v10->at("k9"), " first");
  EXPECT_EQ(restarted->Open(id_, 11).status().code(), StatusCode::kNotFound);
}

TEST_F(MemoryStateStoreTest, AFileOfAnotherVersionIsCorruption) {
  auto provider = NewProvider(10);
  for (int64_t v = 0; v < 3; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  fs::copy_file(id_.Dir() + "/2.delta", id_.Dir() + "/3.delta", fs::copy_options::overwrite_existing);
  auto store = NewProvider(10)->Open(id_, 3);
  ASSERT_EQ(store.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store.status().message(), "cannot load version 3 of state store " + id_.Dir() + ": state file " +
                                          id_.Dir() + "/3.delta is corrupt: it holds version 2, not 3");
}

TEST_F(MemoryStateStoreTest, LeftoverTemporaryFilesAreIgnoredAndPurged) {
  auto provider = NewProvider(2);
  for (int64_t v = 0; v < 6; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  WriteFile(id_.Dir() + "/.1.delta.tmp", "half a file");
  WriteFile(id_.Dir() + "/.7.delta.tmp", "an attempt in progress");
  auto v6 = ReadAll(*NewProvider(2), id_, 6);
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->size(), 7u);
  ASSERT_TRUE(provider->Purge(id_, 5).ok());
  EXPECT_EQ(Names(id_.Dir()),
            (std::vector<std::string>{".7.delta.tmp", "4.delta", "4.snapshot", "5.delta", "6.delta", "6.snapshot"}));
}

TEST_F(MemoryStateStoreTest, SnapshotIntervalMustBePositive) {
  auto provider = MakeStateStore("memory", {{"snapshot_interval", int64_t{0}}});
  ASSERT_EQ(provider.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(provider.status().message().find("snapshot_interval must be at least 1, got 0"), std::string::npos)
      << provider.status().ToString();
}

TEST_F(MemoryStateStoreTest, MemoryUsedCountsKeysAndValues) {
  auto provider = NewProvider(10);
  auto store = provider->Open(id_, 0);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put("key", std::string(1000, 'x')).ok());
  EXPECT_GE((*store)->metrics().memory_used_bytes, 1003);
  EXPECT_LT((*store)->metrics().memory_used_bytes, 1003 + 1000);
}

// The crash points kill the process with SIGKILL, so they run in a death-test
// child that re-executes this binary: SLUICE_CRASH_AT is read once per
// process, so it must be set before the first crash point is reached. The
// re-executed child builds its own fixture (another temporary directory), so
// it is told the parent's store root through the environment.
constexpr const char* kCrashRootVariable = "SLUICE_STATE_MEMORY_TEST_ROOT";

class MemoryStateStoreCrashTest : public MemoryStateStoreTest {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

  void CrashWhileCommitting(const char* crash_at, int64_t versions) {
    // Set by the parent only: the child inherits it and must not replace it.
    if (!std::getenv(kCrashRootVariable)) ::setenv(kCrashRootVariable, id_.root_dir.c_str(), 1);
    EXPECT_EXIT(
        {
          ::setenv("SLUICE_CRASH_AT", crash_at, 1);
          StateStoreId id = id_;
          id.root_dir = std::getenv(kCrashRootVariable);
          // The child's own directory would outlive its SIGKILL.
          if (id.root_dir != id_.root_dir) fs::remove_all(dir_.path());
          auto provider = NewProvider(2);
          for (int64_t v = 0; v < versions; ++v) (void)CommitNext(*provider, id, v);
          std::exit(0);
        },
        ::testing::KilledBySignal(SIGKILL), "");
    ::unsetenv(kCrashRootVariable);
  }
};

TEST_F(MemoryStateStoreCrashTest, BeforeCommitLeavesNothingOfTheVersion) {
  CrashWhileCommitting("state-memory:before-commit@2", 3);
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"1.delta"}));
  auto provider = NewProvider(2);
  EXPECT_EQ(provider->Open(id_, 2).status().code(), StatusCode::kNotFound);
  auto v1 = ReadAll(*provider, id_, 1);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(*v1, (Model{{"k1", ""}, {"v", "1"}}));
}

TEST_F(MemoryStateStoreCrashTest, AfterDeltaTheVersionLoadsWithoutItsSnapshot) {
  CrashWhileCommitting("state-memory:after-delta@2", 3);
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"1.delta", "2.delta"}));
  auto provider = NewProvider(2);
  auto v2 = ReadAll(*provider, id_, 2);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(*v2, (Model{{"k1", ""}, {"k2", ""}, {"v", "2"}}));
  // The replayed batch writes the snapshot the crash skipped.
  ASSERT_TRUE(CommitNext(*provider, id_, 1, " replay").ok());
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"1.delta", "2.delta", "2.snapshot"}));
}

}  // namespace
}  // namespace sluice
