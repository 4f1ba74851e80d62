// sluice/versioned_files.h: listing a state store's snapshot and delta files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sluice/versioned_files.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "sluice-sdk-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void Touch(const std::string& name) const { std::ofstream(path_ / name) << "x"; }

 private:
  fs::path path_;
};

TEST(VersionedFiles, NamesAreDigitsThenTheSuffix) {
  int64_t version = -1;
  EXPECT_TRUE(ParseVersionedName("12.delta", ".delta", &version));
  EXPECT_EQ(version, 12);
  EXPECT_FALSE(ParseVersionedName(".delta", ".delta", &version));
  EXPECT_FALSE(ParseVersionedName("1a.delta", ".delta", &version));
  EXPECT_FALSE(ParseVersionedName("-1.delta", ".delta", &version));
  EXPECT_FALSE(ParseVersionedName("12.delta.tmp", ".delta", &version));
  EXPECT_FALSE(ParseVersionedName("99999999999999999999.delta", ".delta", &version));  // overflows int64
}

TEST(VersionedFiles, ListsEachKindInVersionOrderAndTheInterruptedWrites) {
  ScratchDir dir;
  for (const char* name : {"10.snapshot", "2.snapshot", "11.delta", "3.delta", "9.delta", ".12.delta.tmp",
                           ".10.snapshot.tmp", "notes.txt", ".other.tmp", "7.mdb"})
    dir.Touch(name);
  auto listing = ListVersionedFiles(dir.path().string(), ".snapshot", ".delta");
  ASSERT_TRUE(listing.ok()) << listing.status().ToString();
  EXPECT_TRUE(listing->dir_exists);
  EXPECT_EQ(listing->snapshot_versions, (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(listing->delta_versions, (std::vector<int64_t>{3, 9, 11}));
  std::vector<std::pair<int64_t, std::string>> temps;
  for (const auto& t : listing->temp_files) temps.emplace_back(t.version, fs::path(t.path).filename().string());
  std::sort(temps.begin(), temps.end());
  EXPECT_EQ(temps, (std::vector<std::pair<int64_t, std::string>>{{10, ".10.snapshot.tmp"}, {12, ".12.delta.tmp"}}));
  EXPECT_TRUE(listing->HasSnapshot(10));
  EXPECT_FALSE(listing->HasSnapshot(3));
  EXPECT_TRUE(listing->HasDelta(9));
  EXPECT_FALSE(listing->HasDelta(10));
  EXPECT_EQ(listing->NewestSnapshotAtOrBefore(1), 0);  // the empty version
  EXPECT_EQ(listing->NewestSnapshotAtOrBefore(9), 2);
  EXPECT_EQ(listing->NewestSnapshotAtOrBefore(10), 10);
  EXPECT_EQ(listing->NewestVersion(), 11);

  const std::string d = dir.path().string() + "/";
  auto names = [](std::vector<std::string> paths) {
    std::sort(paths.begin(), paths.end());
    return paths;
  };
  // A purge down to snapshot 10 removes everything older, interrupted writes included.
  EXPECT_EQ(names(listing->PathsBefore(10)), names({d + "2.snapshot", d + "3.delta", d + "9.delta"}));
  // A replay of version 10 removes the files of 10 and later, not the interrupted writes.
  EXPECT_EQ(names(listing->PathsFrom(10)), names({d + "10.snapshot", d + "11.delta"}));
  EXPECT_EQ(names(listing->PathsBefore(13)),
            names({d + "2.snapshot", d + "10.snapshot", d + "3.delta", d + "9.delta", d + "11.delta",
                   d + ".10.snapshot.tmp", d + ".12.delta.tmp"}));
}

TEST(VersionedFiles, AMissingDirectoryIsEmptyAndAFileIsAnError) {
  ScratchDir dir;
  auto missing = ListVersionedFiles((dir.path() / "absent").string(), ".snapshot", ".delta");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->dir_exists);
  EXPECT_EQ(missing->NewestVersion(), 0);
  dir.Touch("file");
  auto not_a_dir = ListVersionedFiles((dir.path() / "file").string(), ".snapshot", ".delta");
  ASSERT_FALSE(not_a_dir.ok());
  EXPECT_NE(not_a_dir.status().message().find("cannot list state store directory " + (dir.path() / "file").string()),
            std::string::npos)
      << not_a_dir.status().ToString();
}

}  // namespace
}  // namespace sluice
