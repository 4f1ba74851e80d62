// Durable file operations for plugins that keep files of their own (state
// stores, sinks): atomic writes, directory syncs, CRC32. After a crash at any
// instant a reader finds either the old file or the whole new one, and a new
// name is in its directory only once the directory was fsynced. Header-only,
// so a plugin links nothing for it; the engine uses the same functions.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice {

namespace durable_detail {
inline Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}
}  // namespace durable_detail

// fsyncs a directory so the names in it (new, renamed, removed) are durable.
inline Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return durable_detail::Errno("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return durable_detail::Errno("cannot fsync directory", dir);
  return Status::OK();
}

// Creates `dir` and its missing parents; each new directory's entry lives in
// its parent, so every parent of a created directory is synced.
inline Status CreateDirectoriesDurably(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(dir).lexically_normal();
  std::vector<fs::path> created;
  std::error_code ec;
  for (fs::path cur = p; !cur.empty() && !fs::exists(cur, ec); cur = cur.parent_path()) {
    created.push_back(cur);
    if (cur == cur.parent_path()) break;
  }
  fs::create_directories(p, ec);
  if (ec) return Status::IOError("cannot create directory " + dir + ": " + ec.message());
  for (const auto& c : created) SLUICE_RETURN_IF_ERROR(SyncDirectory(c.parent_path().string()));
  return Status::OK();
}

// Writes all `size` bytes at `data` to `fd` (retrying short and interrupted
// writes); `path` names the file in the error.
inline Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return durable_detail::Errno("cannot write", path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

// Writes `content` to `path` under a temporary name (".<name>.tmp" beside it),
// fsyncs it, renames it over `path` and fsyncs the directory.
inline Status WriteFileAtomically(const std::string& path, std::string_view content) {
  namespace fs = std::filesystem;
  fs::path target(path);
  std::string dir = target.parent_path().string();
  std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".tmp")).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return durable_detail::Errno("cannot create", tmp);
  if (Status written = WriteAll(fd, content.data(), content.size(), tmp); !written.ok()) {
    ::close(fd);
    return written;
  }
  if (::fsync(fd) != 0) {
    Status st = durable_detail::Errno("cannot fsync", tmp);
    ::close(fd);
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return durable_detail::Errno("cannot rename " + tmp + " to", path);
  return SyncDirectory(dir);
}

// Unlinks `paths` (missing ones are fine) and fsyncs `dir` once.
inline Status RemoveFilesDurably(const std::string& dir, const std::vector<std::string>& paths) {
  if (paths.empty()) return Status::OK();
  for (const auto& path : paths)
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return durable_detail::Errno("cannot remove", path);
  return SyncDirectory(dir);
}

// CRC-32 (IEEE 802.3, the zlib polynomial), continued from `crc` (0 to start).
inline uint32_t Crc32(uint32_t crc, const void* data, size_t size) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* bytes = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

}  // namespace sluice
