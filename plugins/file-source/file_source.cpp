// The "file" source: watches one directory and reads each new file exactly
// once, as Spark's file stream source does. The files it has admitted form an
// append-only log; an offset is a position in that log ({"files":N}), so a
// batch [start, end) is always the same files. With a checkpoint directory the
// log is persisted there before an offset naming it is returned, and reloaded
// on construction, so a restarted source neither re-reads a file nor maps an
// old offset to different files. Hidden files ('.' or '_' prefix) and "*.tmp"
// are ignored: writers are expected to write elsewhere and rename into place.
// A directory written by sluice's file sink is read through its manifest
// (_sluice_metadata): only committed files count.
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include <simdjson.h>

#include "count_offset.h"
#include "record_readers.h"
#include "sluice/durable_file.h"
#include "sluice/plugin.h"
#include "sluice/value_format.h"

namespace sluice::file_source {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLogFileName = "admitted-files.log";
constexpr const char* kLogVersionLine = "v1";

// ---- options ------------------------------------------------------------------

struct Settings {
  std::string directory;
  RecordFormat record_format;
  int64_t max_files_per_trigger = 0;  // 0: no limit
  std::string pattern;
};

Result<Settings> ResolveSettings(const Options& options) {
  Settings s;
  s.directory = options.GetString("path");
  if (s.directory.empty()) return Status::InvalidArgument("path: must name a directory");
  while (s.directory.size() > 1 && s.directory.back() == '/') s.directory.pop_back();

  std::string format = options.GetString("format", "text");
  if (format == "text") s.record_format.format = FileFormat::kText;
  else if (format == "csv") s.record_format.format = FileFormat::kCsv;
  else if (format == "jsonl") s.record_format.format = FileFormat::kJsonl;
  else return Status::InvalidArgument("format: '" + format + "' is not one of text, csv, jsonl");

  const bool has_schema = options.Has("schema");
  const std::string ddl = options.GetString("schema");
  if (s.record_format.format == FileFormat::kText) {
    Schema text_schema({Field{"value", DataType::kString, true}});
    if (has_schema) {
      auto parsed = ParseSchemaDdl(ddl);
      if (!parsed.ok() || !(*parsed == text_schema))
        return Status::InvalidArgument("schema: format 'text' always has the schema 'value STRING'; remove the "
                                       "schema option");
    }
    s.record_format.schema = std::make_shared<const Schema>(std::move(text_schema));
  } else {
    if (!has_schema)
      return Status::InvalidArgument("schema: required for format '" + format +
                                     "'; give a DDL string such as \"id BIGINT, name STRING, ts TIMESTAMP\"");
    auto parsed = ParseSchemaDdl(ddl);
    if (!parsed.ok()) return Status::InvalidArgument("schema: " + parsed.status().message());
    s.record_format.schema = std::make_shared<const Schema>(std::move(parsed).value());
  }

  s.record_format.header = options.GetBool("header", false);
  if (s.record_format.header && s.record_format.format != FileFormat::kCsv)
    return Status::InvalidArgument("header: only applies to format 'csv'");

  std::string delimiter = options.GetString("delimiter", ",");
  if (delimiter.size() != 1 || delimiter == "\"" || delimiter == "\n" || delimiter == "\r")
    return Status::InvalidArgument("delimiter: must be one character other than a quote or a line break, got '" +
                                   delimiter + "'");
  if (delimiter != "," && s.record_format.format != FileFormat::kCsv)
    return Status::InvalidArgument("delimiter: only applies to format 'csv'");
  s.record_format.delimiter = delimiter[0];

  s.max_files_per_trigger = options.GetInt("max_files_per_trigger", 0);
  if (s.max_files_per_trigger < 0)
    return Status::InvalidArgument("max_files_per_trigger: must be 0 (no limit) or a positive number of files, got " +
                                   std::to_string(s.max_files_per_trigger));

  s.pattern = options.GetString("pattern", "*");
  if (s.pattern.empty()) return Status::InvalidArgument("pattern: must not be empty; use \"*\" for every file");
  return s;
}

// ---- offsets ------------------------------------------------------------------

std::string FilesOffset(int64_t files) { return count_offset::Format("files", files); }

Result<int64_t> ParseFilesOffset(const std::optional<Offset>& offset) {
  return count_offset::Parse(offset, "files", "file source");
}

// ---- the admitted-file log --------------------------------------------------------

struct FileEntry {
  std::string name;
  int64_t mtime_ns = 0;
  int64_t size = 0;
};

void AppendEntryLine(std::string& out, const FileEntry& entry) {
  out += "{\"name\":";
  AppendJsonString(out, entry.name);
  out += ",\"mtime_ns\":" + std::to_string(entry.mtime_ns) + ",\"size\":" + std::to_string(entry.size) + "}\n";
}

// Every file the source has admitted, in admission order. Position i in the
// log is file i of the stream; entries are never removed or reordered.
class AdmittedFileLog {
 public:
  // Loads the persisted log from `checkpoint_dir`, if any. Throws when the log
  // exists but cannot be read: silently starting afresh would re-read files.
  explicit AdmittedFileLog(std::string checkpoint_dir) : checkpoint_dir_(std::move(checkpoint_dir)) {
    log_text_ = std::string(kLogVersionLine) + "\n";
    if (checkpoint_dir_.empty()) return;
    const std::string path = checkpoint_dir_ + "/" + kLogFileName;
    std::error_code ec;
    if (!fs::exists(path, ec)) return;
    simdjson::padded_string content;
    if (simdjson::padded_string::load(path).get(content) != simdjson::SUCCESS)
      throw std::runtime_error("cannot read the file source log " + path);
    std::string_view text(content.data(), content.size());
    simdjson::dom::parser parser;
    size_t pos = 0;
    int64_t line_number = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      std::string_view line = text.substr(pos, nl - pos);
      pos = nl + 1;
      ++line_number;
      if (line_number == 1) {
        if (line != kLogVersionLine)
          throw std::runtime_error("the file source log " + path + " starts with '" + std::string(line) +
                                   "', expected '" + kLogVersionLine + "'; it was written by another version");
        continue;
      }
      FileEntry entry;
      simdjson::dom::element doc;
      std::string_view name;
      if (parser.parse(line.data(), line.size()).get(doc) != simdjson::SUCCESS ||
          doc["name"].get_string().get(name) != simdjson::SUCCESS ||
          doc["mtime_ns"].get_int64().get(entry.mtime_ns) != simdjson::SUCCESS ||
          doc["size"].get_int64().get(entry.size) != simdjson::SUCCESS)
        throw std::runtime_error("the file source log " + path + " is corrupt at line " +
                                 std::to_string(line_number) + ": '" + std::string(line) + "'");
      entry.name = std::string(name);
      AppendEntryLine(log_text_, entry);
      names_.insert(entry.name);
      entries_.push_back(std::move(entry));
    }
  }

  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  const FileEntry& at(int64_t i) const { return entries_[static_cast<size_t>(i)]; }
  bool Contains(const std::string& name) const { return names_.count(name) != 0; }

  // Adds `files` at the end, persisting the log first when there is a
  // checkpoint: an offset may name these files only once they are durable.
  Status Append(std::vector<FileEntry> files) {
    if (files.empty()) return Status::OK();
    if (!checkpoint_dir_.empty()) {
      std::string text = log_text_;
      for (const auto& f : files) AppendEntryLine(text, f);
      // A crash leaves the old log or the new one, never a torn one.
      SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(checkpoint_dir_));
      SLUICE_RETURN_IF_ERROR(WriteFileAtomically(checkpoint_dir_ + "/" + kLogFileName, text));
      log_text_ = std::move(text);
    } else {
      for (const auto& f : files) AppendEntryLine(log_text_, f);
    }
    for (auto& f : files) {
      names_.insert(f.name);
      entries_.push_back(std::move(f));
    }
    return Status::OK();
  }

 private:
  std::string checkpoint_dir_;
  std::vector<FileEntry> entries_;
  std::unordered_set<std::string> names_;
  std::string log_text_;  // the persisted form, kept to rewrite it whole
};

// ---- the source -----------------------------------------------------------------

bool IsIgnoredName(const std::string& name) {
  if (name.empty() || name[0] == '.' || name[0] == '_') return true;
  return name.size() >= 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
}

Settings SettingsOrThrow(const Options& options) {
  auto settings = ResolveSettings(options);
  if (!settings.ok()) throw std::invalid_argument(settings.status().message());
  return std::move(settings).value();
}

class FileSource final : public Source {
 public:
  static Status Validate(const Options& options) { return ResolveSettings(options).status(); }

  explicit FileSource(const SourceContext& ctx)
      : settings_(SettingsOrThrow(ctx.options)), log_(ctx.checkpoint_dir) {}

  Schema schema() const override { return *settings_.record_format.schema; }

  std::string Description() const override { return "FileSource[" + settings_.directory + "]"; }

  Result<std::optional<Offset>> LatestOffset(const std::optional<Offset>& start, ReadLimit limit) override {
    SLUICE_ASSIGN_OR_RETURN(int64_t start_files, ParseFilesOffset(start));
    SLUICE_RETURN_IF_ERROR(CheckWithinLog(start_files));
    int64_t end_cap = std::numeric_limits<int64_t>::max();
    if (limit == ReadLimit::kDefault && settings_.max_files_per_trigger > 0)
      end_cap = start_files + settings_.max_files_per_trigger;
    // Files admitted earlier but not yet in a batch (say, before a restart)
    // come first; the directory is listed only when they do not fill the batch.
    if (log_.size() < end_cap) {
      SLUICE_ASSIGN_OR_RETURN(std::vector<FileEntry> fresh, ListNewFiles());
      const int64_t room = end_cap - log_.size();
      if (static_cast<int64_t>(fresh.size()) > room) fresh.resize(static_cast<size_t>(room));
      SLUICE_RETURN_IF_ERROR(log_.Append(std::move(fresh)));
    }
    const int64_t end_files = std::min(log_.size(), end_cap);
    if (end_files == start_files) return start;
    return std::optional<Offset>(FilesOffset(end_files));
  }

  Status PrepareForAvailableNow() override {
    SLUICE_ASSIGN_OR_RETURN(std::vector<FileEntry> present, ListNewFiles());
    std::unordered_set<std::string> names;
    for (const auto& f : present) names.insert(f.name);
    available_now_names_ = std::move(names);
    return Status::OK();
  }

  Result<std::vector<std::string>> PlanPartitions(const std::optional<Offset>& start, const Offset& end) override {
    SLUICE_ASSIGN_OR_RETURN(int64_t start_files, ParseFilesOffset(start));
    SLUICE_ASSIGN_OR_RETURN(int64_t end_files, ParseFilesOffset(end));
    SLUICE_RETURN_IF_ERROR(CheckWithinLog(end_files));
    if (start_files > end_files)
      return Status::InvalidArgument("batch starts at " + *start + " after its end " + end);
    // A partition is the file's full path, so reading needs no shared state.
    std::vector<std::string> partitions;
    partitions.reserve(static_cast<size_t>(end_files - start_files));
    for (int64_t i = start_files; i < end_files; ++i) partitions.push_back(settings_.directory + "/" + log_.at(i).name);
    return partitions;
  }

  Status ReadPartition(const std::string& partition, ReadContext& ctx) override {
    std::string name = partition.substr(partition.rfind('/') + 1);
    return ReadFileRecords(partition, name, settings_.record_format, ctx);
  }

 private:
  Status CheckWithinLog(int64_t files) const {
    if (files <= log_.size()) return Status::OK();
    return Status::Corruption("offset {\"files\":" + std::to_string(files) + "} is beyond the " +
                              std::to_string(log_.size()) + " files this source has admitted from " +
                              settings_.directory +
                              "; the checkpoint's file log is missing or belongs to another source");
  }

  // A directory written by sluice's file sink has a manifest,
  // _sluice_metadata/<batchId>, naming its committed files ("v1", then one
  // {"path": ...} object per line). Only those files are data: any other is
  // an attempt that crashed before committing. nullopt: no manifest here.
  Result<std::optional<std::unordered_set<std::string>>> ManifestFiles() const {
    const fs::path manifest_dir = fs::path(settings_.directory) / "_sluice_metadata";
    std::error_code ec;
    if (!fs::is_directory(manifest_dir, ec)) return std::optional<std::unordered_set<std::string>>();
    std::unordered_set<std::string> names;
    simdjson::dom::parser parser;
    for (const auto& entry : fs::directory_iterator(manifest_dir, ec)) {
      std::string id = entry.path().filename().string();
      if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
      simdjson::padded_string content;
      if (simdjson::padded_string::load(entry.path().string()).get(content) != simdjson::SUCCESS)
        return Status::IOError("cannot read manifest entry " + entry.path().string());
      std::string_view text(content.data(), content.size());
      size_t line_start = text.find('\n');
      if (text.substr(0, line_start) != "v1")
        return Status::Corruption("manifest entry " + entry.path().string() + " does not start with v1");
      while (line_start != std::string_view::npos && line_start + 1 < text.size()) {
        size_t next = text.find('\n', line_start + 1);
        std::string line(text.substr(line_start + 1, next == std::string_view::npos ? std::string_view::npos
                                                                                     : next - line_start - 1));
        line_start = next;
        if (line.empty()) continue;
        simdjson::dom::element e;
        std::string_view path;
        if (parser.parse(line).get(e) != simdjson::SUCCESS || e["path"].get(path) != simdjson::SUCCESS)
          return Status::Corruption("manifest entry " + entry.path().string() + " has a garbled line: " + line);
        names.insert(fs::path(path).filename().string());
      }
    }
    if (ec) return Status::IOError("cannot list " + manifest_dir.string() + ": " + ec.message());
    return std::optional<std::unordered_set<std::string>>(std::move(names));
  }

  // Eligible files not yet admitted, ordered by (modification time, name);
  // under available-now only those present when it was prepared.
  Result<std::vector<FileEntry>> ListNewFiles() const {
    SLUICE_ASSIGN_OR_RETURN(auto committed, ManifestFiles());
    std::error_code ec;
    fs::directory_iterator it(settings_.directory, ec);
    if (ec) return Status::NotFound("cannot list directory " + settings_.directory + ": " + ec.message());
    std::vector<FileEntry> found;
    for (const auto& entry : it) {
      std::string name = entry.path().filename().string();
      if (IsIgnoredName(name) || log_.Contains(name)) continue;
      if (available_now_names_ && available_now_names_->count(name) == 0) continue;
      if (committed && committed->count(name) == 0) continue;
      if (::fnmatch(settings_.pattern.c_str(), name.c_str(), 0) != 0) continue;
      struct stat info {};
      // A file may vanish between listing and stat; it is simply not there.
      if (::stat(entry.path().c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
      found.push_back({std::move(name), static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec,
                       static_cast<int64_t>(info.st_size)});
    }
    std::sort(found.begin(), found.end(), [](const FileEntry& a, const FileEntry& b) {
      return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.name < b.name;
    });
    return found;
  }

  Settings settings_;
  AdmittedFileLog log_;
  std::optional<std::unordered_set<std::string>> available_now_names_;
};

const OptionSpec kOptions[] = {
    {"path", OptionType::kPath, nullptr, true, "directory to watch; every new file in it is read once"},
    {"format", OptionType::kString, "text", false,
     "file format: text (one row per line, schema 'value STRING'), csv (RFC 4180) or jsonl (one JSON object per line)",
     "text|csv|jsonl"},
    {"schema", OptionType::kString, nullptr, false,
     "columns as DDL, e.g. \"id BIGINT, name STRING, ts TIMESTAMP\"; required for csv and jsonl"},
    {"header", OptionType::kBool, "false", false, "csv: the first line of each file holds column names and is skipped"},
    {"delimiter", OptionType::kString, ",", false, "csv: the one character between fields"},
    {"max_files_per_trigger", OptionType::kInt, "0", false,
     "most new files one micro-batch takes (0 = no limit); a trigger that reads everything at once ignores it"},
    {"pattern", OptionType::kString, "*", false,
     "glob the file names must match, e.g. \"*.csv\"; names starting with '.' or '_', and names ending in "
     "\".tmp\", are always ignored"},
};

}  // namespace
}  // namespace sluice::file_source

SLUICE_REGISTER_SOURCE("file", SLUICE_VERSION_STRING, "Reads each new file in a directory once: text, csv or jsonl",
                       sluice::file_source::kOptions, sluice::file_source::FileSource)
