#include "checkpoint/batch_logs.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>

#include "checkpoint/durable_file.h"
#include "common/json_writer.h"

namespace sluice {

namespace fs = std::filesystem;

namespace {

// Splits into lines; sets *truncated when the last line has no newline.
std::vector<std::string> SplitLines(const std::string& s, bool* truncated) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) {
      lines.push_back(s.substr(start));
      *truncated = true;
      return lines;
    }
    lines.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  *truncated = false;
  return lines;
}

bool IsValidJson(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  return parser.parse(text).get(doc) == simdjson::SUCCESS;
}

Status CheckHeader(const std::vector<std::string>& lines, const std::function<Status(const std::string&)>& corrupt) {
  if (lines.empty() || lines[0].size() < 2 || lines[0][0] != 'v')
    return corrupt("does not start with a version line (\"v1\")");
  long v = std::strtol(lines[0].c_str() + 1, nullptr, 10);
  if (v > 1)
    return Status::NotSupported("was written by a newer sluice (format v" + std::to_string(v) +
                                "); upgrade sluice to read this checkpoint");
  if (v != 1) return corrupt("has an unknown version line '" + lines[0] + "'");
  return Status::OK();
}

}  // namespace

Status BatchLogDirectory::Corrupt(int64_t batch_id, const std::string& what) const {
  return Status::Corruption("checkpoint file " + dir_ + "/" + std::to_string(batch_id) + " (" + NameOf(batch_id) +
                            ", batch " + std::to_string(batch_id) + ") " + what +
                            "; the checkpoint is corrupt: restore it from a backup or start a new checkpoint");
}

Result<std::vector<int64_t>> BatchLogDirectory::List() const {
  std::vector<int64_t> ids;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return ids;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      continue;
    ids.push_back(std::stoll(name));
  }
  if (ec) return Status::IOError("cannot list " + dir_ + ": " + ec.message());
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::optional<int64_t>> BatchLogDirectory::Latest() const {
  SLUICE_ASSIGN_OR_RETURN(auto ids, List());
  if (ids.empty()) return std::optional<int64_t>();
  return std::optional<int64_t>(ids.back());
}

bool BatchLogDirectory::Exists(int64_t batch_id) const {
  std::error_code ec;
  return fs::exists(PathOf(batch_id), ec);
}

Status BatchLogDirectory::PurgeBefore(int64_t batch_id) {
  SLUICE_ASSIGN_OR_RETURN(auto ids, List());
  bool removed = false;
  for (int64_t id : ids) {
    if (id >= batch_id) break;
    std::error_code ec;
    fs::remove(PathOf(id), ec);
    if (ec) return Status::IOError("cannot remove " + PathOf(id) + ": " + ec.message());
    removed = true;
  }
  return removed ? SyncDirectory(dir_) : Status::OK();
}

std::string OffsetLog::Serialize(const OffsetSeq& seq) {
  JsonWriter meta;
  meta.BeginObject().Key("batchWatermarkMs").Int(seq.metadata.batch_watermark_ms);
  meta.Key("batchTimestampMs").Int(seq.metadata.batch_timestamp_ms).Key("conf").BeginObject();
  for (const auto& [k, v] : seq.metadata.conf) meta.Key(k).String(v);
  meta.EndObject().EndObject();
  std::string out = "v1\n" + meta.str() + "\n";
  for (const auto& o : seq.offsets) out += (o ? *o : std::string("-")) + "\n";
  return out;
}

Status OffsetLog::Add(int64_t batch_id, const OffsetSeq& seq) {
  for (const auto& o : seq.offsets)
    if (o && o->find('\n') != std::string::npos)
      return Status::InvalidArgument("an offset for batch " + std::to_string(batch_id) +
                                     " spans several lines; a source's offset must be one line of JSON");
  return WriteFileAtomically(PathOf(batch_id), Serialize(seq));
}

Result<OffsetSeq> OffsetLog::Get(int64_t batch_id, size_t expected_sources) const {
  auto content = ReadWholeFile(PathOf(batch_id));
  if (!content.ok()) return content.status();
  auto corrupt = [&](const std::string& what) { return Corrupt(batch_id, what); };
  bool truncated = false;
  auto lines = SplitLines(*content, &truncated);
  if (truncated)
    return corrupt("is truncated at byte " + std::to_string(content->size()) + " (its last line has no end)");
  SLUICE_RETURN_IF_ERROR(CheckHeader(lines, corrupt));
  if (lines.size() < 2) return corrupt("has no metadata line");
  OffsetSeq seq;
  simdjson::dom::parser parser;
  simdjson::dom::element meta;
  if (parser.parse(lines[1]).get(meta) != simdjson::SUCCESS || !meta.is_object())
    return corrupt("has a metadata line that is not a JSON object");
  int64_t v;
  if (meta["batchWatermarkMs"].get(v) != simdjson::SUCCESS) return corrupt("has no batchWatermarkMs");
  seq.metadata.batch_watermark_ms = v;
  if (meta["batchTimestampMs"].get(v) != simdjson::SUCCESS) return corrupt("has no batchTimestampMs");
  seq.metadata.batch_timestamp_ms = v;
  simdjson::dom::object conf;
  if (meta["conf"].get(conf) == simdjson::SUCCESS)
    for (auto field : conf) {
      std::string_view s;
      if (field.value.get(s) == simdjson::SUCCESS) seq.metadata.conf[std::string(field.key)] = std::string(s);
    }
  if (lines.size() - 2 != expected_sources)
    return corrupt("holds " + std::to_string(lines.size() - 2) + " source offsets but the pipeline has " +
                   std::to_string(expected_sources) + " sources");
  for (size_t i = 2; i < lines.size(); ++i) {
    if (lines[i] == "-") {
      seq.offsets.push_back(std::nullopt);
      continue;
    }
    if (!IsValidJson(lines[i])) return corrupt("has a garbled offset for source " + std::to_string(i - 2) + ": '" + lines[i] + "'");
    seq.offsets.push_back(lines[i]);
  }
  return seq;
}

Status CommitLog::Add(int64_t batch_id, const CommitMetadata& meta) {
  JsonWriter w;
  w.BeginObject().Key("nextBatchWatermarkMs").Int(meta.next_batch_watermark_ms).EndObject();
  return WriteFileAtomically(PathOf(batch_id), "v1\n" + w.str() + "\n");
}

Result<CommitMetadata> CommitLog::Get(int64_t batch_id) const {
  auto content = ReadWholeFile(PathOf(batch_id));
  if (!content.ok()) return content.status();
  auto corrupt = [&](const std::string& what) { return Corrupt(batch_id, what); };
  bool truncated = false;
  auto lines = SplitLines(*content, &truncated);
  if (truncated) return corrupt("is truncated at byte " + std::to_string(content->size()) + " (its last line has no end)");
  SLUICE_RETURN_IF_ERROR(CheckHeader(lines, corrupt));
  if (lines.size() != 2) return corrupt("should hold 2 lines but holds " + std::to_string(lines.size()));
  simdjson::dom::parser parser;
  simdjson::dom::element meta;
  int64_t wm;
  if (parser.parse(lines[1]).get(meta) != simdjson::SUCCESS || meta["nextBatchWatermarkMs"].get(wm) != simdjson::SUCCESS)
    return corrupt("has a garbled metadata line");
  return CommitMetadata{wm};
}

}  // namespace sluice
