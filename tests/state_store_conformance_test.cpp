// Conformance suite for state store providers: every provider (and every
// option setting worth covering) must pass the same tests, written against the
// StateStore and StateStoreProvider interfaces only and loaded from the build's
// plugin directory through MakeStateStore, exactly as production loads them.
// The tests check what state_store.h promises: version 0 is empty, committed
// versions reopen exactly after a restart, abort keeps the opened version, a
// replayed version replaces the earlier attempt, scans are ordered bytewise and
// include the batch's own changes, purge keeps every version it must, and
// missing or damaged state is NotFound or Corruption naming what is wrong. A
// new provider joins by adding a line to INSTANTIATE_TEST_SUITE_P.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/test_support.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    ::sluice::Status _status = (expr);                    \
    ASSERT_TRUE(_status.ok()) << _status.ToString();      \
  } while (0)

#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL(SLUICE_CONCAT(_result_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, rexpr)        \
  auto tmp = (rexpr);                                     \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();       \
  lhs = std::move(tmp).value()

using Model = std::map<std::string, std::string>;
// One batch: key -> new value, or nullopt to remove it.
using Changes = std::vector<std::pair<std::string, std::optional<std::string>>>;

struct ProviderCase {
  std::string label;  // the test name suffix
  std::string provider;
  std::map<std::string, OptionValue> options;
};

void PrintTo(const ProviderCase& c, std::ostream* os) { *os << c.label; }

// Every key of the store in scan order, as the store reports it.
Result<std::vector<std::pair<std::string, std::string>>> ScanAll(StateStore& store, std::string_view prefix = "") {
  std::vector<std::pair<std::string, std::string>> rows;
  Status st = store.PrefixScan(prefix, [&](std::string_view k, std::string_view v) {
    rows.emplace_back(std::string(k), std::string(v));
    return true;
  });
  if (!st.ok()) return st;
  return rows;
}

Result<std::vector<std::pair<std::string, std::string>>> ScanRange(StateStore& store, std::string_view from,
                                                                   std::string_view to) {
  std::vector<std::pair<std::string, std::string>> rows;
  Status st = store.RangeScan(from, to, [&](std::string_view k, std::string_view v) {
    rows.emplace_back(std::string(k), std::string(v));
    return true;
  });
  if (!st.ok()) return st;
  return rows;
}

// prefix + number, built piecewise: g++ 12 warns falsely (-Wrestrict) on "k" + std::to_string(v) in some spots.
std::string Numbered(std::string_view prefix, int64_t number) {
  std::string out(prefix);
  out += std::to_string(number);
  return out;
}

std::vector<std::pair<std::string, std::string>> Rows(const Model& model) { return {model.begin(), model.end()}; }

void Apply(const Changes& changes, Model* model) {
  for (const auto& [key, value] : changes) {
    if (value) (*model)[key] = *value;
    else model->erase(key);
  }
}

Status ApplyToStore(const Changes& changes, StateStore& store) {
  for (const auto& [key, value] : changes) {
    Status st = value ? store.Put(key, *value) : store.Remove(key);
    if (!st.ok()) return st;
  }
  return Status::OK();
}

// Regular files below `dir`, sorted: what a provider keeps on disk.
std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

class StateStoreConformance : public ::testing::TestWithParam<ProviderCase> {
 protected:
  StateStoreId Id(const std::string& operator_id = "0", int partition = 0) const {
    return StateStoreId{dir_ / "state", operator_id, partition};
  }

  // A new provider instance: nothing of an earlier one is in its memory, as
  // after a restart.
  Result<std::shared_ptr<StateStoreProvider>> NewProvider() const {
    return MakeStateStore(GetParam().provider, GetParam().options);
  }

  // Opens `version`, applies `changes`, commits, and checks the new version number.
  static Status CommitBatch(StateStoreProvider& provider, const StateStoreId& id, int64_t version,
                            const Changes& changes) {
    auto store = provider.Open(id, version);
    if (!store.ok()) return store.status();
    SLUICE_RETURN_IF_ERROR(ApplyToStore(changes, **store));
    auto committed = (*store)->Commit();
    if (!committed.ok()) return committed.status();
    if (*committed != version + 1)
      return Status::Internal("Commit of version " + std::to_string(version) + " returned " +
                              std::to_string(*committed));
    return Status::OK();
  }

  // The whole content of `version`, read by a scan; Get must agree on every key.
  static Result<Model> ReadVersion(StateStoreProvider& provider, const StateStoreId& id, int64_t version) {
    auto store = provider.Open(id, version);
    if (!store.ok()) return store.status();
    if ((*store)->version() != version) return Status::Internal("opened store reports another version");
    auto rows = ScanAll(**store);
    if (!rows.ok()) return rows.status();
    Model model;
    std::string value = "left over from an earlier Get";
    for (const auto& [key, expected] : *rows) {
      if (!model.emplace(key, expected).second) return Status::Internal("scan returned a key twice: " + key);
      auto found = (*store)->Get(key, &value);
      if (!found.ok()) return found.status();
      if (!*found || value != expected) return Status::Internal("Get disagrees with the scan on key " + key);
    }
    (*store)->Abort();
    return model;
  }

  // Commits `batches` one after another from the last version of `history`,
  // appending the expected content of each new version to it.
  static Status CommitEach(StateStoreProvider& provider, const StateStoreId& id, const std::vector<Changes>& batches,
                           std::vector<Model>* history) {
    for (const auto& batch : batches) {
      int64_t version = static_cast<int64_t>(history->size()) - 1;
      SLUICE_RETURN_IF_ERROR(CommitBatch(provider, id, version, batch));
      history->push_back(history->back());
      Apply(batch, &history->back());
    }
    return Status::OK();
  }

  // Every version in [from, to] holds exactly what `history` says.
  static void ExpectVersions(StateStoreProvider& provider, const StateStoreId& id, const std::vector<Model>& history,
                             int64_t from, int64_t to) {
    for (int64_t v = from; v <= to; ++v) {
      auto model = ReadVersion(provider, id, v);
      ASSERT_TRUE(model.ok()) << "version " << v << ": " << model.status().ToString();
      ASSERT_EQ(*model, history[v]) << "version " << v;
    }
  }

  // Four versions of 40 keys each with 100-byte values: files worth damaging.
  Result<Model> CommitFourVersions() const {
    auto provider = NewProvider();
    if (!provider.ok()) return provider.status();
    Model model;
    for (int64_t v = 0; v < 4; ++v) {
      Changes batch;
      for (int k = 0; k < 40; ++k)
        batch.emplace_back("key" + std::to_string(k * 4 + v), std::string(100, static_cast<char>('a' + v)));
      SLUICE_RETURN_IF_ERROR(CommitBatch(**provider, Id(), v, batch));
      Apply(batch, &model);
    }
    SLUICE_RETURN_IF_ERROR((*provider)->Close());
    return model;
  }

  TempDir dir_;
};

TEST_P(StateStoreConformance, VersionZeroIsEmpty) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  ASSERT_OK_AND_ASSIGN(auto store, provider->Open(Id(), 0));
  EXPECT_EQ(store->version(), 0);
  std::string value = "untouched";
  ASSERT_OK_AND_ASSIGN(bool found, store->Get("a", &value));
  EXPECT_FALSE(found);
  ASSERT_OK_AND_ASSIGN(auto rows, ScanAll(*store));
  EXPECT_TRUE(rows.empty());
  ASSERT_OK_AND_ASSIGN(auto range, ScanRange(*store, "", "\xff\xff"));
  EXPECT_TRUE(range.empty());
  EXPECT_EQ(store->metrics().num_keys, 0);
  ASSERT_OK_AND_ASSIGN(int64_t committed, store->Commit());
  EXPECT_EQ(committed, 1);

  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ASSERT_OK_AND_ASSIGN(Model v1, ReadVersion(*restarted, Id(), 1));
  EXPECT_TRUE(v1.empty());
  ASSERT_OK_AND_ASSIGN(Model v0, ReadVersion(*restarted, Id(), 0));
  EXPECT_TRUE(v0.empty());
}

TEST_P(StateStoreConformance, CommittedVersionsReopenExactlyAfterRestart) {
  const std::string big(200 * 1024, 'x');
  const std::vector<Changes> batches = {
      {{"a", "1"}, {"b", "2"}, {std::string("\x00k\xff", 3), std::string("\x00v", 2)}, {"empty", ""}},
      {{"a", "10"}, {"b", std::nullopt}, {"c", big}},
      {{"zz", std::nullopt}, {"a", std::nullopt}, {"empty", "now set"}},
      {},  // a batch without changes still makes a version
      {{"b", "again"}, {"b", "and again"}, {"c", std::nullopt}, {"c", "back"}},
  };
  std::vector<Model> history(1);
  {
    ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
    ASSERT_OK(CommitEach(*provider, Id(), batches, &history));
    ExpectVersions(*provider, Id(), history, 5, 5);
  }
  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ExpectVersions(*restarted, Id(), history, 0, 5);
  EXPECT_EQ(history[5], (Model{{std::string("\x00k\xff", 3), std::string("\x00v", 2)},
                               {"b", "and again"},
                               {"c", "back"},
                               {"empty", "now set"}}));

  // Get copies into the caller's string, replacing what it held, and tells an
  // empty value from an absent key.
  ASSERT_OK_AND_ASSIGN(auto store, restarted->Open(Id(), 2));
  std::string value = "a longer value left in the buffer";
  ASSERT_OK_AND_ASSIGN(bool found, store->Get("empty", &value));
  EXPECT_TRUE(found);
  EXPECT_EQ(value, "");
  ASSERT_OK_AND_ASSIGN(found, store->Get("c", &value));
  EXPECT_TRUE(found);
  EXPECT_EQ(value, big);
  ASSERT_OK_AND_ASSIGN(found, store->Get("b", &value));
  EXPECT_FALSE(found);
  store->Abort();
}

TEST_P(StateStoreConformance, GetSeesTheBatchsOwnChanges) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  ASSERT_OK_AND_ASSIGN(auto store, provider->Open(Id(), 0));
  std::string value;
  ASSERT_OK(store->Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(bool found, store->Get("a", &value));
  EXPECT_TRUE(found);
  EXPECT_EQ(value, "1");
  ASSERT_OK(store->Put("a", "2"));
  ASSERT_OK_AND_ASSIGN(found, store->Get("a", &value));
  EXPECT_EQ(value, "2");
  ASSERT_OK(store->Remove("a"));
  ASSERT_OK_AND_ASSIGN(found, store->Get("a", &value));
  EXPECT_FALSE(found);
  ASSERT_OK(store->Remove("a"));  // removing an absent key is not an error
  ASSERT_OK(store->Put("a", "3"));
  ASSERT_OK_AND_ASSIGN(int64_t committed, store->Commit());
  EXPECT_EQ(committed, 1);

  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ASSERT_OK_AND_ASSIGN(Model v1, ReadVersion(*restarted, Id(), 1));
  EXPECT_EQ(v1, (Model{{"a", "3"}}));
}

TEST_P(StateStoreConformance, AbortLeavesTheOpenedVersionIntact) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  ASSERT_OK(CommitBatch(*provider, Id(), 0, {{"a", "1"}, {"b", "2"}}));
  {
    ASSERT_OK_AND_ASSIGN(auto store, provider->Open(Id(), 1));
    ASSERT_OK(store->Put("a", "changed"));
    ASSERT_OK(store->Remove("b"));
    ASSERT_OK(store->Put("c", "new"));
    ASSERT_OK(store->Put("c", "newer"));
    ASSERT_OK(store->Remove("c"));
    ASSERT_OK(store->Put("d", "new"));
    store->Abort();
  }
  const Model v1{{"a", "1"}, {"b", "2"}};
  ASSERT_OK_AND_ASSIGN(Model same_provider, ReadVersion(*provider, Id(), 1));
  EXPECT_EQ(same_provider, v1);
  EXPECT_EQ(provider->Open(Id(), 2).status().code(), StatusCode::kNotFound);
  {
    ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
    ASSERT_OK_AND_ASSIGN(Model after_restart, ReadVersion(*restarted, Id(), 1));
    EXPECT_EQ(after_restart, v1);
    EXPECT_EQ(restarted->Open(Id(), 2).status().code(), StatusCode::kNotFound);
  }

  // Nothing of the aborted batch leaks into the next commit.
  ASSERT_OK(CommitBatch(*provider, Id(), 1, {{"e", "5"}}));
  const Model v2{{"a", "1"}, {"b", "2"}, {"e", "5"}};
  ASSERT_OK_AND_ASSIGN(Model same_provider_v2, ReadVersion(*provider, Id(), 2));
  EXPECT_EQ(same_provider_v2, v2);
  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ASSERT_OK_AND_ASSIGN(Model after_restart_v2, ReadVersion(*restarted, Id(), 2));
  EXPECT_EQ(after_restart_v2, v2);
}

TEST_P(StateStoreConformance, ReplayedVersionReplacesTheFirstAttempt) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  std::vector<Model> history(1);
  std::vector<Changes> first_attempts;
  for (int64_t v = 0; v < 12; ++v)
    first_attempts.push_back({{Numbered("k", v), Numbered("first ", v)}, {Numbered("k", v - 2), std::nullopt}});
  ASSERT_OK(CommitEach(*provider, Id(), first_attempts, &history));

  // Batch 9 runs again after a failure: it opens 9 and commits 10 with other changes.
  const Changes replay = {{"replayed", "yes"}, {"k3", "restored"}, {"k8", std::nullopt}};
  ASSERT_OK(CommitBatch(*provider, Id(), 9, replay));
  Model v10 = history[9];
  Apply(replay, &v10);
  ASSERT_OK_AND_ASSIGN(Model same_provider, ReadVersion(*provider, Id(), 10));
  EXPECT_EQ(same_provider, v10);
  {
    ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
    ASSERT_OK_AND_ASSIGN(Model after_restart, ReadVersion(*restarted, Id(), 10));
    EXPECT_EQ(after_restart, v10);
  }

  // The new history goes on from the replayed version.
  ASSERT_OK(CommitBatch(*provider, Id(), 10, {{"after", "1"}}));
  Model v11 = v10;
  v11["after"] = "1";
  {
    ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
    ASSERT_OK_AND_ASSIGN(Model after_restart, ReadVersion(*restarted, Id(), 11));
    EXPECT_EQ(after_restart, v11);
  }

  // Version 12 committed, then a crash before the batch was recorded: the
  // restarted query runs batch 11 again with other input.
  ASSERT_OK(CommitBatch(*provider, Id(), 11, {{"attempt", "one"}, {"after", std::nullopt}}));
  provider.reset();
  {
    ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
    ASSERT_OK(CommitBatch(*restarted, Id(), 11, {{"attempt", "two"}}));
  }
  Model v12 = v11;
  v12["attempt"] = "two";
  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ASSERT_OK_AND_ASSIGN(Model after_restart, ReadVersion(*restarted, Id(), 12));
  EXPECT_EQ(after_restart, v12);
}

TEST_P(StateStoreConformance, ScansAreInKeyOrderAndSeeUncommittedChanges) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  ASSERT_OK(CommitBatch(*provider, Id(), 0,
                        {{"a1", "1"}, {"a2", "2"}, {"a3", "3"}, {"b1", "4"}, {"c", "5"},
                         {"\x7f", "x"}, {"\x80", "y"}, {"\xff", "z"}, {"\xff\xff", "zz"}}));
  using Rows = std::vector<std::pair<std::string, std::string>>;
  const Rows all = {{"a", "p"},  {"a1", "1"},   {"a25", "new"}, {"a3", "3b"},  {"b0", "6"},
                    {"b1", "4"}, {"\x7f", "x"}, {"\x80", "y"},  {"\xff", "z"}, {"\xff\xff", "zz"}};
  auto check_scans = [&](StateStore& store) {
    ASSERT_OK_AND_ASSIGN(Rows everything, ScanAll(store));
    EXPECT_EQ(everything, all);
    ASSERT_OK_AND_ASSIGN(Rows prefix_a, ScanAll(store, "a"));
    EXPECT_EQ(prefix_a, (Rows{{"a", "p"}, {"a1", "1"}, {"a25", "new"}, {"a3", "3b"}}));
    ASSERT_OK_AND_ASSIGN(Rows prefix_a2, ScanAll(store, "a2"));
    EXPECT_EQ(prefix_a2, (Rows{{"a25", "new"}}));
    ASSERT_OK_AND_ASSIGN(Rows prefix_ff, ScanAll(store, "\xff"));
    EXPECT_EQ(prefix_ff, (Rows{{"\xff", "z"}, {"\xff\xff", "zz"}}));
    ASSERT_OK_AND_ASSIGN(Rows prefix_c, ScanAll(store, "c"));
    EXPECT_TRUE(prefix_c.empty());
    ASSERT_OK_AND_ASSIGN(Rows range, ScanRange(store, "a25", "b1"));
    EXPECT_EQ(range, (Rows{{"a25", "new"}, {"a3", "3b"}, {"b0", "6"}}));
    ASSERT_OK_AND_ASSIGN(Rows removed_gap, ScanRange(store, "a2", "a3"));
    EXPECT_EQ(removed_gap, (Rows{{"a25", "new"}}));
    // Bytes compare unsigned: 0x7f sorts before 0x80.
    ASSERT_OK_AND_ASSIGN(Rows unsigned_order, ScanRange(store, "b", "\x80"));
    EXPECT_EQ(unsigned_order, (Rows{{"b0", "6"}, {"b1", "4"}, {"\x7f", "x"}}));
    ASSERT_OK_AND_ASSIGN(Rows empty_range, ScanRange(store, "b1", "b1"));
    EXPECT_TRUE(empty_range.empty());
    ASSERT_OK_AND_ASSIGN(Rows reversed_range, ScanRange(store, "c", "a"));
    EXPECT_TRUE(reversed_range.empty());
    // Returning false stops the scan.
    int visited = 0;
    ASSERT_OK(store.PrefixScan("", [&](std::string_view, std::string_view) { return ++visited < 2; }));
    EXPECT_EQ(visited, 2);
    visited = 0;
    ASSERT_OK(store.RangeScan("a", "\xff", [&](std::string_view, std::string_view) { return ++visited < 3; }));
    EXPECT_EQ(visited, 3);
  };

  ASSERT_OK_AND_ASSIGN(auto store, provider->Open(Id(), 1));
  ASSERT_OK(store->Put("a25", "new"));
  ASSERT_OK(store->Remove("a2"));
  ASSERT_OK(store->Put("a3", "3b"));
  ASSERT_OK(store->Put("b0", "6"));
  ASSERT_OK(store->Remove("c"));
  ASSERT_OK(store->Put("a", "p"));
  check_scans(*store);
  ASSERT_OK_AND_ASSIGN(int64_t committed, store->Commit());
  EXPECT_EQ(committed, 2);

  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ASSERT_OK_AND_ASSIGN(auto reopened, restarted->Open(Id(), 2));
  check_scans(*reopened);
  reopened->Abort();
}

TEST_P(StateStoreConformance, RandomBatchesAcrossSnapshotsMatchAModel) {
  constexpr int kBatches = 320;
  constexpr int kKeys = 120;
  std::mt19937 rng(20240611);
  auto random_key = [&] {
    int k = static_cast<int>(rng() % kKeys);
    // Some keys carry bytes that test ordering and length handling.
    if (k % 10 == 0) return std::string("\x00\xfe", 2) + std::to_string(k);
    return "key" + std::to_string(k);
  };
  auto random_value = [&] {
    size_t size = rng() % 4 == 0 ? 0 : rng() % 60;
    std::string value(size, '\0');
    for (auto& c : value) c = static_cast<char>(rng() % 256);
    return value;
  };

  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  std::vector<Model> history(1);
  int64_t version = 0;
  for (int batch = 0; batch < kBatches; ++batch) {
    if (batch % 53 == 52) {
      ASSERT_OK_AND_ASSIGN(provider, NewProvider());  // a restart
    }
    if (batch % 41 == 40) {
      // A look at an older version in between.
      int64_t older = static_cast<int64_t>(rng() % (version + 1));
      ASSERT_OK_AND_ASSIGN(Model model, ReadVersion(*provider, Id(), older));
      ASSERT_EQ(model, history[older]) << "version " << older;
    }
    ASSERT_OK_AND_ASSIGN(auto store, provider->Open(Id(), version));
    Model working = history[version];
    int ops = static_cast<int>(rng() % 25);
    std::string value;
    for (int op = 0; op < ops; ++op) {
      std::string key = random_key();
      switch (rng() % 5) {
        case 0:
        case 1:
        case 2: {
          std::string v = random_value();
          ASSERT_OK(store->Put(key, v));
          working[key] = v;
          break;
        }
        case 3:
          ASSERT_OK(store->Remove(key));
          working.erase(key);
          break;
        default: {
          ASSERT_OK_AND_ASSIGN(bool found, store->Get(key, &value));
          auto it = working.find(key);
          ASSERT_EQ(found, it != working.end()) << key;
          if (found) {
            ASSERT_EQ(value, it->second);
          }
        }
      }
    }
    ASSERT_EQ(store->metrics().num_keys, static_cast<int64_t>(working.size()));
    if (batch % 7 == 3) {
      ASSERT_OK_AND_ASSIGN(auto rows, ScanAll(*store));
      ASSERT_EQ(rows, Rows(working));
    }
    if (rng() % 10 == 0) {
      store->Abort();
      continue;
    }
    ASSERT_OK_AND_ASSIGN(int64_t committed, store->Commit());
    ASSERT_EQ(committed, version + 1);
    version = committed;
    history.push_back(std::move(working));
  }
  ASSERT_GT(version, 250);

  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ExpectVersions(*restarted, Id(), history, 0, version);
}

TEST_P(StateStoreConformance, PurgeKeepsLoadableVersionsAndRemovesOlderFiles) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  std::vector<Model> history(1);
  std::vector<Changes> batches;
  for (int64_t v = 0; v < 30; ++v)
    batches.push_back({{Numbered("k", v % 7), std::to_string(v)}, {Numbered("k", (v + 3) % 7), std::nullopt}});
  ASSERT_OK(CommitEach(*provider, Id(), batches, &history));
  const size_t files_before = FilesUnder(Id().Dir()).size();
  ASSERT_OK(provider->Purge(Id(), 25));
  const size_t files_after = FilesUnder(Id().Dir()).size();
  EXPECT_LT(files_after, files_before);
  ASSERT_OK(provider->Purge(Id(), 25));  // again: nothing more to do
  EXPECT_EQ(FilesUnder(Id().Dir()).size(), files_after);

  EXPECT_EQ(provider->Open(Id(), 1).status().code(), StatusCode::kNotFound);
  ExpectVersions(*provider, Id(), history, 30, 30);
  {
    ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
    ExpectVersions(*restarted, Id(), history, 25, 30);
    EXPECT_EQ(restarted->Open(Id(), 1).status().code(), StatusCode::kNotFound);
  }

  // Work goes on after a purge.
  ASSERT_OK(CommitBatch(*provider, Id(), 30, {{"after purge", "yes"}}));
  Model v31 = history[30];
  v31["after purge"] = "yes";
  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ASSERT_OK_AND_ASSIGN(Model model, ReadVersion(*restarted, Id(), 31));
  EXPECT_EQ(model, v31);

  // Purging a store that has nothing on disk is not an error.
  ASSERT_OK(provider->Purge(Id("never-used"), 10));
}

TEST_P(StateStoreConformance, VersionNeverCommittedIsNotFound) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  auto missing = provider->Open(Id(), 1);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(Id().Dir()), std::string::npos) << missing.status().ToString();

  for (int64_t v = 0; v < 3; ++v) ASSERT_OK(CommitBatch(*provider, Id(), v, {{"k", std::to_string(v)}}));
  {
    ASSERT_OK_AND_ASSIGN(auto store, provider->Open(Id(), 3));
    ASSERT_OK(store->Put("k", "aborted"));
    store->Abort();
  }
  for (int64_t v : {4, 5, 100}) {
    auto same = provider->Open(Id(), v);
    EXPECT_EQ(same.status().code(), StatusCode::kNotFound) << "version " << v;
    EXPECT_NE(same.status().message().find(Id().Dir()), std::string::npos) << same.status().ToString();
  }
  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  for (int64_t v : {4, 5, 100}) {
    EXPECT_EQ(restarted->Open(Id(), v).status().code(), StatusCode::kNotFound) << "version " << v;
  }
  // Another partition of the same operator has its own versions.
  EXPECT_EQ(restarted->Open(Id("0", 1), 1).status().code(), StatusCode::kNotFound);
}

// Damages each file of the store in turn with `damage`, then reopens the
// latest version after a restart: the provider either did not need that file
// (and returns exactly the committed state) or reports Corruption naming it.
// At least one file must matter.
void CheckDamageIsDetected(const std::function<Result<std::shared_ptr<StateStoreProvider>>()>& new_provider,
                           const StateStoreId& id, int64_t version, const Model& expected,
                           const std::function<std::string(const std::string&)>& damage, const char* what) {
  int detected = 0;
  const std::vector<std::string> files = FilesUnder(id.Dir());
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    const std::string original = ReadFile(file);
    WriteFile(file, damage(original));
    ASSERT_OK_AND_ASSIGN(auto provider, new_provider());
    auto store = provider->Open(id, version);
    if (store.ok()) {
      auto rows = ScanAll(**store);
      ASSERT_TRUE(rows.ok()) << rows.status().ToString();
      EXPECT_EQ(*rows, Rows(expected)) << what << " " << file << " was not detected and changed the state";
      (*store)->Abort();
    } else {
      EXPECT_EQ(store.status().code(), StatusCode::kCorruption) << what << " " << file << ": " << store.status().ToString();
      EXPECT_NE(store.status().message().find(file), std::string::npos)
          << "the message does not name " << file << ": " << store.status().ToString();
      ++detected;
    }
    WriteFile(file, original);
  }
  EXPECT_GE(detected, 1) << what << ": no damaged file was detected";
}

TEST_P(StateStoreConformance, TruncatedFileIsCorruptionNamingTheFile) {
  ASSERT_OK_AND_ASSIGN(Model model, CommitFourVersions());
  auto new_provider = [this] { return NewProvider(); };
  CheckDamageIsDetected(new_provider, Id(), 4, model, [](const std::string& s) { return s.substr(0, s.size() / 2); },
                        "truncating to half");
  CheckDamageIsDetected(new_provider, Id(), 4, model, [](const std::string& s) { return s.substr(0, s.size() - 1); },
                        "dropping the last byte of");
  CheckDamageIsDetected(new_provider, Id(), 4, model, [](const std::string&) { return std::string(); },
                        "emptying");
}

TEST_P(StateStoreConformance, GarbledFileIsCorruptionNamingTheFile) {
  ASSERT_OK_AND_ASSIGN(Model model, CommitFourVersions());
  auto new_provider = [this] { return NewProvider(); };
  auto flip_at = [](double where) {
    return [where](const std::string& s) {
      std::string out = s;
      if (!out.empty()) out[static_cast<size_t>(static_cast<double>(out.size() - 1) * where)] ^= 0x5a;
      return out;
    };
  };
  CheckDamageIsDetected(new_provider, Id(), 4, model, flip_at(0.5), "flipping a byte in the middle of");
  CheckDamageIsDetected(new_provider, Id(), 4, model, flip_at(0.0), "flipping the first byte of");
  CheckDamageIsDetected(new_provider, Id(), 4, model, flip_at(1.0), "flipping the last byte of");
}

TEST_P(StateStoreConformance, MetricsCountKeys) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  ASSERT_OK_AND_ASSIGN(auto store, provider->Open(Id(), 0));
  ASSERT_OK(store->Put("a", "1"));
  ASSERT_OK(store->Put("b", "2"));
  ASSERT_OK(store->Put("c", "3"));
  ASSERT_OK(store->Put("a", "overwritten"));
  ASSERT_OK(store->Remove("b"));
  ASSERT_OK(store->Remove("absent"));
  StateStoreMetrics during = store->metrics();
  EXPECT_EQ(during.num_keys, 2);
  EXPECT_GE(during.memory_used_bytes, 0);
  ASSERT_OK_AND_ASSIGN(int64_t committed, store->Commit());
  EXPECT_EQ(committed, 1);
  // The executor reports a batch's metrics after its commit, as Spark does.
  StateStoreMetrics after = store->metrics();
  EXPECT_EQ(after.num_keys, 2);
  EXPECT_GE(after.commit_time_ms, 0);

  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  ASSERT_OK_AND_ASSIGN(auto reopened, restarted->Open(Id(), 1));
  EXPECT_EQ(reopened->metrics().num_keys, 2);
  ASSERT_OK(reopened->Put("d", "4"));
  EXPECT_EQ(reopened->metrics().num_keys, 3);
  reopened->Abort();
}

TEST_P(StateStoreConformance, PartitionsAreIndependentAndUsableConcurrently) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  const std::vector<StateStoreId> ids = {Id("0", 0), Id("0", 1), Id("1", 0), Id("1", 1)};
  constexpr int64_t kVersions = 30;
  std::vector<Status> outcomes(ids.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int64_t v = 0; v < kVersions && outcomes[i].ok(); ++v) {
        outcomes[i] = CommitBatch(*provider, ids[i], v,
                                  {{"owner", std::to_string(i)}, {Numbered("k", v), std::to_string(i)}});
        if (outcomes[i].ok() && v % 10 == 9) outcomes[i] = provider->Purge(ids[i], v - 5);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& outcome : outcomes) ASSERT_OK(outcome);

  ASSERT_OK_AND_ASSIGN(auto restarted, NewProvider());
  for (size_t i = 0; i < ids.size(); ++i) {
    Model expected{{"owner", std::to_string(i)}};
    for (int64_t v = 0; v < kVersions; ++v) expected[Numbered("k", v)] = std::to_string(i);
    ASSERT_OK_AND_ASSIGN(Model model, ReadVersion(*restarted, ids[i], kVersions));
    EXPECT_EQ(model, expected) << ids[i].Dir();
  }
}

TEST_P(StateStoreConformance, OlderVersionsOpenFromTheSameProvider) {
  ASSERT_OK_AND_ASSIGN(auto provider, NewProvider());
  std::vector<Model> history(1);
  std::vector<Changes> batches;
  for (int64_t v = 0; v < 5; ++v) batches.push_back({{"k", std::to_string(v)}, {Numbered("v", v), "x"}});
  ASSERT_OK(CommitEach(*provider, Id(), batches, &history));
  for (int64_t v : {2, 5, 0, 4, 5}) ExpectVersions(*provider, Id(), history, v, v);
  ASSERT_OK(CommitBatch(*provider, Id(), 5, {{"six", "6"}}));
  Model v6 = history[5];
  v6["six"] = "6";
  ASSERT_OK_AND_ASSIGN(Model model, ReadVersion(*provider, Id(), 6));
  EXPECT_EQ(model, v6);
}

INSTANTIATE_TEST_SUITE_P(Providers, StateStoreConformance,
                         ::testing::Values(ProviderCase{"memory", "memory", {}},
                                           ProviderCase{"memory_snapshot_every_3_versions", "memory",
                                                        {{"snapshot_interval", int64_t{3}}}},
                                           ProviderCase{"memory_snapshot_every_version", "memory",
                                                        {{"snapshot_interval", int64_t{1}}}},
                                           ProviderCase{"rocksdb", "rocksdb", {}},
                                           ProviderCase{"rocksdb_async_checkpoint", "rocksdb",
                                                        {{"async_checkpoint", true}}},
                                           ProviderCase{"lmdb", "lmdb", {}},
                                           ProviderCase{"lmdb_snapshot_every_3_versions", "lmdb",
                                                        {{"snapshot_interval", int64_t{3}}}}),
                         [](const ::testing::TestParamInfo<ProviderCase>& info) { return info.param.label; });

}  // namespace
}  // namespace sluice::testing
