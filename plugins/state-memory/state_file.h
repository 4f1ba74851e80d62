// The on-disk format of the memory state store: one file per version, a delta
// (`<version>.delta`, the puts and removes of one batch) or a snapshot
// (`<version>.snapshot`, every key of that version), and the durable-write
// helpers that put them in place. The format is self-checking: a magic header,
// length-prefixed records, an end record with the record count and a trailing
// CRC32 of everything before it, so a truncated or garbled file is reported as
// Corruption naming the file instead of loading as wrong state.
//
// Layout, all integers little-endian:
//   header   "SLUICEST" (8 bytes), format version u32 (= 1), kind u8 ('D' delta,
//            'S' snapshot), state version i64 (must equal the file's name)
//   records  'P' u32 key_len, key, u32 value_len, value    (put)
//            'R' u32 key_len, key                          (remove; deltas only)
//   end      'E' u64 record_count
//   trailer  u32 CRC32 (IEEE 802.3, reflected 0xEDB88320) of every byte above
// A snapshot's keys are strictly ascending (bytewise); a delta's keys too.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/durable_file.h"
#include "sluice/status.h"
#include "sluice/versioned_files.h"

namespace sluice::state_memory {

enum class StateFileKind : uint8_t { kDelta = 'D', kSnapshot = 'S' };


std::string DeltaFileName(int64_t version);
std::string SnapshotFileName(int64_t version);

// Writes one state file under a hidden temporary name, then Finish makes it
// durable and atomically visible under its real name (fsync, rename, fsync of
// the directory), replacing any file of that name. Destroying an unfinished
// writer removes the temporary file.
class StateFileWriter {
 public:
  StateFileWriter(std::string path, StateFileKind kind, int64_t version);
  ~StateFileWriter();
  StateFileWriter(const StateFileWriter&) = delete;
  StateFileWriter& operator=(const StateFileWriter&) = delete;

  Status Open();
  Status AddPut(std::string_view key, std::string_view value);
  Status AddRemove(std::string_view key);
  Status Finish();

 private:
  Status Append(const void* data, size_t size);
  Status AppendU32(uint32_t v);
  Status AppendU64(uint64_t v);
  Status AppendLength(size_t size, std::string_view what);
  Status Flush();
  Status WriteAll(const char* data, size_t size);

  std::string path_;
  std::string temp_path_;
  StateFileKind kind_;
  int64_t version_;
  int fd_ = -1;
  uint32_t crc_ = 0;
  uint64_t record_count_ = 0;
  std::string buffer_;
};

// Receives each record of a file in order. `value` is null for a remove.
using StateRecordFn = std::function<Status(std::string_view key, const std::string* value)>;

// Reads and checks the state file at `path`, calling `on_record` for every
// record. NotFound when the file does not exist, Corruption (naming the file)
// when it is not a complete, intact file of `kind` for `version`. Records are
// delivered before the trailing checksum is checked, so a caller builds into
// state it discards on error.
Status ReadStateFile(const std::string& path, StateFileKind kind, int64_t version, const StateRecordFn& on_record);

// The delta and snapshot files found in a store directory, by version.
using StateDirListing = VersionedFiles;
inline Result<StateDirListing> ListStateDir(const std::string& dir) {
  return ListVersionedFiles(dir, ".snapshot", ".delta");
}

// Removes the files (full paths; an absent one is fine), then fsyncs `dir` once.

}  // namespace sluice::state_memory
