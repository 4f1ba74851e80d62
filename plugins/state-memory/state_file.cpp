// Reading and writing the memory state store's delta and snapshot files (format
// in state_file.h), and the durable file operations around them: the same
// pattern as the framework's checkpoint files (temporary file, fsync, rename,
// fsync of the directory), repeated here because a plugin does not link the
// framework.

#include "state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>

namespace sluice::state_memory {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'S', 'T'};
constexpr uint32_t kFormatVersion = 1;
constexpr char kPutTag = 'P';
constexpr char kRemoveTag = 'R';
constexpr char kEndTag = 'E';
constexpr size_t kHeaderSize = sizeof(kMagic) + 4 + 1 + 8;
constexpr size_t kEndSize = 1 + 8;
constexpr size_t kTrailerSize = 4;
constexpr size_t kIoChunk = 64 * 1024;

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

void PutLittleEndian(char* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t GetLittleEndian(const char* in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

const char* KindName(StateFileKind kind) { return kind == StateFileKind::kDelta ? "delta" : "snapshot"; }

// Parses "<digits><suffix>" into a version; false for any other name.

// Sequential, checksummed reads of one state file. Every length read from the
// file is checked against the bytes that remain before it is used, so a garbled
// length is reported as corruption rather than allocated.
class StateFileReader {
 public:
  explicit StateFileReader(const std::string& path) : path_(path) {}
  ~StateFileReader() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Open() {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT) return Status::NotFound("state file " + path_ + " does not exist");
      return Errno("cannot open", path_);
    }
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Errno("cannot stat", path_);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size < kHeaderSize + kEndSize + kTrailerSize)
      return Corrupt("it is " + std::to_string(size) + " bytes, shorter than any complete state file (truncated?)");
    data_end_ = size - kTrailerSize;
    return Status::OK();
  }

  uint64_t remaining() const { return data_end_ - position_; }

  // Reads `size` checksummed bytes that must lie before the trailer.
  Status Read(char* out, size_t size) {
    if (size > remaining()) return Corrupt("it ends in the middle of a record (truncated?)");
    SLUICE_RETURN_IF_ERROR(ReadRaw(out, size));
    crc_ = Crc32(crc_, out, size);
    position_ += size;
    return Status::OK();
  }

  Status ReadString(uint64_t size, std::string* out) {
    if (size > remaining()) return Corrupt("a record claims " + std::to_string(size) + " bytes, more than the file holds");
    out->resize(size);
    return Read(out->data(), size);
  }

  Status ReadU32(uint32_t* v) {
    char b[4];
    SLUICE_RETURN_IF_ERROR(Read(b, 4));
    *v = static_cast<uint32_t>(GetLittleEndian(b, 4));
    return Status::OK();
  }

  Status ReadU64(uint64_t* v) {
    char b[8];
    SLUICE_RETURN_IF_ERROR(Read(b, 8));
    *v = GetLittleEndian(b, 8);
    return Status::OK();
  }

  // After the end record: nothing may follow but the trailer, which must match.
  Status CheckTrailer() {
    if (position_ != data_end_)
      return Corrupt(std::to_string(remaining()) + " unexpected bytes follow its end record");
    char b[kTrailerSize];
    SLUICE_RETURN_IF_ERROR(ReadRaw(b, kTrailerSize));
    uint32_t stored = static_cast<uint32_t>(GetLittleEndian(b, 4));
    if (stored != crc_) return Corrupt("its checksum does not match its contents");
    return Status::OK();
  }

  Status Corrupt(const std::string& why) const {
    return Status::Corruption("state file " + path_ + " is corrupt: " + why);
  }

 private:
  Status ReadRaw(char* out, size_t size) {
    while (size > 0) {
      if (buffer_pos_ == buffer_.size()) {
        buffer_.resize(kIoChunk);
        ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
        if (n < 0) {
          if (errno == EINTR) {
            buffer_.clear();
            buffer_pos_ = 0;
            continue;
          }
          return Errno("cannot read", path_);
        }
        buffer_.resize(static_cast<size_t>(n));
        buffer_pos_ = 0;
        // The file shrank after fstat: the same as a truncated file.
        if (n == 0) return Corrupt("it ends in the middle of a record (truncated?)");
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
  int fd_ = -1;
  uint64_t data_end_ = 0;
  uint64_t position_ = 0;
  uint32_t crc_ = 0;
  std::string buffer_;
  size_t buffer_pos_ = 0;
};

}  // namespace

std::string DeltaFileName(int64_t version) { return std::to_string(version) + ".delta"; }
std::string SnapshotFileName(int64_t version) { return std::to_string(version) + ".snapshot"; }

StateFileWriter::StateFileWriter(std::string path, StateFileKind kind, int64_t version)
    : path_(std::move(path)), kind_(kind), version_(version) {
  fs::path target(path_);
  std::string temp_name = ".";  // appended piecewise: "." + name trips a false -Wrestrict in g++ 12
  temp_name += target.filename().string();
  temp_name += ".tmp";
  temp_path_ = (target.parent_path() / temp_name).string();
}

StateFileWriter::~StateFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_path_.c_str());
  }
}

Status StateFileWriter::Open() {
  // O_TRUNC: a temporary file left by a crashed attempt is simply overwritten.
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return Errno("cannot create", temp_path_);
  buffer_.reserve(kIoChunk + 64);
  char header[kHeaderSize];
  std::memcpy(header, kMagic, sizeof(kMagic));
  PutLittleEndian(header + 8, kFormatVersion, 4);
  header[12] = static_cast<char>(kind_);
  PutLittleEndian(header + 13, static_cast<uint64_t>(version_), 8);
  return Append(header, sizeof(header));
}

Status StateFileWriter::AddPut(std::string_view key, std::string_view value) {
  SLUICE_RETURN_IF_ERROR(Append(&kPutTag, 1));
  SLUICE_RETURN_IF_ERROR(AppendLength(key.size(), "key"));
  SLUICE_RETURN_IF_ERROR(Append(key.data(), key.size()));
  SLUICE_RETURN_IF_ERROR(AppendLength(value.size(), "value"));
  SLUICE_RETURN_IF_ERROR(Append(value.data(), value.size()));
  ++record_count_;
  return Status::OK();
}

Status StateFileWriter::AddRemove(std::string_view key) {
  SLUICE_RETURN_IF_ERROR(Append(&kRemoveTag, 1));
  SLUICE_RETURN_IF_ERROR(AppendLength(key.size(), "key"));
  SLUICE_RETURN_IF_ERROR(Append(key.data(), key.size()));
  ++record_count_;
  return Status::OK();
}

Status StateFileWriter::Finish() {
  SLUICE_RETURN_IF_ERROR(Append(&kEndTag, 1));
  SLUICE_RETURN_IF_ERROR(AppendU64(record_count_));
  char trailer[kTrailerSize];
  PutLittleEndian(trailer, crc_, 4);
  buffer_.append(trailer, sizeof(trailer));  // the checksum does not cover itself
  SLUICE_RETURN_IF_ERROR(Flush());
  if (::fsync(fd_) != 0) return Errno("cannot fsync", temp_path_);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    Status st = Errno("cannot close", temp_path_);
    ::unlink(temp_path_.c_str());
    return st;
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    Status st = Errno("cannot rename " + temp_path_ + " to", path_);
    ::unlink(temp_path_.c_str());
    return st;
  }
  return SyncDirectory(fs::path(path_).parent_path().string());
}

Status StateFileWriter::Append(const void* data, size_t size) {
  crc_ = Crc32(crc_, data, size);
  const char* p = static_cast<const char*>(data);
  // Large values go straight to the file instead of through the buffer.
  if (size >= kIoChunk) {
    SLUICE_RETURN_IF_ERROR(Flush());
    return WriteAll(p, size);
  }
  buffer_.append(p, size);
  if (buffer_.size() >= kIoChunk) return Flush();
  return Status::OK();
}

Status StateFileWriter::AppendU32(uint32_t v) {
  char b[4];
  PutLittleEndian(b, v, 4);
  return Append(b, 4);
}

Status StateFileWriter::AppendU64(uint64_t v) {
  char b[8];
  PutLittleEndian(b, v, 8);
  return Append(b, 8);
}

Status StateFileWriter::AppendLength(size_t size, std::string_view what) {
  if (size > std::numeric_limits<uint32_t>::max())
    return Status::InvalidArgument("a state " + std::string(what) + " of " + std::to_string(size) +
                                   " bytes is larger than the 4 GiB a state file record holds");
  return AppendU32(static_cast<uint32_t>(size));
}

Status StateFileWriter::Flush() {
  SLUICE_RETURN_IF_ERROR(WriteAll(buffer_.data(), buffer_.size()));
  buffer_.clear();
  return Status::OK();
}

Status StateFileWriter::WriteAll(const char* p, size_t left) {
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", temp_path_);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Status ReadStateFile(const std::string& path, StateFileKind kind, int64_t version, const StateRecordFn& on_record) {
  StateFileReader reader(path);
  SLUICE_RETURN_IF_ERROR(reader.Open());

  char magic[sizeof(kMagic)];
  SLUICE_RETURN_IF_ERROR(reader.Read(magic, sizeof(magic)));
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) return reader.Corrupt("it does not start with SLUICEST");
  uint32_t format_version = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadU32(&format_version));
  if (format_version != kFormatVersion)
    return reader.Corrupt("format version " + std::to_string(format_version) + " is not the supported version " +
                          std::to_string(kFormatVersion));
  char kind_byte = 0;
  SLUICE_RETURN_IF_ERROR(reader.Read(&kind_byte, 1));
  if (kind_byte != static_cast<char>(kind)) return reader.Corrupt(std::string("it is not a ") + KindName(kind) + " file");
  uint64_t stored_version = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadU64(&stored_version));
  if (static_cast<int64_t>(stored_version) != version)
    return reader.Corrupt("it holds version " + std::to_string(static_cast<int64_t>(stored_version)) + ", not " +
                          std::to_string(version));

  // Two buffers, swapped per record, so the order check needs no extra copy.
  std::string key, previous_key, value;
  uint64_t records = 0;
  for (;;) {
    char tag = 0;
    SLUICE_RETURN_IF_ERROR(reader.Read(&tag, 1));
    if (tag == kEndTag) break;
    if (tag != kPutTag && !(tag == kRemoveTag && kind == StateFileKind::kDelta))
      return reader.Corrupt("record " + std::to_string(records) + " has the unknown tag " +
                            std::to_string(static_cast<unsigned char>(tag)));
    uint32_t key_size = 0;
    SLUICE_RETURN_IF_ERROR(reader.ReadU32(&key_size));
    SLUICE_RETURN_IF_ERROR(reader.ReadString(key_size, &key));
    if (records > 0 && !(previous_key < key))
      return reader.Corrupt("record " + std::to_string(records) + " is out of key order");
    if (tag == kPutTag) {
      uint32_t value_size = 0;
      SLUICE_RETURN_IF_ERROR(reader.ReadU32(&value_size));
      SLUICE_RETURN_IF_ERROR(reader.ReadString(value_size, &value));
      SLUICE_RETURN_IF_ERROR(on_record(key, &value));
    } else {
      SLUICE_RETURN_IF_ERROR(on_record(key, nullptr));
    }
    ++records;
    std::swap(key, previous_key);
  }
  uint64_t stored_count = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadU64(&stored_count));
  if (stored_count != records)
    return reader.Corrupt("its end record counts " + std::to_string(stored_count) + " records, it holds " +
                          std::to_string(records));
  return reader.CheckTrailer();
}

}  // namespace sluice::state_memory
