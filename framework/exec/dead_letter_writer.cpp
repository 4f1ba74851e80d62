#include "exec/dead_letter_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/json_writer.h"

namespace sluice {

DeadLetterWriter::~DeadLetterWriter() {
  if (file_) std::fclose(file_);
}

Status DeadLetterWriter::Write(std::string_view source, int64_t batch_id, std::string_view position,
                               std::string_view error, std::string_view raw) {
  JsonWriter w;
  w.BeginObject().Key("source").String(source).Key("batchId").Int(batch_id).Key("position").String(position);
  w.Key("error").String(error).Key("raw").String(raw).EndObject();
  std::string line = w.str() + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
    file_ = std::fopen(path_.c_str(), "ab");
    if (!file_) return Status::IOError("cannot open dead-letter file " + path_ + ": " + std::strerror(errno));
  }
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size())
    return Status::IOError("cannot write dead-letter file " + path_ + ": " + std::strerror(errno));
  dirty_ = true;
  return Status::OK();
}

Status DeadLetterWriter::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_ || !dirty_) return Status::OK();
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0)
    return Status::IOError("cannot sync dead-letter file " + path_ + ": " + std::strerror(errno));
  dirty_ = false;
  return Status::OK();
}

}  // namespace sluice
