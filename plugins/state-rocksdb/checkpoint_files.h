// The checkpoint directory of the rocksdb state store (one per store id) and
// the file operations that fill it: durable copies with a checksum, the
// per-version manifest, and listing what a directory holds.
//
// Layout of StateStoreId::Dir():
//   sst/<local stem>-<16 hex>.sst   SST files shared by every version that names
//                                   them; copied once (incremental checkpoints)
//   <V>/<name>                      the non-SST files of version V: CURRENT,
//                                   MANIFEST-*, OPTIONS-*, an empty WAL
//   <V>.manifest                    every file version V needs; its presence
//                                   is what makes V exist
//
// A shared SST's name carries a random suffix rather than its size or a hash
// of its content: after a replay, a re-created local DB can make a different
// SST under the same local name and, for small files, the same size.
//
// Manifest format (text, one item a line):
//   sluice-rocksdb-checkpoint 1
//   version <V>
//   commit <16 hex>               unique per commit attempt
//   keys <n>                      exact number of keys in version V
//   files <count>
//   file <path in Dir()> <local name> <size> <crc32 as 8 hex>   (count lines)
//   crc32 <8 hex>                 of every byte before this line
// The trailing checksum makes a truncated or garbled manifest Corruption naming
// the file; each data file's size and CRC make a damaged one Corruption naming
// it when a version is restored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/status.h"
#include "sluice/durable_file.h"

namespace sluice::state_rocksdb {

struct CheckpointFile {
  std::string checkpoint_path;  // relative to the checkpoint directory: "sst/..." or "<V>/..."
  std::string local_name;       // its name in the local DB directory
  uint64_t size = 0;
  uint32_t crc32 = 0;

  bool is_shared_sst() const { return checkpoint_path.starts_with("sst/"); }
};

struct CheckpointManifest {
  int64_t version = 0;
  std::string commit_id;
  int64_t num_keys = 0;
  std::vector<CheckpointFile> files;
};

std::string ManifestFileName(int64_t version);  // "<V>.manifest"
std::string VersionDirName(int64_t version);    // "<V>"
constexpr const char* kSharedSstDir = "sst";

// Durably writes `dir`/<V>.manifest: temporary file, fsync, rename, fsync of `dir`.
Status WriteManifest(const std::string& dir, const CheckpointManifest& manifest);
// NotFound naming the file when it does not exist; Corruption naming it when it
// is not a complete, intact manifest of `version`.
Result<CheckpointManifest> ReadManifest(const std::string& dir, int64_t version);

// Copies `from` to `to` (replacing it), returning the size and CRC32 of the
// bytes copied; fsyncs `to` when `durable`.
struct CopiedFile {
  uint64_t size = 0;
  uint32_t crc32 = 0;
};
Result<CopiedFile> CopyFile(const std::string& from, const std::string& to, bool durable);

// What a checkpoint directory holds, by kind.
struct CheckpointDirListing {
  bool exists = false;
  std::vector<int64_t> manifest_versions;  // ascending
  std::vector<int64_t> version_dirs;       // ascending
  std::vector<std::string> shared_ssts;    // names in sst/, temporary ones included
  std::vector<std::string> temp_files;     // names of leftover temporary manifests
};
Result<CheckpointDirListing> ListCheckpointDir(const std::string& dir);

// Removes files or whole directories (absent ones are fine), then fsyncs `parent` once.
Status RemovePathsDurably(const std::string& parent, const std::vector<std::string>& paths);

}  // namespace sluice::state_rocksdb
