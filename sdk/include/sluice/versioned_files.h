// A state store's checkpoint directory in the snapshot-and-delta layout of
// Spark's HDFS-backed state store: "<version><snapshot suffix>" holds the
// whole state at a version, "<version><delta suffix>" one batch's changes,
// and ".<name>.tmp" (the temporary name of sluice/durable_file.h) a write in
// progress or interrupted. Header-only, for state store plugins.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "sluice/status.h"

namespace sluice {

// "<digits><suffix>" -> the version; false for any other name.
inline bool ParseVersionedName(std::string_view name, std::string_view suffix, int64_t* version) {
  if (name.size() <= suffix.size() || !name.ends_with(suffix)) return false;
  std::string_view digits = name.substr(0, name.size() - suffix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *version);
  return ec == std::errc() && end == digits.data() + digits.size();
}

// The snapshot and delta files of one store directory, by version.
struct VersionedFiles {
  std::string dir;
  std::string snapshot_suffix, delta_suffix;
  bool dir_exists = false;
  std::vector<int64_t> snapshot_versions;  // ascending
  std::vector<int64_t> delta_versions;     // ascending
  struct TempFile {
    int64_t version;
    std::string path;
  };
  std::vector<TempFile> temp_files;  // writes in progress or interrupted

  bool HasSnapshot(int64_t version) const {
    return std::binary_search(snapshot_versions.begin(), snapshot_versions.end(), version);
  }
  bool HasDelta(int64_t version) const {
    return std::binary_search(delta_versions.begin(), delta_versions.end(), version);
  }
  // The newest snapshot at or before `version`, or 0 (the empty version) if none.
  int64_t NewestSnapshotAtOrBefore(int64_t version) const {
    auto it = std::upper_bound(snapshot_versions.begin(), snapshot_versions.end(), version);
    return it == snapshot_versions.begin() ? 0 : *std::prev(it);
  }
  // The highest version with a file, 0 when there is none.
  int64_t NewestVersion() const {
    int64_t newest = snapshot_versions.empty() ? 0 : snapshot_versions.back();
    return delta_versions.empty() ? newest : std::max(newest, delta_versions.back());
  }
  // Every file of a version below `version`, interrupted writes included:
  // what a purge down to the snapshot `version` removes.
  std::vector<std::string> PathsBefore(int64_t version) const {
    std::vector<std::string> paths = Paths([&](int64_t v) { return v < version; });
    for (const TempFile& temp : temp_files)
      if (temp.version < version) paths.push_back(temp.path);
    return paths;
  }
  // The snapshot and delta files of `version` and later: an earlier,
  // uncommitted history that a replay of `version` must remove first.
  std::vector<std::string> PathsFrom(int64_t version) const {
    return Paths([&](int64_t v) { return v >= version; });
  }

 private:
  template <typename Wanted>
  std::vector<std::string> Paths(Wanted wanted) const {
    std::vector<std::string> paths;
    for (int64_t v : snapshot_versions)
      if (wanted(v)) paths.push_back(dir + "/" + std::to_string(v) + snapshot_suffix);
    for (int64_t v : delta_versions)
      if (wanted(v)) paths.push_back(dir + "/" + std::to_string(v) + delta_suffix);
    return paths;
  }
};

// Lists `dir` (a missing directory is an empty listing, dir_exists false).
inline Result<VersionedFiles> ListVersionedFiles(const std::string& dir, std::string_view snapshot_suffix,
                                                 std::string_view delta_suffix) {
  namespace fs = std::filesystem;
  VersionedFiles listing;
  listing.dir = dir;
  listing.snapshot_suffix = snapshot_suffix;
  listing.delta_suffix = delta_suffix;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return listing;
    return Status::IOError("cannot list state store directory " + dir + ": " + ec.message());
  }
  listing.dir_exists = true;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    int64_t version = 0;
    if (ParseVersionedName(name, snapshot_suffix, &version)) {
      listing.snapshot_versions.push_back(version);
    } else if (ParseVersionedName(name, delta_suffix, &version)) {
      listing.delta_versions.push_back(version);
    } else if (name.starts_with(".") && name.ends_with(".tmp")) {
      std::string_view inner = std::string_view(name).substr(1, name.size() - 1 - 4);
      if (ParseVersionedName(inner, snapshot_suffix, &version) || ParseVersionedName(inner, delta_suffix, &version))
        listing.temp_files.push_back({version, it->path().string()});
    }
  }
  if (ec) return Status::IOError("cannot list state store directory " + dir + ": " + ec.message());
  std::sort(listing.snapshot_versions.begin(), listing.snapshot_versions.end());
  std::sort(listing.delta_versions.begin(), listing.delta_versions.end());
  return listing;
}

}  // namespace sluice
