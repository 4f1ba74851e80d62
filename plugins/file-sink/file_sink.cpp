// The file sink writes each micro-batch as one part file in a directory, in
// JSON lines or CSV, and records every committed batch in a manifest log in
// that directory, `_sluice_metadata/<batchId>`, as Spark's file sink does with
// _spark_metadata. The part file name comes from the batch id alone
// (part-00007.jsonl). A batch whose manifest entry exists is a replay of a
// committed batch and is skipped; any other batch writes its part file
// (replacing an earlier, uncommitted attempt of the same id) and then its
// manifest entry. Both are written under a hidden temporary name, fsynced,
// renamed into place and their directory fsynced, so each appears whole or not
// at all and survives a power loss once announced.
//
// Guarantee: exactly-once for readers that follow the manifest, under the rule
// "the committed data of the directory is the union of the files named in
// _sluice_metadata/*; ignore every other file" (FileSinkCommittedFiles below
// applies it). A plain listing of the directory is only at-least-once: it may
// also show the part file of a batch that crashed after the part file's rename
// and before its manifest entry, until the replay of that batch overwrites it
// with the same rows and commits it. The output directory belongs to one query
// and its checkpoint: a query started over with a fresh checkpoint needs a
// fresh output directory too, or its batch ids would be taken for replays and
// skipped (the same rule as Spark's).
//
// Manifest format, version 1 (read by the framework too, e.g. by
// `sluice checkpoint inspect`, so changes need a new version line):
//   - one file per committed batch: <dir>/_sluice_metadata/<batchId>, the
//     batch id in decimal without leading zeros; other names in that
//     directory (the writer's temporary ".<batchId>.tmp" files) are not
//     entries;
//   - the first line is exactly `v1`;
//   - then one line per file the batch added, a JSON object
//       {"path":"part-00003.jsonl","size":123,"batchId":3,"action":"add"}
//     where path is relative to <dir>, size is its length in bytes, batchId
//     equals the entry's name and action is always "add" in v1; members
//     are strings and integers only, and a reader ignores members it does
//     not know;
//   - a batch with no rows has the `v1` line only;
//   - every line, the last included, ends in "\n"; an entry that does not is
//     truncated and so corrupt.
//
// Crash points (sluice::CrashPoint, armed with SLUICE_CRASH_AT):
//   file-sink:before-write        the batch is not committed and nothing of it
//                                 is written yet
//   file-sink:after-part-rename   the part file is in place and durable, its
//                                 manifest entry is not written (hit only by a
//                                 batch with rows)
//   file-sink:after-manifest      the manifest entry is durable; the executor
//                                 has not yet recorded the batch in commits/
//
// Formats: jsonl writes each row as sluice::AppendRowJson does; csv follows
// RFC 4180 with the cell text of sluice::AppendCellText (a field holding the
// delimiter, a quote, CR or LF is quoted, quotes doubled; null is an empty
// field and an empty string is "", as Spark's CSV writer does), lines end
// in LF, and `header` adds the column names to every file. A batch with no
// rows writes no part file.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/durable_file.h"
#include "sluice/sluice.h"

namespace sluice::file_sink {
namespace {

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
Status SyncDirectory(const std::string& dir) { return sluice::SyncDirectory(dir).WithContext("file sink"); }

// Writes `pieces`, one after the other, to a new file at `path` and fsyncs it. On failure the
// file is removed, so no partial file stays behind.
Status WriteAndSyncFile(const std::string& path, const std::vector<std::string_view>& pieces) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create '" + path + "'", errno);
  auto fail = [&](const std::string& what) {
    int error_number = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return ErrnoError(what + " '" + path + "'", error_number);
  };
  for (std::string_view contents : pieces) {
    size_t written = 0;
    while (written < contents.size()) {
      ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail("cannot write");
      }
      written += static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    int error_number = errno;
    ::unlink(path.c_str());
    return ErrnoError("cannot close '" + path + "'", error_number);
  }
  return Status::OK();
}

// Writes `pieces` as one file `final_name` atomically: a temporary file in the same
// directory, fsync, rename over any earlier file, then fsync the directory so
// the rename survives a crash.
Status WriteFileAtomically(const std::string& dir, const std::string& temp_name, const std::string& final_name,
                           const std::vector<std::string_view>& pieces) {
  const std::string final_path = dir + "/" + final_name;
  const std::string temp_path = dir + "/" + temp_name;
  SLUICE_RETURN_IF_ERROR(WriteAndSyncFile(temp_path, pieces));
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    int error_number = errno;
    ::unlink(temp_path.c_str());
    return ErrnoError("cannot rename '" + temp_path + "' to '" + final_path + "'", error_number);
  }
  return SyncDirectory(dir);
}

// The whole file, or nullopt if it does not exist.
Result<std::optional<std::string>> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return ErrnoError("cannot open '" + path + "'", errno);
  }
  std::string contents;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      int error_number = errno;
      ::close(fd);
      return ErrnoError("cannot read '" + path + "'", error_number);
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(contents));
}

// ---------------------------------------------------------------------------
// The manifest log (format in the comment at the top of this file).

constexpr const char* kManifestDirName = "_sluice_metadata";
constexpr std::string_view kManifestVersionLine = "v1";

std::string ManifestDir(const std::string& dir) { return dir + "/" + kManifestDirName; }
std::string ManifestEntryName(int64_t batch_id) { return std::to_string(batch_id); }
std::string ManifestEntryPath(const std::string& dir, int64_t batch_id) {
  return ManifestDir(dir) + "/" + ManifestEntryName(batch_id);
}
// Hidden, so a crash mid-write never leaves something that looks like an entry.
std::string ManifestTempName(int64_t batch_id) { return "." + ManifestEntryName(batch_id) + ".tmp"; }

bool IsManifestTempName(std::string_view name) { return name.starts_with('.') && name.ends_with(".tmp"); }

// The batch id an entry's file name stands for; nullopt for any other name.
// Only the canonical spelling counts, so "07" can never shadow "7".
std::optional<int64_t> BatchIdOfEntryName(std::string_view name) {
  int64_t batch_id = 0;
  auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), batch_id);
  if (error != std::errc() || end != name.data() + name.size() || batch_id < 0) return std::nullopt;
  if (ManifestEntryName(batch_id) != name) return std::nullopt;
  return batch_id;
}

struct CommittedFile {
  std::string path;  // relative to the output directory
  int64_t size = 0;
};

struct ManifestEntry {
  int64_t batch_id = 0;
  std::vector<CommittedFile> files;
};

std::string EncodeManifestEntry(int64_t batch_id, const std::vector<CommittedFile>& files) {
  std::string out(kManifestVersionLine);
  out.push_back('\n');
  for (const CommittedFile& file : files) {
    out += "{\"path\":";
    AppendJsonString(out, file.path);
    out += ",\"size\":" + std::to_string(file.size) + ",\"batchId\":" + std::to_string(batch_id) +
           ",\"action\":\"add\"}\n";
  }
  return out;
}

// A flat JSON object of string and integer members: all a v1 file line holds.
using JsonScalar = std::variant<std::string, int64_t>;
using FlatJsonObject = std::map<std::string, JsonScalar, std::less<>>;

// Parses one line as a flat JSON object; on failure returns why, for the
// corruption message.
class FlatJsonObjectParser {
 public:
  explicit FlatJsonObjectParser(std::string_view text) : text_(text) {}

  std::variant<FlatJsonObject, std::string> Parse() {
    FlatJsonObject object;
    SkipSpaces();
    if (!Consume('{')) return "expected '{'";
    SkipSpaces();
    if (!Consume('}')) {
      for (;;) {
        SkipSpaces();
        std::string key;
        if (Peek() != '"') return "expected a quoted member name at column " + Column();
        if (auto error = ParseString(key)) return *error;
        SkipSpaces();
        if (!Consume(':')) return "expected ':' after \"" + key + "\"";
        SkipSpaces();
        JsonScalar value;
        if (Peek() == '"') {
          std::string text;
          if (auto error = ParseString(text)) return *error;
          value = std::move(text);
        } else {
          int64_t number = 0;
          if (auto error = ParseInteger(number)) return *error;
          value = number;
        }
        if (!object.emplace(key, std::move(value)).second) return "member \"" + key + "\" appears twice";
        SkipSpaces();
        if (Consume('}')) break;
        if (!Consume(',')) return "expected ',' or '}' at column " + Column();
      }
    }
    SkipSpaces();
    if (pos_ != text_.size()) return "unexpected text after the closing '}' at column " + Column();
    return object;
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool Consume(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  void SkipSpaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\r')) ++pos_;
  }
  std::string Column() const { return std::to_string(pos_ + 1); }

  static void AppendUtf8(std::string& out, uint32_t code_point) {
    if (code_point < 0x80) {
      out.push_back(static_cast<char>(code_point));
    } else if (code_point < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
      out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else if (code_point < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
    }
  }

  std::optional<std::string> ParseHex4(uint32_t& value) {
    if (pos_ + 4 > text_.size()) return "incomplete \\u escape";
    value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') value |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') value |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') value |= static_cast<uint32_t>(c - 'A' + 10);
      else return "bad \\u escape";
    }
    return std::nullopt;
  }

  std::optional<std::string> ParseString(std::string& out) {
    ++pos_;  // the opening quote
    for (;;) {
      if (pos_ >= text_.size()) return "unterminated string";
      const char c = text_[pos_++];
      if (c == '"') return std::nullopt;
      if (static_cast<unsigned char>(c) < 0x20) return "control character in a string at column " + Column();
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) return "unterminated string";
      switch (const char escaped = text_[pos_++]) {
        case '"': case '\\': case '/': out.push_back(escaped); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t code_point = 0;
          if (auto error = ParseHex4(code_point)) return error;
          if (code_point >= 0xD800 && code_point < 0xDC00) {
            uint32_t low = 0;
            if (!Consume('\\') || !Consume('u')) return "unpaired surrogate in a \\u escape";
            if (auto error = ParseHex4(low)) return error;
            if (low < 0xDC00 || low >= 0xE000) return "unpaired surrogate in a \\u escape";
            code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
          } else if (code_point >= 0xDC00 && code_point < 0xE000) {
            return "unpaired surrogate in a \\u escape";
          }
          AppendUtf8(out, code_point);
          break;
        }
        default: return std::string("bad escape '\\") + escaped + "' in a string";
      }
    }
  }

  std::optional<std::string> ParseInteger(int64_t& value) {
    const size_t begin = pos_;
    if (Peek() == '-') ++pos_;
    if (!(Peek() >= '0' && Peek() <= '9')) return "expected a string or an integer at column " + std::to_string(begin + 1);
    while (Peek() >= '0' && Peek() <= '9') ++pos_;
    if (Peek() == '.' || Peek() == 'e' || Peek() == 'E') return "expected an integer at column " + std::to_string(begin + 1);
    auto [end, error] = std::from_chars(text_.data() + begin, text_.data() + pos_, value);
    if (error != std::errc() || end != text_.data() + pos_) return "integer out of range at column " + std::to_string(begin + 1);
    return std::nullopt;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// A path a manifest may name: relative, inside the output directory.
bool IsRelativePathInside(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  for (const auto& part : fs::path(path)) {
    if (part == "..") return false;
  }
  return true;
}

Status CorruptManifestEntry(const std::string& entry_path, const std::string& problem) {
  return Status::Corruption("file sink: " + entry_path + " " + problem +
                            "; the output directory's manifest is corrupt");
}

// At most `limit` characters of a garbled line, for the error message.
std::string Excerpt(std::string_view line, size_t limit = 80) {
  std::string out;
  AppendJsonString(out, line.substr(0, limit));
  if (line.size() > limit) out += "...";
  return out;
}

// Parses entry `text` read from `entry_path`, the entry of `batch_id`.
Result<ManifestEntry> ParseManifestEntry(const std::string& entry_path, int64_t batch_id, std::string_view text) {
  const std::string of_batch = "(the manifest entry of batch " + std::to_string(batch_id) + ")";
  if (text.empty()) return CorruptManifestEntry(entry_path, of_batch + " is empty");
  if (text.back() != '\n')
    return CorruptManifestEntry(entry_path, of_batch + " is truncated: its last line does not end in a newline");
  ManifestEntry entry;
  entry.batch_id = batch_id;
  size_t line_number = 0;
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = text.find('\n', begin);
    const std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (line_number == 1) {
      if (line == kManifestVersionLine) continue;
      if (line.size() > 1 && line.front() == 'v' &&
          line.find_first_not_of("0123456789", 1) == std::string_view::npos)
        return CorruptManifestEntry(entry_path, of_batch + " has format version " + std::string(line) +
                                                    "; this file sink reads only " + std::string(kManifestVersionLine));
      return CorruptManifestEntry(entry_path, of_batch + " does not start with the line " +
                                                  std::string(kManifestVersionLine) + ", it starts with " +
                                                  Excerpt(line));
    }
    const std::string at_line = of_batch + " line " + std::to_string(line_number);
    auto parsed = FlatJsonObjectParser(line).Parse();
    if (const std::string* error = std::get_if<std::string>(&parsed))
      return CorruptManifestEntry(entry_path, at_line + " is not a valid file line (" + *error + "): " + Excerpt(line));
    const FlatJsonObject& object = std::get<FlatJsonObject>(parsed);
    auto string_member = [&](const char* key) -> const std::string* {
      auto it = object.find(key);
      return it == object.end() ? nullptr : std::get_if<std::string>(&it->second);
    };
    auto integer_member = [&](const char* key) -> const int64_t* {
      auto it = object.find(key);
      return it == object.end() ? nullptr : std::get_if<int64_t>(&it->second);
    };
    const std::string* path = string_member("path");
    const int64_t* size = integer_member("size");
    const int64_t* line_batch_id = integer_member("batchId");
    const std::string* action = string_member("action");
    if (!path || !size || !line_batch_id || !action)
      return CorruptManifestEntry(entry_path, at_line + " lacks one of \"path\" (string), \"size\", \"batchId\" "
                                                        "(integers) and \"action\" (string): " + Excerpt(line));
    if (*action != "add")
      return CorruptManifestEntry(entry_path, at_line + " has action " + Excerpt(*action) + "; v1 knows only \"add\"");
    if (*line_batch_id != batch_id)
      return CorruptManifestEntry(entry_path, at_line + " names batch " + std::to_string(*line_batch_id));
    if (*size < 0) return CorruptManifestEntry(entry_path, at_line + " has a negative size");
    if (!IsRelativePathInside(*path))
      return CorruptManifestEntry(entry_path, at_line + " has path " + Excerpt(*path) +
                                                  ", not a path inside the output directory");
    entry.files.push_back(CommittedFile{*path, *size});
  }
  return entry;
}

// The manifest entry of `batch_id` in output directory `dir`, or nullopt if
// the batch is not committed.
Result<std::optional<ManifestEntry>> ReadManifestEntry(const std::string& dir, int64_t batch_id) {
  const std::string entry_path = ManifestEntryPath(dir, batch_id);
  SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadWholeFile(entry_path));
  if (!text) return std::optional<ManifestEntry>();
  SLUICE_ASSIGN_OR_RETURN(ManifestEntry entry, ParseManifestEntry(entry_path, batch_id, *text));
  return std::optional<ManifestEntry>(std::move(entry));
}

// Every entry of the manifest in `dir`, in batch order; none when the
// directory has no manifest.
Result<std::vector<ManifestEntry>> ReadManifest(const std::string& dir) {
  const std::string manifest_dir = ManifestDir(dir);
  std::error_code ec;
  if (!fs::exists(manifest_dir, ec)) return std::vector<ManifestEntry>();
  std::vector<int64_t> batch_ids;
  for (fs::directory_iterator it(manifest_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto batch_id = BatchIdOfEntryName(it->path().filename().string())) batch_ids.push_back(*batch_id);
  }
  if (ec) return Status::IOError("file sink: cannot list '" + manifest_dir + "': " + ec.message());
  std::sort(batch_ids.begin(), batch_ids.end());
  std::vector<ManifestEntry> entries;
  entries.reserve(batch_ids.size());
  for (int64_t batch_id : batch_ids) {
    SLUICE_ASSIGN_OR_RETURN(std::optional<ManifestEntry> entry, ReadManifestEntry(dir, batch_id));
    // Vanished between the listing and the read: only a concurrent writer
    // removing entries could do that, and none does.
    if (!entry) return Status::IOError("file sink: " + ManifestEntryPath(dir, batch_id) + " vanished while reading");
    entries.push_back(std::move(*entry));
  }
  return entries;
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

class FileSink final : public Sink {
 public:
  explicit FileSink(const SinkContext& ctx)
      : dir_(WithoutTrailingSlashes(ctx.options.GetString("path"))),
        format_(ctx.options.GetString("format", "jsonl") == "csv" ? FileFormat::kCsv : FileFormat::kJsonl),
        csv_header_(ctx.options.GetBool("header", false)),
        csv_delimiter_(ctx.options.GetString("delimiter", ",")),
        input_schema_(ctx.input_schema) {}

  static Status Validate(const Options& options) {
    const std::string delimiter = options.GetString("delimiter", ",");
    if (delimiter.empty()) return Status::InvalidArgument("delimiter must not be empty");
    if (delimiter.find_first_of("\"\r\n") != std::string::npos)
      return Status::InvalidArgument("delimiter must not contain a quote, CR or LF, got '" + delimiter + "'");
    return Status::OK();
  }

  // For readers that follow the manifest: see the comment at the top of this file.
  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kExactlyOnce; }

  std::string Description() const override { return "FileSink[" + dir_ + "]"; }

  Status AddBatch(const BatchData& data) override {
    const int64_t batch_id = data.batch_id;
    if (batch_id < 0)
      return Status::InvalidArgument("file sink: batch id " + std::to_string(batch_id) + " is negative");
    if (!prepared_) {
      // Here rather than in the constructor: `sluice validate` creates sinks
      // and must leave the file system alone.
      try {
        PrepareDirectory();
        PrepareManifestDirectory();
      } catch (const std::exception& e) {
        return Status::IOError(std::string("file sink: ") + e.what());
      }
      prepared_ = true;
    }
    SLUICE_ASSIGN_OR_RETURN(const bool committed, IsCommitted(batch_id));
    // A replay of a committed batch carries the same rows: nothing to do.
    if (committed) return Status::OK();
    CrashPoint("file-sink:before-write");
    std::vector<CommittedFile> files;
    if (data.num_rows() > 0) {
      SLUICE_ASSIGN_OR_RETURN(CommittedFile file, WritePartFile(batch_id, Encode(data)));
      files.push_back(std::move(file));
      CrashPoint("file-sink:after-part-rename");
    } else {
      SLUICE_RETURN_IF_ERROR(RemoveUncommittedPartFile(batch_id));
    }
    SLUICE_RETURN_IF_ERROR(CommitBatch(batch_id, files));
    CrashPoint("file-sink:after-manifest");
    return Status::OK();
  }

 private:
  // Creates the output directory if needed and removes temporary files a
  // crashed writer left behind; the directory belongs to this sink.
  bool prepared_ = false;

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

  // Creates _sluice_metadata up front, so even a directory whose batches were
  // all empty says that it is manifest-managed, and removes temporary entries
  // a crash left behind (they were never renamed, so they commit nothing).
  void PrepareManifestDirectory() {
    const std::string manifest_dir = ManifestDir(dir_);
    std::error_code ec;
    if (fs::exists(manifest_dir, ec) && !fs::is_directory(manifest_dir, ec))
      throw std::runtime_error("'" + manifest_dir + "' is not a directory; the output directory's manifest is corrupt");
    if (fs::create_directory(manifest_dir, ec)) {
      Status synced = SyncDirectory(dir_);
      if (!synced.ok()) throw std::runtime_error(synced.message());
    } else if (ec) {
      throw std::runtime_error("cannot create directory '" + manifest_dir + "': " + ec.message());
    }
    for (fs::directory_iterator it(manifest_dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (IsManifestTempName(it->path().filename().string())) fs::remove(it->path(), ec);
    }
    if (ec) throw std::runtime_error("cannot clean up '" + manifest_dir + "': " + ec.message());
  }

  // Whether `batch_id` has a manifest entry. An entry that exists but does not
  // parse is an error, never taken as "not committed": rewriting the batch
  // could then duplicate or lose what readers already saw.
  Result<bool> IsCommitted(int64_t batch_id) const {
    auto entry = ReadManifestEntry(dir_, batch_id);
    if (!entry.ok()) {
      if (entry.status().code() != StatusCode::kCorruption) return entry.status();
      return Status::Corruption(entry.status().message() + " (if batch " + std::to_string(batch_id) +
                                " should be written again, delete that entry; its replay then rewrites the part file)");
    }
    return entry->has_value();
  }

  // Records that `batch_id` produced `files` (none for an empty batch): the
  // commit point of the batch for manifest readers. Runs after the part file
  // is durable, so an entry never names a file that a crash could lose.
  Status CommitBatch(int64_t batch_id, const std::vector<CommittedFile>& files) {
    const std::string entry = EncodeManifestEntry(batch_id, files);
    return WriteFileAtomically(ManifestDir(dir_), ManifestTempName(batch_id), ManifestEntryName(batch_id), {entry});
  }

  // An empty batch writes no part file, so one with its name can only be an
  // uncommitted leftover; removing it keeps a plain listing closer to the
  // manifest.
  Status RemoveUncommittedPartFile(int64_t batch_id) {
    const std::string path = dir_ + "/" + PartFileName(batch_id, format_);
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return Status::OK();
      return ErrnoError("cannot remove uncommitted part file '" + path + "'", errno);
    }
    return SyncDirectory(dir_);
  }

  // The part file's bytes, as runs to write one after the other. The engine
  // calls sinks on one thread after the parallel part of a batch, so the
  // record batches are rendered on up to one thread per core, in contiguous
  // runs (written in order, never joined into one more copy).
  std::vector<std::string> Encode(const BatchData& data) const {
    const size_t batches = data.batches.size();
    const size_t runs = std::max<size_t>(1, std::min<size_t>(batches, std::thread::hardware_concurrency()));
    std::vector<std::string> rendered(runs);
    if (format_ == FileFormat::kCsv && csv_header_)
      AppendCsvHeader(rendered[0], data.schema ? *data.schema : input_schema_, csv_delimiter_);
    const auto render = [&](size_t run) {
      for (size_t b = run * batches / runs; b < (run + 1) * batches / runs; ++b) {
        if (format_ == FileFormat::kCsv) AppendCsvLines(rendered[run], *data.batches[b], csv_delimiter_);
        else AppendJsonLines(rendered[run], *data.batches[b]);
      }
    };
    // async | deferred: a run whose thread cannot be had is rendered here, at
    // get(); get() also rethrows a run's exception, and a future started with
    // std::async joins its thread even when this frame unwinds.
    std::vector<std::future<void>> others;
    for (size_t run = 1; run < runs; ++run)
      others.push_back(std::async(std::launch::async | std::launch::deferred, render, run));
    render(0);
    for (auto& other : others) other.get();
    return rendered;
  }

  // Writes the batch's part file atomically, replacing an uncommitted attempt
  // of the same batch. Returns what its manifest line records.
  Result<CommittedFile> WritePartFile(int64_t batch_id, const std::vector<std::string>& runs) {
    const std::string name = PartFileName(batch_id, format_);
    std::vector<std::string_view> pieces(runs.begin(), runs.end());
    int64_t size = 0;
    for (const auto& run : runs) size += static_cast<int64_t>(run.size());
    SLUICE_RETURN_IF_ERROR(WriteFileAtomically(dir_, TempFileName(name), name, pieces));
    return CommittedFile{name, size};
  }

  std::string dir_;
  FileFormat format_;
  bool csv_header_;
  std::string csv_delimiter_;
  Schema input_schema_;
};

const OptionSpec kFileOptions[] = {
    {"path", OptionType::kPath, nullptr, true,
     "directory the part files and their manifest (_sluice_metadata) are written to (created if missing; owned by "
     "this sink and its query's checkpoint)"},
    {"format", OptionType::kString, "jsonl", false, "file format", "jsonl|csv"},
    {"header", OptionType::kBool, "false", false, "csv: start every file with the column names"},
    {"delimiter", OptionType::kString, ",", false, "csv: the field separator"},
};

}  // namespace

// The committed part files of the file sink's output directory `dir`, as
// paths relative to `dir`, in batch order: the files named in
// _sluice_metadata/*, and nothing else in the directory. Empty for a
// directory without _sluice_metadata. Throws std::runtime_error naming the
// entry if the manifest is corrupt, or if it cannot be read.
std::vector<std::string> FileSinkCommittedFiles(const std::string& dir) {
  auto entries = ReadManifest(WithoutTrailingSlashes(dir));
  if (!entries.ok()) throw std::runtime_error(entries.status().message());
  std::vector<std::string> paths;
  for (const ManifestEntry& entry : *entries) {
    for (const CommittedFile& file : entry.files) paths.push_back(file.path);
  }
  return paths;
}

// Readers look the function up with this type.
using CommittedFilesFn = std::vector<std::string>(const std::string& dir);
static_assert(std::is_same_v<decltype(FileSinkCommittedFiles), CommittedFilesFn>);

}  // namespace sluice::file_sink

BOOST_DLL_ALIAS(sluice::file_sink::FileSinkCommittedFiles, sluice_file_sink_committed_files)

SLUICE_REGISTER_SINK("file", SLUICE_VERSION_STRING,
                     "Writes each batch as one jsonl or csv part file, atomically, and commits it in the manifest "
                     "_sluice_metadata/<batchId> (exactly-once for readers that follow the manifest: the committed "
                     "data is the union of the files named in _sluice_metadata/*, every other file is ignored; a "
                     "plain listing may also show the part file of a batch that crashed before its manifest entry, "
                     "until the replay overwrites it)",
                     sluice::file_sink::kFileOptions, sluice::file_sink::FileSink)
