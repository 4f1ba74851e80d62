#include "checkpoint/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace sluice {

namespace fs = std::filesystem;

namespace {
Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}
}  // namespace

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("cannot fsync directory", dir);
  return Status::OK();
}

Status CreateDirectoriesDurably(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  std::vector<fs::path> created;
  for (fs::path cur = p; !cur.empty() && !fs::exists(cur); cur = cur.parent_path()) {
    created.push_back(cur);
    if (cur == cur.parent_path()) break;
  }
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return Status::IOError("cannot create directory " + dir + ": " + ec.message());
  for (const auto& c : created) SLUICE_RETURN_IF_ERROR(SyncDirectory(c.parent_path().string()));
  return Status::OK();
}

Status WriteFileAtomically(const std::string& path, std::string_view content) {
  fs::path target(path);
  std::string dir = target.parent_path().string();
  std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".tmp")).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp);
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = Errno("cannot write", tmp);
      ::close(fd);
      return st;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status st = Errno("cannot fsync", tmp);
    ::close(fd);
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot rename " + tmp + " to", path);
  return SyncDirectory(dir);
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace sluice
