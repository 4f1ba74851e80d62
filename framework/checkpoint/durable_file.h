// Durable, atomic file writes: the one way the checkpoint writes anything.
// A file is written under a temporary name, fsynced, renamed over its final
// name, and its directory fsynced, so after a crash at any instant a reader
// sees either the whole old file (or none) or the whole new one.
#pragma once

#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

Status WriteFileAtomically(const std::string& path, std::string_view content);
Status SyncDirectory(const std::string& dir);
// Creates `dir` and any missing parents, fsyncing each new one's parent.
Status CreateDirectoriesDurably(const std::string& dir);
Result<std::string> ReadWholeFile(const std::string& path);

}  // namespace sluice
