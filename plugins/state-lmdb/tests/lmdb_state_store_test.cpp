// Tests of what is particular to the lmdb state store, beyond the shared
// conformance suite (tests/state_store_conformance_test.cpp): map growth for a
// batch larger than the initial map, the checkpoint file layout (a full copy
// every snapshot_interval versions, deltas between), restore into an empty
// local directory, a replay replacing the earlier attempt's files, purge, a
// stale or damaged local copy never being served, the empty key and the key
// size limit, option checks, and both crash points (in a child process killed
// by SIGKILL). The plugin is loaded from its shared library.

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

std::string Numbered(std::string_view prefix, int64_t number) {
  std::string out(prefix);
  out += std::to_string(number);
  return out;
}

// Commits version + 1 holding "v" = version + 1 + tag and "k<version + 1>" = tag.
Status CommitNext(StateStoreProvider& provider, const StateStoreId& id, int64_t version, const std::string& tag = "") {
  auto store = provider.Open(id, version);
  if (!store.ok()) return store.status();
  std::string next = std::to_string(version + 1);
  SLUICE_RETURN_IF_ERROR((*store)->Put("v", next + tag));
  SLUICE_RETURN_IF_ERROR((*store)->Put(Numbered("k", version + 1), tag));
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

// File names in a directory, sorted.
std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class LmdbStateStoreTest : public ::testing::Test {
 protected:
  // A provider whose local environments live in this test's directory.
  std::shared_ptr<StateStoreProvider> NewProvider(std::map<std::string, OptionValue> options = {}) {
    options.emplace("local_dir", local_dir());
    auto provider = MakeStateStore("lmdb", options);
    if (!provider.ok()) throw std::runtime_error(provider.status().ToString());
    return *provider;
  }

  std::string local_dir() const { return dir_ / "local"; }

  TempDir dir_;
  StateStoreId id_{dir_ / "state", "7", 3};
};

TEST_F(LmdbStateStoreTest, ABatchLargerThanTheInitialMapGrowsTheMap) {
  auto provider = NewProvider({{"initial_map_mb", int64_t{1}}, {"snapshot_interval", int64_t{2}}});
  Model expected;
  {
    auto store = provider->Open(id_, 0);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    // About 6 MiB of small values and one 3 MiB value, in a 1 MiB map.
    for (int k = 0; k < 3000; ++k) {
      std::string value(2048, static_cast<char>('a' + k % 26));
      ASSERT_TRUE((*store)->Put(Numbered("key", k), value).ok());
      expected[Numbered("key", k)] = value;
    }
    ASSERT_TRUE((*store)->Put("big", std::string(3 << 20, 'b')).ok());
    expected["big"] = std::string(3 << 20, 'b');
    ASSERT_TRUE((*store)->Remove("key7").ok());
    expected.erase("key7");
    std::string value;
    auto found = (*store)->Get("key2999", &value);
    ASSERT_TRUE(found.ok() && *found);
    EXPECT_EQ(value, expected["key2999"]);
    EXPECT_EQ((*store)->metrics().num_keys, 3000);
    auto committed = (*store)->Commit();
    ASSERT_TRUE(committed.ok()) << committed.status().ToString();
    EXPECT_GT((*store)->metrics().memory_used_bytes, 9 << 20);
  }
  // Version 1 is a delta, version 2 a full copy: both rebuild after a restart.
  ASSERT_TRUE(CommitNext(*provider, id_, 1).ok());
  expected["v"] = "2";
  expected["k2"] = "";
  provider.reset();
  auto restarted = NewProvider({{"initial_map_mb", int64_t{1}}, {"snapshot_interval", int64_t{2}}});
  auto v2 = ReadAll(*restarted, id_, 2);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_TRUE(*v2 == expected);
  fs::remove_all(local_dir());
  auto v1 = ReadAll(*NewProvider({{"initial_map_mb", int64_t{1}}}), id_, 1);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->size(), 3000u);
}

TEST_F(LmdbStateStoreTest, WritesAFullCopyEveryIntervalAndDeltasBetween) {
  {
    auto provider = NewProvider({{"snapshot_interval", int64_t{3}}});
    for (int64_t v = 0; v < 7; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  }
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"1.delta", "2.delta", "3.mdb", "4.delta", "5.delta", "6.mdb",
                                                        "7.delta"}));
  // A delta holds only its batch's changes.
  std::string delta = ReadFile(id_.Dir() + "/5.delta");
  EXPECT_EQ(delta.substr(0, 8), "SLUICELD");
  EXPECT_NE(delta.find("k5"), std::string::npos);
  EXPECT_EQ(delta.find("k4"), std::string::npos);
  std::string full_copy = ReadFile(id_.Dir() + "/6.mdb");
  EXPECT_EQ(full_copy.substr(full_copy.size() - 44, 8), "SLUICELS");
  for (int k = 1; k <= 6; ++k) EXPECT_NE(full_copy.find(Numbered("k", k)), std::string::npos) << k;

  TempDir other;
  StateStoreId every_version{other / "state", "0", 0};
  auto provider = NewProvider({{"snapshot_interval", int64_t{1}}});
  for (int64_t v = 0; v < 3; ++v) ASSERT_TRUE(CommitNext(*provider, every_version, v).ok());
  EXPECT_EQ(Names(every_version.Dir()), (std::vector<std::string>{"1.mdb", "2.mdb", "3.mdb"}));

  // By default a full copy every 10 versions, as the memory provider and Spark.
  StateStoreId by_default{other / "state", "1", 0};
  auto default_provider = NewProvider();
  for (int64_t v = 0; v < 11; ++v) ASSERT_TRUE(CommitNext(*default_provider, by_default, v).ok());
  EXPECT_EQ(Names(by_default.Dir()),
            (std::vector<std::string>{"1.delta", "10.mdb", "11.delta", "2.delta", "3.delta", "4.delta", "5.delta",
                                      "6.delta", "7.delta", "8.delta", "9.delta"}));
}

TEST_F(LmdbStateStoreTest, RestoresIntoAnEmptyLocalDirectory) {
  const std::map<std::string, OptionValue> options = {{"snapshot_interval", int64_t{2}}, {"keep_local", true}};
  {
    auto provider = NewProvider(options);
    for (int64_t v = 0; v < 5; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  }
  // Kept: one environment, named after a hash of the store directory.
  std::vector<std::string> environments = Names(local_dir());
  ASSERT_EQ(environments.size(), 1u);
  EXPECT_EQ(environments[0].size(), 16u);
  EXPECT_TRUE(fs::exists(local_dir() + "/" + environments[0] + "/data.mdb"));

  fs::remove_all(local_dir());
  auto provider = NewProvider(options);
  for (int64_t v : {5, 3, 4, 0, 5}) {
    auto model = ReadAll(*provider, id_, v);
    ASSERT_TRUE(model.ok()) << "version " << v << ": " << model.status().ToString();
    EXPECT_EQ(model->size(), v == 0 ? 0u : static_cast<size_t>(v + 1)) << v;
    if (v > 0) {
      EXPECT_EQ(model->at("v"), std::to_string(v));
    }
  }
  EXPECT_TRUE(fs::exists(local_dir() + "/" + environments[0] + "/data.mdb"));
  ASSERT_TRUE(CommitNext(*provider, id_, 5, " after restore").ok());
  auto v6 = ReadAll(*NewProvider(options), id_, 6);
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->at("v"), "6 after restore");
}

TEST_F(LmdbStateStoreTest, WithoutKeepLocalTheLocalEnvironmentGoesWithTheProvider) {
  auto provider = NewProvider();
  ASSERT_TRUE(CommitNext(*provider, id_, 0).ok());
  EXPECT_EQ(Names(local_dir()).size(), 1u);
  provider.reset();
  EXPECT_FALSE(fs::exists(local_dir()));
}

TEST_F(LmdbStateStoreTest, ReplayReplacesTheEarlierAttemptsFiles) {
  {
    auto provider = NewProvider({{"snapshot_interval", int64_t{2}}, {"keep_local", true}});
    for (int64_t v = 0; v < 6; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v, " first").ok());
  }
  // After a restart, batch 3 runs again with other input (and another interval).
  auto provider = NewProvider({{"snapshot_interval", int64_t{3}}, {"keep_local", true}});
  ASSERT_TRUE(CommitNext(*provider, id_, 3, " second").ok());
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"1.delta", "2.mdb", "3.delta", "4.delta"}));
  auto restarted = NewProvider({{"snapshot_interval", int64_t{3}}});
  auto v4 = ReadAll(*restarted, id_, 4);
  ASSERT_TRUE(v4.ok()) << v4.status().ToString();
  EXPECT_EQ(v4->at("v"), "4 second");
  EXPECT_EQ(v4->at("k4"), " second");
  EXPECT_EQ(v4->at("k3"), " first");
  EXPECT_EQ(restarted->Open(id_, 5).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(provider->Open(id_, 6).status().code(), StatusCode::kNotFound);
}

TEST_F(LmdbStateStoreTest, ACheckpointReplacedElsewhereIsNotServedFromTheLocalCopy) {
  // Two hosts in turn, each with its own local directory, share the checkpoint.
  auto first_host = NewProvider();
  for (int64_t v = 0; v < 3; ++v) ASSERT_TRUE(CommitNext(*first_host, id_, v, " first").ok());
  TempDir other_local;
  auto second_host = MakeStateStore("lmdb", {{"local_dir", other_local.path()}});
  ASSERT_TRUE(second_host.ok());
  ASSERT_TRUE(CommitNext(**second_host, id_, 2, " second").ok());
  // The first host's local environment still holds its own version 3.
  auto v3 = ReadAll(*first_host, id_, 3);
  ASSERT_TRUE(v3.ok()) << v3.status().ToString();
  EXPECT_EQ(v3->at("v"), "3 second");
}

TEST_F(LmdbStateStoreTest, PurgeKeepsTheNewestFullCopyAtOrBeforeTheOldestVersionToKeep) {
  auto provider = NewProvider({{"snapshot_interval", int64_t{3}}});
  for (int64_t v = 0; v < 10; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  WriteFile(id_.Dir() + "/.2.delta.tmp", "half a file");
  WriteFile(id_.Dir() + "/.11.mdb.tmp", "an attempt in progress");
  ASSERT_TRUE(provider->Purge(id_, 8).ok());
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{".11.mdb.tmp", "10.delta", "6.mdb", "7.delta", "8.delta",
                                                        "9.mdb"}));
  // Before the first full copy there is nothing to purge.
  TempDir other;
  StateStoreId young{other / "state", "0", 0};
  for (int64_t v = 0; v < 2; ++v) ASSERT_TRUE(CommitNext(*provider, young, v).ok());
  ASSERT_TRUE(provider->Open(young, 2).ok());  // aborted on destruction
  ASSERT_TRUE(provider->Purge(young, 2).ok());
  EXPECT_EQ(Names(young.Dir()), (std::vector<std::string>{"1.delta", "2.delta"}));

  auto restarted = NewProvider({{"snapshot_interval", int64_t{3}}});
  for (int64_t v : {6, 8, 10}) {
    auto model = ReadAll(*restarted, id_, v);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ(model->at("v"), std::to_string(v));
  }
  auto purged = restarted->Open(id_, 5);
  EXPECT_EQ(purged.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(purged.status().message(), "version 5 of state store " + id_.Dir() +
                                           " does not exist: there is no 5.mdb or 5.delta (never committed, or purged)");
}

TEST_F(LmdbStateStoreTest, AMissingDeltaIsNotFoundNamingIt) {
  auto provider = NewProvider({{"snapshot_interval", int64_t{5}}});
  for (int64_t v = 0; v < 8; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  fs::remove(id_.Dir() + "/6.delta");
  auto store = NewProvider({{"snapshot_interval", int64_t{5}}})->Open(id_, 7);
  ASSERT_EQ(store.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.status().message(), "version 7 of state store " + id_.Dir() + " needs 6.delta, which is missing");
}

TEST_F(LmdbStateStoreTest, ADamagedCheckpointFileIsDetectedEvenWhenTheLocalCopyMatchesIt) {
  const std::map<std::string, OptionValue> options = {{"keep_local", true}, {"snapshot_interval", int64_t{1}}};
  {
    auto provider = NewProvider(options);
    for (int64_t v = 0; v < 3; ++v) ASSERT_TRUE(CommitNext(*provider, id_, v).ok());
  }
  const std::string file = id_.Dir() + "/3.mdb";
  const std::string original = ReadFile(file);
  std::string garbled = original;
  garbled[garbled.size() / 2] ^= 0x5a;
  WriteFile(file, garbled);
  // After a restart the local copy is used only once the checkpoint it matches checks out.
  auto store = NewProvider(options)->Open(id_, 3);
  ASSERT_EQ(store.status().code(), StatusCode::kCorruption) << store.status().ToString();
  EXPECT_NE(store.status().message().find(file), std::string::npos) << store.status().ToString();
  WriteFile(file, original);
  auto v3 = ReadAll(*NewProvider(options), id_, 3);
  ASSERT_TRUE(v3.ok()) << v3.status().ToString();
  EXPECT_EQ(v3->at("v"), "3");
}

TEST_F(LmdbStateStoreTest, TheEmptyKeyIsStorableAndLongKeysAreRefused) {
  auto provider = NewProvider();
  auto store = provider->Open(id_, 0);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put("", "empty key").ok());
  ASSERT_TRUE((*store)->Put("a", "1").ok());
  ASSERT_TRUE((*store)->Put(std::string(510, 'x'), "longest").ok());
  Status too_long = (*store)->Put(std::string(511, 'x'), "too long");
  EXPECT_EQ(too_long.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.message().find("510 bytes"), std::string::npos) << too_long.ToString();
  std::string value;
  auto found = (*store)->Get("", &value);
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ(value, "empty key");
  std::vector<std::string> keys;
  ASSERT_TRUE((*store)->RangeScan("", "b", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  }).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"", "a"}));
  // A prefix longer than any key matches nothing; a `from` longer than any key still orders.
  int visited = 0;
  ASSERT_TRUE((*store)->PrefixScan(std::string(600, 'x'), [&](std::string_view, std::string_view) {
    return ++visited > 0;
  }).ok());
  EXPECT_EQ(visited, 0);
  keys.clear();
  ASSERT_TRUE((*store)->RangeScan(std::string(600, 'w'), "y", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  }).ok());
  EXPECT_EQ(keys, (std::vector<std::string>{std::string(510, 'x')}));
  ASSERT_TRUE((*store)->Commit().ok());
  auto v1 = ReadAll(*NewProvider(), id_, 1);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->at(""), "empty key");
}

TEST_F(LmdbStateStoreTest, AStoreOpenTwiceAtOnceIsRefused) {
  auto provider = NewProvider();
  auto first = provider->Open(id_, 0);
  ASSERT_TRUE(first.ok());
  auto second = provider->Open(id_, 0);
  EXPECT_EQ(second.status().code(), StatusCode::kInternal);
  EXPECT_NE(second.status().message().find("already open"), std::string::npos) << second.status().ToString();
  (*first)->Abort();
  EXPECT_TRUE(provider->Open(id_, 0).ok());
}

TEST_F(LmdbStateStoreTest, OptionsAreChecked) {
  auto interval = MakeStateStore("lmdb", {{"snapshot_interval", int64_t{0}}});
  ASSERT_EQ(interval.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(interval.status().message().find("snapshot_interval must be at least 1, got 0"), std::string::npos)
      << interval.status().ToString();
  auto map = MakeStateStore("lmdb", {{"initial_map_mb", int64_t{0}}});
  ASSERT_EQ(map.status().code(), StatusCode::kInvalidArgument);
}

// The crash points kill the process with SIGKILL, so they run in a death-test
// child that re-executes this binary: SLUICE_CRASH_AT is read once per
// process, so it must be set before the first crash point is reached. The
// re-executed child builds its own fixture, so it is told the parent's
// directory through the environment.
constexpr const char* kCrashDirVariable = "SLUICE_STATE_LMDB_TEST_DIR";

class LmdbStateStoreCrashTest : public LmdbStateStoreTest {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

  void CrashWhileCommitting(const char* crash_at, int64_t versions) {
    if (!std::getenv(kCrashDirVariable)) ::setenv(kCrashDirVariable, dir_.path().c_str(), 1);
    EXPECT_EXIT(
        {
          ::setenv("SLUICE_CRASH_AT", crash_at, 1);
          std::string parent_dir = std::getenv(kCrashDirVariable);
          StateStoreId id = id_;
          id.root_dir = parent_dir + "/state";
          if (parent_dir != dir_.path()) fs::remove_all(dir_.path());  // outlives the SIGKILL otherwise
          auto provider =
              MakeStateStore("lmdb", {{"local_dir", parent_dir + "/local"}, {"snapshot_interval", int64_t{1}}});
          if (!provider.ok()) std::exit(1);
          for (int64_t v = 0; v < versions; ++v) (void)CommitNext(**provider, id, v);
          std::exit(0);
        },
        ::testing::KilledBySignal(SIGKILL), "");
    ::unsetenv(kCrashDirVariable);
  }
};

TEST_F(LmdbStateStoreCrashTest, BeforeCommitLeavesNothingOfTheVersion) {
  CrashWhileCommitting("state-lmdb:before-commit@2", 3);
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"1.mdb"}));
  auto provider = NewProvider();
  EXPECT_EQ(provider->Open(id_, 2).status().code(), StatusCode::kNotFound);
  auto v1 = ReadAll(*provider, id_, 1);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(*v1, (Model{{"k1", ""}, {"v", "1"}}));
}

TEST_F(LmdbStateStoreCrashTest, AfterLocalCommitTheLocalCopyIsAheadAndNotServed) {
  CrashWhileCommitting("state-lmdb:after-local-commit@2", 3);
  EXPECT_EQ(Names(id_.Dir()), (std::vector<std::string>{"1.mdb"}));
  // The killed process left its local environment at version 2.
  EXPECT_EQ(Names(local_dir()).size(), 1u);
  auto provider = NewProvider();
  EXPECT_EQ(provider->Open(id_, 2).status().code(), StatusCode::kNotFound);
  auto v1 = ReadAll(*provider, id_, 1);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(*v1, (Model{{"k1", ""}, {"v", "1"}}));
  // The replayed batch commits version 2 again.
  ASSERT_TRUE(CommitNext(*provider, id_, 1, " replay").ok());
  auto v2 = ReadAll(*NewProvider(), id_, 2);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(v2->at("v"), "2 replay");
}

}  // namespace
}  // namespace sluice
