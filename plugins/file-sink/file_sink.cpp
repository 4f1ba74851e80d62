// The file sink writes each micro-batch as one part file in a directory, in
// JSON lines or CSV. The file name comes from the batch id alone
// (part-00007.jsonl), so a batch replayed after a crash rewrites the same file
// rather than adding a duplicate. A part file is written under a hidden
// temporary name in the same directory, fsynced, renamed into place and the
// directory fsynced, so a reader that lists the directory sees whole files or
// none, and a file that has been announced survives a power loss. A batch with
// no rows writes no file.
//
// Formats: jsonl writes each row as sluice::AppendRowJson does; csv follows
// RFC 4180 with the cell text of sluice::AppendCellText (a field holding the
// delimiter, a quote, CR or LF is quoted, quotes doubled; null is an empty
// field and an empty string is "", as Spark's CSV writer does), lines end
// in LF, and `header` adds the column names to every file.
//
// Guarantee: at-least-once for now. A crash after a part file is renamed but
// before the executor records the batch leaves a file that the replay then
// overwrites with the same rows, so readers can briefly see a batch that is
// later rewritten. A later change adds a manifest of committed batch ids under
// the sink's checkpoint directory (as Spark's _spark_metadata), written in
// CommitBatch and consulted in IsCommitted; readers that follow the manifest
// then get exactly-once output.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "sluice/sluice.h"

namespace {

using sluice::BatchData;
using sluice::Column;
using sluice::DeliveryGuarantee;
using sluice::RecordBatch;
using sluice::Result;
using sluice::Schema;
using sluice::SinkContext;
using sluice::Status;

namespace fs = std::filesystem;

enum class FileFormat { kJsonl, kCsv };

const char* Extension(FileFormat format) { return format == FileFormat::kCsv ? "csv" : "jsonl"; }

Status ErrnoError(const std::string& what, int error_number) {
  return Status::IOError("file sink: " + what + ": " + std::strerror(error_number));
}

// part-00042.csv: at least five digits, so names sort by batch id up to 99999
// and stay unique beyond.
std::string PartFileName(int64_t batch_id, FileFormat format) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%05lld", static_cast<long long>(batch_id));
  return std::string("part-") + digits + "." + Extension(format);
}

// Where a part file is written before it is renamed into place. The leading dot
// hides it from readers that skip hidden files, as Hadoop-style readers do.
std::string TempFileName(const std::string& part_file_name) { return "." + part_file_name + ".tmp"; }

bool IsTempFileName(std::string_view name) {
  return name.starts_with(".part-") && name.ends_with(".tmp");
}

// "out/" and "out" name the same directory; file paths join with one '/'.
std::string WithoutTrailingSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// Makes a directory's entries (a rename, a new file) durable.
Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory '" + dir + "' to sync it", errno);
  int rc = ::fsync(fd);
  int sync_errno = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError("cannot sync directory '" + dir + "'", sync_errno);
  return Status::OK();
}

// Writes `contents` to a new file at `path` and fsyncs it. On failure the
// file is removed, so no partial file stays behind.
Status WriteAndSyncFile(const std::string& path, std::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create '" + path + "'", errno);
  auto fail = [&](const std::string& what) {
    int error_number = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return ErrnoError(what + " '" + path + "'", error_number);
  };
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    int error_number = errno;
    ::unlink(path.c_str());
    return ErrnoError("cannot close '" + path + "'", error_number);
  }
  return Status::OK();
}

// One column's cells rendered to text back to back, with the end offset of
// each, so a whole column is formatted in one pass before rows are assembled.
struct RenderedColumn {
  std::string text;
  std::vector<size_t> ends;

  std::string_view cell(int64_t row) const {
    const size_t begin = row == 0 ? 0 : ends[static_cast<size_t>(row - 1)];
    return std::string_view(text).substr(begin, ends[static_cast<size_t>(row)] - begin);
  }
};

RenderedColumn RenderJsonColumn(const Column& column, int64_t rows) {
  RenderedColumn rendered;
  rendered.ends.reserve(static_cast<size_t>(rows));
  for (int64_t row = 0; row < rows; ++row) {
    sluice::AppendCellJson(rendered.text, column, row);
    rendered.ends.push_back(rendered.text.size());
  }
  return rendered;
}

// Appends one non-null CSV field, quoted when RFC 4180 requires it. An empty
// value is written as "" so that only null leaves a field empty.
void AppendCsvField(std::string& out, std::string_view text, const std::string& delimiter) {
  const bool needs_quotes = text.empty() || text.find(delimiter) != std::string_view::npos ||
                            text.find_first_of("\"\r\n") != std::string_view::npos;
  if (!needs_quotes) {
    out += text;
    return;
  }
  out.push_back('"');
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

RenderedColumn RenderCsvColumn(const Column& column, int64_t rows, const std::string& delimiter) {
  RenderedColumn rendered;
  rendered.ends.reserve(static_cast<size_t>(rows));
  std::string value;
  for (int64_t row = 0; row < rows; ++row) {
    if (column.is_valid(row)) {
      value.clear();
      sluice::AppendCellText(value, column, row);
      AppendCsvField(rendered.text, value, delimiter);
    }
    rendered.ends.push_back(rendered.text.size());
  }
  return rendered;
}

// Appends every row of `batch` as a JSON object line, byte for byte what
// sluice::AppendRowJson gives, with each column formatted in one pass.
void AppendJsonLines(std::string& out, const RecordBatch& batch) {
  const int columns = batch.num_columns();
  std::vector<std::string> key_prefixes(static_cast<size_t>(columns));  // "\"name\":" with a ',' after the first
  std::vector<RenderedColumn> rendered;
  rendered.reserve(static_cast<size_t>(columns));
  for (int c = 0; c < columns; ++c) {
    std::string& prefix = key_prefixes[static_cast<size_t>(c)];
    if (c) prefix.push_back(',');
    sluice::AppendJsonString(prefix, batch.schema()->field(c).name);
    prefix.push_back(':');
    rendered.push_back(RenderJsonColumn(batch.column(c), batch.num_rows()));
  }
  for (int64_t row = 0; row < batch.num_rows(); ++row) {
    out.push_back('{');
    for (int c = 0; c < columns; ++c) {
      out += key_prefixes[static_cast<size_t>(c)];
      out += rendered[static_cast<size_t>(c)].cell(row);
    }
    out += "}\n";
  }
}

void AppendCsvLines(std::string& out, const RecordBatch& batch, const std::string& delimiter) {
  const int columns = batch.num_columns();
  std::vector<RenderedColumn> rendered;
  rendered.reserve(static_cast<size_t>(columns));
  for (int c = 0; c < columns; ++c) rendered.push_back(RenderCsvColumn(batch.column(c), batch.num_rows(), delimiter));
  for (int64_t row = 0; row < batch.num_rows(); ++row) {
    for (int c = 0; c < columns; ++c) {
      if (c) out += delimiter;
      out += rendered[static_cast<size_t>(c)].cell(row);
    }
    out.push_back('\n');
  }
}

void AppendCsvHeader(std::string& out, const Schema& schema, const std::string& delimiter) {
  for (int c = 0; c < schema.num_fields(); ++c) {
    if (c) out += delimiter;
    AppendCsvField(out, schema.field(c).name, delimiter);
  }
  out.push_back('\n');
}

class FileSink final : public sluice::Sink {
 public:
  explicit FileSink(const SinkContext& ctx)
      : dir_(WithoutTrailingSlashes(ctx.options.GetString("path"))),
        format_(ctx.options.GetString("format", "jsonl") == "csv" ? FileFormat::kCsv : FileFormat::kJsonl),
        csv_header_(ctx.options.GetBool("header", false)),
        csv_delimiter_(ctx.options.GetString("delimiter", ",")),
        input_schema_(ctx.input_schema) {
    PrepareDirectory();
  }

  static Status Validate(const sluice::Options& options) {
    const std::string delimiter = options.GetString("delimiter", ",");
    if (delimiter.empty()) return Status::InvalidArgument("delimiter must not be empty");
    if (delimiter.find_first_of("\"\r\n") != std::string::npos)
      return Status::InvalidArgument("delimiter must not contain a quote, CR or LF, got '" + delimiter + "'");
    return Status::OK();
  }

  // At-least-once until committed batch ids are kept in a manifest: see the
  // comment at the top of this file.
  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kAtLeastOnce; }

  std::string Description() const override { return "FileSink[" + dir_ + "]"; }

  Status AddBatch(const BatchData& data) override {
    if (data.batch_id < 0)
      return Status::InvalidArgument("file sink: batch id " + std::to_string(data.batch_id) + " is negative");
    if (IsCommitted(data.batch_id)) return Status::OK();
    std::vector<std::string> files;
    if (data.num_rows() > 0) {
      SLUICE_ASSIGN_OR_RETURN(std::string file, WritePartFile(data.batch_id, Encode(data)));
      files.push_back(std::move(file));
    }
    return CommitBatch(data.batch_id, files);
  }

 private:
  // Creates the output directory if needed and removes temporary files a
  // crashed writer left behind; the directory belongs to this sink.
  void PrepareDirectory() {
    std::error_code ec;
    if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
      throw std::runtime_error("'" + dir_ + "' is not a directory");
    const fs::path target = fs::absolute(fs::path(dir_)).lexically_normal();
    fs::path existing = target;
    while (!existing.empty() && existing != existing.root_path() && !fs::exists(existing, ec))
      existing = existing.parent_path();
    if (!fs::create_directories(dir_, ec) && ec)
      throw std::runtime_error("cannot create directory '" + dir_ + "': " + ec.message());
    // Make each new directory's entry durable, up to the one that existed.
    for (fs::path created = target; created != existing; created = created.parent_path()) {
      Status synced = SyncDirectory(created.parent_path().string());
      if (!synced.ok()) throw std::runtime_error(synced.message());
    }
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
      if (IsTempFileName(it->path().filename().string())) fs::remove(it->path(), ec);
    }
    if (ec) throw std::runtime_error("cannot clean up '" + dir_ + "': " + ec.message());
  }

  // Whether this batch's output is already committed, so a replay can be
  // skipped. Nothing records commits yet, so a replay always rewrites.
  bool IsCommitted(int64_t /*batch_id*/) const { return false; }

  // Records that `batch_id` produced `files` (none for an empty batch). This is
  // where the manifest entry will be written; until then the renamed part file
  // is the whole commit.
  Status CommitBatch(int64_t /*batch_id*/, const std::vector<std::string>& /*files*/) { return Status::OK(); }

  std::string Encode(const BatchData& data) const {
    std::string out;
    if (format_ == FileFormat::kCsv) {
      if (csv_header_) AppendCsvHeader(out, data.schema ? *data.schema : input_schema_, csv_delimiter_);
      for (const auto& batch : data.batches) AppendCsvLines(out, *batch, csv_delimiter_);
    } else {
      for (const auto& batch : data.batches) AppendJsonLines(out, *batch);
    }
    return out;
  }

  // Writes the batch's part file atomically: temp file, fsync, rename, then
  // fsync the directory so the rename survives a crash. Returns its path.
  Result<std::string> WritePartFile(int64_t batch_id, const std::string& contents) {
    const std::string name = PartFileName(batch_id, format_);
    const std::string final_path = dir_ + "/" + name;
    const std::string temp_path = dir_ + "/" + TempFileName(name);
    SLUICE_RETURN_IF_ERROR(WriteAndSyncFile(temp_path, contents));
    if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
      int error_number = errno;
      ::unlink(temp_path.c_str());
      return ErrnoError("cannot rename '" + temp_path + "' to '" + final_path + "'", error_number);
    }
    SLUICE_RETURN_IF_ERROR(SyncDirectory(dir_));
    return final_path;
  }

  std::string dir_;
  FileFormat format_;
  bool csv_header_;
  std::string csv_delimiter_;
  Schema input_schema_;
};

const sluice::OptionSpec kFileOptions[] = {
    {"path", sluice::OptionType::kPath, nullptr, true,
     "directory the part files are written to (created if missing; owned by this sink)"},
    {"format", sluice::OptionType::kString, "jsonl", false, "file format", "jsonl|csv"},
    {"header", sluice::OptionType::kBool, "false", false, "csv: start every file with the column names"},
    {"delimiter", sluice::OptionType::kString, ",", false, "csv: the field separator"},
};

}  // namespace

SLUICE_REGISTER_SINK("file", SLUICE_VERSION_STRING,
                       "Writes each batch as one jsonl or csv part file, atomically (at-least-once: a replayed batch rewrites "
      "its own file)",
                       kFileOptions, FileSink)
