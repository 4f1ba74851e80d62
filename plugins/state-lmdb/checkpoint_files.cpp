// Writing, reading and checking the lmdb state store's checkpoint files (the
// formats are in checkpoint_files.h), and the durable file operations around
// them (temporary file, fsync, rename, fsync of the directory), repeated here
// because a plugin does not link the framework.

#include "checkpoint_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

namespace sluice::state_lmdb {
namespace {

namespace fs = std::filesystem;

constexpr char kSnapshotMagic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'L', 'S'};
constexpr char kDeltaMagic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'L', 'D'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kSnapshotTrailerSize = 8 + 4 + 8 + 8 + 8 + 4 + 4;
constexpr size_t kDeltaHeaderSize = 8 + 4 + 8 + 8;
constexpr size_t kDeltaEndSize = 1 + 8;
constexpr size_t kDeltaChecksumSize = 4;
constexpr char kPutTag = 'P';
constexpr char kRemoveTag = 'R';
constexpr char kEndTag = 'E';
constexpr size_t kIoChunk = 256 * 1024;

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

Status Corrupt(const std::string& path, const std::string& why) {
  return Status::Corruption("checkpoint file " + path + " is corrupt: " + why);
}

void PutLittleEndian(char* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t GetLittleEndian(const char* in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

// ".<name>.tmp" next to `path`.
std::string TempPathFor(const std::string& path) {
  fs::path target(path);
  std::string temp_name = ".";  // appended piecewise: "." + name trips a false -Wrestrict in g++ 12
  temp_name += target.filename().string();
  temp_name += ".tmp";
  return (target.parent_path() / temp_name).string();
}

// Parses "<digits><suffix>" into a version; false for any other name.

// A file descriptor closed on destruction.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.Release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};


// Reads exactly `size` bytes at `offset`; a short read means the file shrank.
Status ReadAt(int fd, char* out, size_t size, uint64_t offset, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot read", path);
    }
    if (n == 0) return Corrupt(path, "it ends early (truncated?)");
    out += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Result<UniqueFd> OpenForReading(const std::string& path, uint64_t* size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound("checkpoint file " + path + " does not exist");
    return Errno("cannot open", path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("cannot stat", path);
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

// fsync, close, rename over `path`, fsync of the directory. Takes ownership of `fd`.
Status PublishDurably(UniqueFd fd, const std::string& temp_path, const std::string& path) {
  if (::fsync(fd.get()) != 0) {
    Status st = Errno("cannot fsync", temp_path);
    ::unlink(temp_path.c_str());
    return st;
  }
  if (::close(fd.Release()) != 0) {
    Status st = Errno("cannot close", temp_path);
    ::unlink(temp_path.c_str());
    return st;
  }
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    Status st = Errno("cannot rename " + temp_path + " to", path);
    ::unlink(temp_path.c_str());
    return st;
  }
  return SyncDirectory(fs::path(path).parent_path().string());
}

// Buffered, checksummed writes of a delta under its temporary name.
class DeltaWriter {
 public:
  explicit DeltaWriter(std::string path) : path_(std::move(path)), temp_path_(TempPathFor(path_)) {}
  ~DeltaWriter() {
    if (fd_.get() >= 0) {
      fd_.Reset();
      ::unlink(temp_path_.c_str());
    }
  }

  Status Open(int64_t version, uint64_t token) {
    // O_TRUNC: a temporary file left by a crashed attempt is simply overwritten.
    fd_ = UniqueFd(::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd_.get() < 0) return Errno("cannot create", temp_path_);
    char header[kDeltaHeaderSize];
    std::memcpy(header, kDeltaMagic, 8);
    PutLittleEndian(header + 8, kFormatVersion, 4);
    PutLittleEndian(header + 12, static_cast<uint64_t>(version), 8);
    PutLittleEndian(header + 20, token, 8);
    return Append(header, sizeof(header));
  }

  Status AddRecord(std::string_view key, const std::optional<std::string>& value) {
    SLUICE_RETURN_IF_ERROR(Append(value ? &kPutTag : &kRemoveTag, 1));
    SLUICE_RETURN_IF_ERROR(AppendLength(key.size()));
    SLUICE_RETURN_IF_ERROR(Append(key.data(), key.size()));
    if (value) {
      SLUICE_RETURN_IF_ERROR(AppendLength(value->size()));
      SLUICE_RETURN_IF_ERROR(Append(value->data(), value->size()));
    }
    ++records_;
    return Status::OK();
  }

  Status Finish() {
    char end[kDeltaEndSize];
    end[0] = kEndTag;
    PutLittleEndian(end + 1, records_, 8);
    SLUICE_RETURN_IF_ERROR(Append(end, sizeof(end)));
    char checksum[kDeltaChecksumSize];
    PutLittleEndian(checksum, crc_, 4);
    buffer_.append(checksum, sizeof(checksum));  // the checksum does not cover itself
    SLUICE_RETURN_IF_ERROR(Flush());
    return PublishDurably(std::move(fd_), temp_path_, path_);
  }

 private:
  Status Append(const void* data, size_t size) {
    crc_ = Crc32(crc_, data, size);
    const char* p = static_cast<const char*>(data);
    if (size >= kIoChunk) {  // large values go straight to the file
      SLUICE_RETURN_IF_ERROR(Flush());
      return WriteAll(fd_.get(), p, size, temp_path_);
    }
    buffer_.append(p, size);
    return buffer_.size() >= kIoChunk ? Flush() : Status::OK();
  }

  Status AppendLength(size_t size) {
    if (size > std::numeric_limits<uint32_t>::max())
      return Status::InvalidArgument("a state value of " + std::to_string(size) +
                                     " bytes is larger than the 4 GiB a delta record holds");
    char b[4];
    PutLittleEndian(b, size, 4);
    return Append(b, 4);
  }

  Status Flush() {
    SLUICE_RETURN_IF_ERROR(WriteAll(fd_.get(), buffer_.data(), buffer_.size(), temp_path_));
    buffer_.clear();
    return Status::OK();
  }

  std::string path_;
  std::string temp_path_;
  UniqueFd fd_;
  uint32_t crc_ = 0;
  uint64_t records_ = 0;
  std::string buffer_;
};

// Sequential, checksummed reads of a delta. Every length read from the file is
// checked against the bytes that remain before it is used, so a garbled length
// is reported as corruption rather than allocated.
class DeltaReader {
 public:
  explicit DeltaReader(std::string path) : path_(std::move(path)) {}

  Status Open() {
    uint64_t size = 0;
    SLUICE_ASSIGN_OR_RETURN(fd_, OpenForReading(path_, &size));
    if (size < kDeltaHeaderSize + kDeltaEndSize + kDeltaChecksumSize)
      return Corrupt(path_, "it is " + std::to_string(size) + " bytes, shorter than any complete delta (truncated?)");
    data_end_ = size - kDeltaChecksumSize;
    return Status::OK();
  }

  uint64_t remaining() const { return data_end_ - position_; }

  Status Read(char* out, size_t size) {
    if (size > remaining()) return Corrupt(path_, "it ends in the middle of a record (truncated?)");
    SLUICE_RETURN_IF_ERROR(ReadBuffered(out, size));
    crc_ = Crc32(crc_, out, size);
    position_ += size;
    return Status::OK();
  }

  Status ReadString(uint64_t size, std::string* out) {
    if (size > remaining())
      return Corrupt(path_, "a record claims " + std::to_string(size) + " bytes, more than the file holds");
    out->resize(size);
    return Read(out->data(), size);
  }

  Status ReadInteger(int bytes, uint64_t* v) {
    char b[8];
    SLUICE_RETURN_IF_ERROR(Read(b, static_cast<size_t>(bytes)));
    *v = GetLittleEndian(b, bytes);
    return Status::OK();
  }

  Status CheckTrailingChecksum() {
    if (position_ != data_end_)
      return Corrupt(path_, std::to_string(remaining()) + " unexpected bytes follow its end record");
    char b[kDeltaChecksumSize];
    SLUICE_RETURN_IF_ERROR(ReadBuffered(b, sizeof(b)));
    if (static_cast<uint32_t>(GetLittleEndian(b, 4)) != crc_)
      return Corrupt(path_, "its checksum does not match its contents");
    return Status::OK();
  }

  const std::string& path() const { return path_; }

 private:
  Status ReadBuffered(char* out, size_t size) {
    while (size > 0) {
      if (buffer_pos_ == buffer_.size()) {
        buffer_.resize(kIoChunk);
        ssize_t n = ::read(fd_.get(), buffer_.data(), buffer_.size());
        if (n < 0 && errno == EINTR) {
          buffer_.clear();
          buffer_pos_ = 0;
          continue;
        }
        if (n < 0) return Errno("cannot read", path_);
        buffer_.resize(static_cast<size_t>(n));
        buffer_pos_ = 0;
        if (n == 0) return Corrupt(path_, "it ends in the middle of a record (truncated?)");
      }
      size_t take = std::min(size, buffer_.size() - buffer_pos_);
      std::memcpy(out, buffer_.data() + buffer_pos_, take);
      buffer_pos_ += take;
      out += take;
      size -= take;
    }
    return Status::OK();
  }

  std::string path_;
  UniqueFd fd_;
  uint64_t data_end_ = 0;
  uint64_t position_ = 0;
  uint32_t crc_ = 0;
  std::string buffer_;
  size_t buffer_pos_ = 0;
};

// Both kinds of file put the format at byte 8 and the version at byte 12 of
// their header (delta) or trailer (snapshot).
Status CheckFormatAndVersion(const char* fields, const std::string& path, int64_t version) {
  uint32_t format = static_cast<uint32_t>(GetLittleEndian(fields + 8, 4));
  if (format != kFormatVersion)
    return Corrupt(path, "format version " + std::to_string(format) + " is not the supported version " +
                             std::to_string(kFormatVersion));
  int64_t stored_version = static_cast<int64_t>(GetLittleEndian(fields + 12, 8));
  if (stored_version != version)
    return Corrupt(path, "it holds version " + std::to_string(stored_version) + ", not " + std::to_string(version));
  return Status::OK();
}

Status CheckDeltaHeader(const char* header, const std::string& path, int64_t version, uint64_t* token) {
  if (std::memcmp(header, kDeltaMagic, 8) != 0) return Corrupt(path, "it does not start with SLUICELD");
  SLUICE_RETURN_IF_ERROR(CheckFormatAndVersion(header, path, version));
  *token = GetLittleEndian(header + 20, 8);
  return Status::OK();
}

}  // namespace

std::string SnapshotFileName(int64_t version) { return std::to_string(version) + ".mdb"; }
std::string DeltaFileName(int64_t version) { return std::to_string(version) + ".delta"; }

Status WriteDeltaFile(const std::string& path, int64_t version, uint64_t token, const BatchChanges& changes) {
  DeltaWriter writer(path);
  SLUICE_RETURN_IF_ERROR(writer.Open(version, token));
  for (const auto& [key, value] : changes) SLUICE_RETURN_IF_ERROR(writer.AddRecord(key, value));
  return writer.Finish();
}

Status ReadDeltaFile(const std::string& path, int64_t version, const DeltaRecordFn& on_record, uint64_t* token) {
  DeltaReader reader(path);
  SLUICE_RETURN_IF_ERROR(reader.Open());
  char header[kDeltaHeaderSize];
  SLUICE_RETURN_IF_ERROR(reader.Read(header, sizeof(header)));
  SLUICE_RETURN_IF_ERROR(CheckDeltaHeader(header, path, version, token));

  // Two buffers, swapped per record, so the order check needs no extra copy.
  std::string key, previous_key, value;
  uint64_t records = 0;
  for (;;) {
    char tag = 0;
    SLUICE_RETURN_IF_ERROR(reader.Read(&tag, 1));
    if (tag == kEndTag) break;
    if (tag != kPutTag && tag != kRemoveTag)
      return Corrupt(path, "record " + std::to_string(records) + " has the unknown tag " +
                               std::to_string(static_cast<unsigned char>(tag)));
    uint64_t key_size = 0;
    SLUICE_RETURN_IF_ERROR(reader.ReadInteger(4, &key_size));
    SLUICE_RETURN_IF_ERROR(reader.ReadString(key_size, &key));
    if (records > 0 && !(previous_key < key))
      return Corrupt(path, "record " + std::to_string(records) + " is out of key order");
    if (tag == kPutTag) {
      uint64_t value_size = 0;
      SLUICE_RETURN_IF_ERROR(reader.ReadInteger(4, &value_size));
      SLUICE_RETURN_IF_ERROR(reader.ReadString(value_size, &value));
      SLUICE_RETURN_IF_ERROR(on_record(key, &value));
    } else {
      SLUICE_RETURN_IF_ERROR(on_record(key, nullptr));
    }
    ++records;
    std::swap(key, previous_key);
  }
  uint64_t stored_count = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadInteger(8, &stored_count));
  if (stored_count != records)
    return Corrupt(path, "its end record counts " + std::to_string(stored_count) + " records, it holds " +
                             std::to_string(records));
  return reader.CheckTrailingChecksum();
}

Result<uint64_t> ReadDeltaToken(const std::string& path, int64_t version) {
  uint64_t size = 0;
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenForReading(path, &size));
  if (size < kDeltaHeaderSize + kDeltaEndSize + kDeltaChecksumSize)
    return Corrupt(path, "it is " + std::to_string(size) + " bytes, shorter than any complete delta (truncated?)");
  char header[kDeltaHeaderSize];
  SLUICE_RETURN_IF_ERROR(ReadAt(fd.get(), header, sizeof(header), 0, path));
  uint64_t token = 0;
  SLUICE_RETURN_IF_ERROR(CheckDeltaHeader(header, path, version, &token));
  return token;
}

Status WriteSnapshotFile(MDB_env* env, const std::string& path, int64_t version, uint64_t token) {
  const std::string temp_path = TempPathFor(path);
  UniqueFd fd(::open(temp_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Errno("cannot create", temp_path);
  auto fail = [&](Status st) {
    fd.Reset();
    ::unlink(temp_path.c_str());
    return st;
  };
  // A consistent copy of the last committed transaction, without free pages.
  int rc = mdb_env_copyfd2(env, fd.get(), MDB_CP_COMPACT);
  if (rc != MDB_SUCCESS)
    return fail(Status::IOError("cannot copy the LMDB environment to " + temp_path + ": " + mdb_strerror(rc)));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail(Errno("cannot stat", temp_path));
  const uint64_t data_length = static_cast<uint64_t>(st.st_size);

  // The copy is still in the page cache: reading it back for the checksum is cheap.
  uint32_t data_crc = 0;
  std::string buffer(kIoChunk, '\0');
  for (uint64_t offset = 0; offset < data_length;) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(buffer.size(), data_length - offset));
    Status read = ReadAt(fd.get(), buffer.data(), take, offset, temp_path);
    if (!read.ok()) return fail(read);
    data_crc = Crc32(data_crc, buffer.data(), take);
    offset += take;
  }

  char trailer[kSnapshotTrailerSize];
  std::memcpy(trailer, kSnapshotMagic, 8);
  PutLittleEndian(trailer + 8, kFormatVersion, 4);
  PutLittleEndian(trailer + 12, static_cast<uint64_t>(version), 8);
  PutLittleEndian(trailer + 20, token, 8);
  PutLittleEndian(trailer + 28, data_length, 8);
  PutLittleEndian(trailer + 36, data_crc, 4);
  PutLittleEndian(trailer + 40, Crc32(0, trailer, 40), 4);
  if (::lseek(fd.get(), static_cast<off_t>(data_length), SEEK_SET) < 0) return fail(Errno("cannot seek in", temp_path));
  Status written = WriteAll(fd.get(), trailer, sizeof(trailer), temp_path);
  if (!written.ok()) return fail(written);
  return PublishDurably(std::move(fd), temp_path, path);
}

Result<SnapshotTrailer> ReadSnapshotTrailer(const std::string& path, int64_t version) {
  uint64_t size = 0;
  SLUICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenForReading(path, &size));
  if (size < kSnapshotTrailerSize)
    return Corrupt(path, "it is " + std::to_string(size) + " bytes, shorter than its trailer (truncated?)");
  char trailer[kSnapshotTrailerSize];
  SLUICE_RETURN_IF_ERROR(ReadAt(fd.get(), trailer, sizeof(trailer), size - kSnapshotTrailerSize, path));
  if (std::memcmp(trailer, kSnapshotMagic, 8) != 0)
    return Corrupt(path, "it does not end with a SLUICELS trailer (truncated?)");
  if (static_cast<uint32_t>(GetLittleEndian(trailer + 40, 4)) != Crc32(0, trailer, 40))
    return Corrupt(path, "its trailer does not match its checksum");
  SLUICE_RETURN_IF_ERROR(CheckFormatAndVersion(trailer, path, version));
  SnapshotTrailer out;
  out.token = GetLittleEndian(trailer + 20, 8);
  out.data_length = GetLittleEndian(trailer + 28, 8);
  out.data_crc = static_cast<uint32_t>(GetLittleEndian(trailer + 36, 4));
  if (out.data_length + kSnapshotTrailerSize != size)
    return Corrupt(path, "it is " + std::to_string(size) + " bytes, its trailer says " +
                             std::to_string(out.data_length + kSnapshotTrailerSize) + " (truncated?)");
  return out;
}

Result<SnapshotTrailer> VerifySnapshotFile(const std::string& path, int64_t version, const std::string* copy_to) {
  SLUICE_ASSIGN_OR_RETURN(SnapshotTrailer trailer, ReadSnapshotTrailer(path, version));
  uint64_t size = 0;
  SLUICE_ASSIGN_OR_RETURN(UniqueFd in, OpenForReading(path, &size));
  UniqueFd out;
  if (copy_to) {
    out = UniqueFd(::open(copy_to->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (out.get() < 0) return Errno("cannot create", *copy_to);
  }
  auto fail = [&](Status st) -> Status {
    if (copy_to) {
      out.Reset();
      ::unlink(copy_to->c_str());
    }
    return st;
  };
  uint32_t crc = 0;
  std::string buffer(kIoChunk, '\0');
  for (uint64_t offset = 0; offset < trailer.data_length;) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(buffer.size(), trailer.data_length - offset));
    Status read = ReadAt(in.get(), buffer.data(), take, offset, path);
    if (!read.ok()) return fail(read);
    crc = Crc32(crc, buffer.data(), take);
    if (copy_to) {
      Status written = WriteAll(out.get(), buffer.data(), take, *copy_to);
      if (!written.ok()) return fail(written);
    }
    offset += take;
  }
  if (crc != trailer.data_crc) return fail(Corrupt(path, "its data does not match its checksum"));
  if (copy_to && ::fsync(out.get()) != 0) return fail(Errno("cannot fsync", *copy_to));
  return trailer;
}

}  // namespace sluice::state_lmdb
