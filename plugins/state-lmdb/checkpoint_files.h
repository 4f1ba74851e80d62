// The checkpoint files of the lmdb state store, kept in StateStoreId::Dir():
//
//   <V>.mdb    a full snapshot of version V: a compacted copy of the store's
//              LMDB environment (mdb_env_copyfd2 with MDB_CP_COMPACT) followed
//              by a trailer that makes the file self-checking.
//   <V>.delta  the puts and removes of the batch that made version V, for
//              versions that are not snapshot versions (snapshot_interval > 1).
//
// Every file carries the version it holds and the commit token of the commit
// that wrote it: a random number, also stored inside the local environment, by
// which a local environment proves it holds the same commit as the checkpoint
// (and not an earlier attempt of a replayed batch).
//
// Layouts, all integers little-endian:
//   <V>.mdb    LMDB data file (data_length bytes), then the 44-byte trailer:
//              "SLUICELS", format u32 (= 1), version i64, token u64,
//              data_length u64, CRC32 of the data u32, CRC32 of the trailer's
//              first 40 bytes u32.
//   <V>.delta  "SLUICELD", format u32 (= 1), version i64, token u64, then
//              records 'P' u32 key_len, key, u32 value_len, value (put) or
//              'R' u32 key_len, key (remove), keys strictly ascending, then
//              'E' u64 record_count, then the CRC32 u32 of every byte before it.
// A truncated or garbled file is Corruption naming the file; a missing one is
// NotFound. Files are written under a hidden temporary name (".<name>.tmp"),
// fsynced, renamed into place and the directory fsynced, so a crash leaves the
// whole file or none of it.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/durable_file.h"
#include "sluice/status.h"
#include "sluice/versioned_files.h"

namespace sluice::state_lmdb {


std::string SnapshotFileName(int64_t version);
std::string DeltaFileName(int64_t version);

// One batch's changes, last write wins: key -> new value, or nullopt for a remove.
using BatchChanges = std::map<std::string, std::optional<std::string>, std::less<>>;

Status WriteDeltaFile(const std::string& path, int64_t version, uint64_t token, const BatchChanges& changes);

// Receives each record of a delta in key order; `value` is null for a remove.
using DeltaRecordFn = std::function<Status(std::string_view key, const std::string* value)>;

// Reads and checks a whole delta file, calling `on_record` for each record
// before the trailing checksum is checked (the caller applies them inside a
// transaction it aborts on error). Sets *token to the file's commit token.
Status ReadDeltaFile(const std::string& path, int64_t version, const DeltaRecordFn& on_record, uint64_t* token);

// The commit token in a delta's header, without reading the rest (cheap; the
// header is only checked for magic and version).
Result<uint64_t> ReadDeltaToken(const std::string& path, int64_t version);

// Writes a compacted copy of `env` (which must have no write transaction in
// progress) as the snapshot of `version` at `path`, durably.
Status WriteSnapshotFile(MDB_env* env, const std::string& path, int64_t version, uint64_t token);

struct SnapshotTrailer {
  uint64_t token = 0;
  uint64_t data_length = 0;
  uint32_t data_crc = 0;
};

// Reads and checks the trailer of a snapshot (cheap: the data is not read).
Result<SnapshotTrailer> ReadSnapshotTrailer(const std::string& path, int64_t version);

// Reads the whole snapshot, checking its data against the trailer's checksum.
// With `copy_to`, also writes the data (without the trailer) to that file and
// fsyncs it; the copy is removed when the snapshot turns out to be damaged.
// Returns the trailer.
Result<SnapshotTrailer> VerifySnapshotFile(const std::string& path, int64_t version,
                                           const std::string* copy_to = nullptr);

// The snapshot and delta files found in a checkpoint directory.
using CheckpointListing = VersionedFiles;
inline Result<CheckpointListing> ListCheckpointDir(const std::string& dir) {
  return ListVersionedFiles(dir, ".mdb", ".delta");
}

// Removes the files (full paths; an absent one is fine), then fsyncs `dir` once.

}  // namespace sluice::state_lmdb
