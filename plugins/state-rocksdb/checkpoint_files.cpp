// Manifest encoding and the durable file operations of the rocksdb state
// store's checkpoint directory (layout and format in checkpoint_files.h). The
// durable-write pattern (temporary file, fsync, rename, fsync of the directory)
// is the framework's; it is repeated here because a plugin does not link the
// framework.

#include "checkpoint_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace sluice::state_rocksdb {
namespace {

namespace fs = std::filesystem;

constexpr const char* kManifestMagic = "sluice-rocksdb-checkpoint 1";
constexpr const char* kManifestSuffix = ".manifest";
constexpr size_t kCopyChunk = 1 << 20;

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

uint32_t Crc32(uint32_t crc, const char* data, size_t size) {
  // zlib takes the length as uInt: feed large buffers in pieces.
  while (size > 0) {
    uInt piece = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(data), piece));
    data += piece;
    size -= piece;
  }
  return crc;
}

std::string Hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (!AllDigits(s)) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseHex32(std::string_view s, uint32_t* out) {
  if (s.size() != 8) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && end == s.data() + s.size();
}

// A name that stays inside its directory: no separator, not "." or "..".
bool IsPlainName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find(' ') == std::string_view::npos;
}


// Closes a descriptor on every path out of a function.
struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
  Status Close(const std::string& path) {
    int f = fd;
    fd = -1;
    if (::close(f) != 0) return Errno("cannot close", path);
    return Status::OK();
  }
};

std::string EncodeManifest(const CheckpointManifest& m) {
  std::string out;
  out += kManifestMagic;
  out += "\nversion " + std::to_string(m.version);
  out += "\ncommit " + m.commit_id;
  out += "\nkeys " + std::to_string(m.num_keys);
  out += "\nfiles " + std::to_string(m.files.size());
  out += "\n";
  for (const auto& f : m.files) {
    out += "file ";
    out += f.checkpoint_path;
    out += ' ';
    out += f.local_name;
    out += ' ';
    out += std::to_string(f.size);
    out += ' ';
    out += Hex32(f.crc32);
    out += '\n';
  }
  uint32_t crc = Crc32(0, out.data(), out.size());
  out += "crc32 " + Hex32(crc) + "\n";
  return out;
}

// Splits "<word> <rest>" and checks the word.
bool Field(std::string_view line, std::string_view word, std::string_view* rest) {
  if (line.size() <= word.size() + 1 || !line.starts_with(word) || line[word.size()] != ' ') return false;
  *rest = line.substr(word.size() + 1);
  return true;
}

std::vector<std::string_view> SplitSpaces(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(' ', start);
    if (end == std::string_view::npos) end = s.size();
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

Result<CheckpointManifest> DecodeManifest(const std::string& path, std::string_view text, int64_t version) {
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("state checkpoint manifest " + path + " is corrupt: " + why);
  };
  // The checksum line comes last; everything before it is covered.
  if (text.empty() || text.back() != '\n') return corrupt("it does not end with a complete line (truncated?)");
  size_t last_line = text.rfind('\n', text.size() - 2);
  size_t covered = last_line == std::string_view::npos ? 0 : last_line + 1;
  std::string_view crc_text;
  uint32_t stored_crc = 0;
  if (!Field(text.substr(covered, text.size() - 1 - covered), "crc32", &crc_text) ||
      !ParseHex32(crc_text, &stored_crc))
    return corrupt("its last line is not a crc32 line (truncated?)");
  if (Crc32(0, text.data(), covered) != stored_crc) return corrupt("its checksum does not match its contents");

  std::vector<std::string_view> lines;
  for (size_t start = 0; start < covered;) {
    size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  CheckpointManifest m;
  std::string_view value;
  int64_t file_count = 0;
  if (lines.size() < 5 || lines[0] != kManifestMagic) return corrupt("it does not start with the manifest header");
  if (!Field(lines[1], "version", &value) || !ParseInt(value, &m.version)) return corrupt("bad version line");
  if (m.version != version)
    return corrupt("it holds version " + std::to_string(m.version) + ", not " + std::to_string(version));
  if (!Field(lines[2], "commit", &value) || !IsPlainName(value)) return corrupt("bad commit line");
  m.commit_id = std::string(value);
  if (!Field(lines[3], "keys", &value) || !ParseInt(value, &m.num_keys)) return corrupt("bad keys line");
  if (!Field(lines[4], "files", &value) || !ParseInt(value, &file_count)) return corrupt("bad files line");
  if (static_cast<int64_t>(lines.size()) - 5 != file_count)
    return corrupt("it counts " + std::to_string(file_count) + " files and lists " + std::to_string(lines.size() - 5));
  const std::string version_dir = VersionDirName(version) + "/";
  for (size_t i = 5; i < lines.size(); ++i) {
    std::string_view rest;
    if (!Field(lines[i], "file", &rest)) return corrupt("line " + std::to_string(i + 1) + " is not a file line");
    auto parts = SplitSpaces(rest);
    CheckpointFile f;
    int64_t size = 0;
    if (parts.size() != 4 || !IsPlainName(parts[1]) || !ParseInt(parts[2], &size) || !ParseHex32(parts[3], &f.crc32))
      return corrupt("line " + std::to_string(i + 1) + " is not a valid file line");
    f.checkpoint_path = std::string(parts[0]);
    f.local_name = std::string(parts[1]);
    f.size = static_cast<uint64_t>(size);
    // Only the two places a version's files live: nothing can point outside.
    std::string_view inside;
    if (f.checkpoint_path.starts_with("sst/")) inside = std::string_view(f.checkpoint_path).substr(4);
    else if (f.checkpoint_path.starts_with(version_dir)) inside = std::string_view(f.checkpoint_path).substr(version_dir.size());
    if (!IsPlainName(inside))
      return corrupt("line " + std::to_string(i + 1) + " names a file outside sst/ and " + version_dir);
    m.files.push_back(std::move(f));
  }
  return m;
}

}  // namespace

std::string ManifestFileName(int64_t version) { return std::to_string(version) + kManifestSuffix; }
std::string VersionDirName(int64_t version) { return std::to_string(version); }

Status WriteManifest(const std::string& dir, const CheckpointManifest& manifest) {
  const std::string text = EncodeManifest(manifest);
  const std::string path = dir + "/" + ManifestFileName(manifest.version);
  const std::string temp_path = dir + "/." + ManifestFileName(manifest.version) + ".tmp";
  FdCloser file{::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (file.fd < 0) return Errno("cannot create", temp_path);
  Status st = WriteAll(file.fd, text.data(), text.size(), temp_path);
  if (st.ok() && ::fsync(file.fd) != 0) st = Errno("cannot fsync", temp_path);
  if (st.ok()) st = file.Close(temp_path);
  if (st.ok() && ::rename(temp_path.c_str(), path.c_str()) != 0) st = Errno("cannot rename " + temp_path + " to", path);
  if (!st.ok()) {
    ::unlink(temp_path.c_str());
    return st;
  }
  return SyncDirectory(dir);
}

Result<CheckpointManifest> ReadManifest(const std::string& dir, int64_t version) {
  const std::string path = dir + "/" + ManifestFileName(version);
  FdCloser file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) {
    if (errno == ENOENT)
      return Status::NotFound("version " + std::to_string(version) + " of state store " + dir +
                              " does not exist: there is no " + path + " (never committed, or purged)");
    return Errno("cannot open", path);
  }
  std::string text;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(file.fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot read", path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return DecodeManifest(path, text, version);
}

Result<CopiedFile> CopyFile(const std::string& from, const std::string& to, bool durable) {
  FdCloser in{::open(from.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) {
    if (errno == ENOENT) return Status::NotFound("file " + from + " does not exist");
    return Errno("cannot open", from);
  }
  FdCloser out{::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (out.fd < 0) return Errno("cannot create", to);
  CopiedFile copied;
  std::string buffer(kCopyChunk, '\0');
  for (;;) {
    ssize_t n = ::read(in.fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot read", from);
    }
    if (n == 0) break;
    copied.crc32 = Crc32(copied.crc32, buffer.data(), static_cast<size_t>(n));
    copied.size += static_cast<uint64_t>(n);
    SLUICE_RETURN_IF_ERROR(WriteAll(out.fd, buffer.data(), static_cast<size_t>(n), to));
  }
  if (durable && ::fsync(out.fd) != 0) return Errno("cannot fsync", to);
  SLUICE_RETURN_IF_ERROR(out.Close(to));
  return copied;
}

Result<CheckpointDirListing> ListCheckpointDir(const std::string& dir) {
  CheckpointDirListing listing;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return listing;
    return Status::IOError("cannot list state checkpoint directory " + dir + ": " + ec.message());
  }
  listing.exists = true;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    int64_t version = 0;
    if (name.ends_with(kManifestSuffix) &&
        ParseInt(std::string_view(name).substr(0, name.size() - std::strlen(kManifestSuffix)), &version)) {
      listing.manifest_versions.push_back(version);
    } else if (ParseInt(name, &version) && it->is_directory(ec)) {
      listing.version_dirs.push_back(version);
    } else if (name.starts_with(".") && name.ends_with(".tmp")) {
      listing.temp_files.push_back(name);
    }
  }
  if (ec) return Status::IOError("cannot list state checkpoint directory " + dir + ": " + ec.message());
  std::sort(listing.manifest_versions.begin(), listing.manifest_versions.end());
  std::sort(listing.version_dirs.begin(), listing.version_dirs.end());
  const std::string sst_dir = dir + "/" + kSharedSstDir;
  fs::directory_iterator sst_it(sst_dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return listing;
    return Status::IOError("cannot list " + sst_dir + ": " + ec.message());
  }
  for (; sst_it != fs::directory_iterator(); sst_it.increment(ec)) listing.shared_ssts.push_back(sst_it->path().filename().string());
  if (ec) return Status::IOError("cannot list " + sst_dir + ": " + ec.message());
  std::sort(listing.shared_ssts.begin(), listing.shared_ssts.end());
  return listing;
}

Status RemovePathsDurably(const std::string& parent, const std::vector<std::string>& paths) {
  if (paths.empty()) return Status::OK();
  for (const auto& path : paths) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
      return Status::IOError("cannot remove " + path + ": " + ec.message());
  }
  return SyncDirectory(parent);
}

}  // namespace sluice::state_rocksdb
