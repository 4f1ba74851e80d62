#include "checkpoint/checkpoint_inspector.h"

#include <simdjson.h>

#include <filesystem>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "checkpoint/durable_file.h"

namespace sluice {

namespace fs = std::filesystem;

namespace {

// The file sink's manifest (<output>/_sluice_metadata/<batchId>): "v1" and
// one {"path": ...} object per committed file.
std::string DescribeFileSinkManifest(const std::string& output_dir) {
  std::string manifest_dir = output_dir + "/_sluice_metadata";
  BatchLogDirectory manifest(manifest_dir, "_sluice_metadata");
  auto ids = manifest.List();
  if (!ids.ok()) return "    cannot read manifest: " + ids.status().message() + "\n";
  if (ids->empty()) return "    no manifest (" + manifest_dir + " is empty or missing)\n";
  std::ostringstream out;
  simdjson::dom::parser parser;
  for (int64_t id : *ids) {
    auto content = ReadWholeFile(manifest.PathOf(id));
    out << "    batch " << id << ":";
    if (!content.ok()) {
      out << " unreadable: " << content.status().message() << "\n";
      continue;
    }
    std::istringstream lines(*content);
    std::string line;
    std::getline(lines, line);
    int files = 0;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      simdjson::dom::element e;
      std::string_view path;
      if (parser.parse(line).get(e) == simdjson::SUCCESS && e["path"].get(path) == simdjson::SUCCESS) {
        out << " " << path;
        ++files;
      } else {
        out << " <garbled entry>";
      }
    }
    if (files == 0) out << " (no rows)";
    out << "\n";
  }
  return out.str();
}

}  // namespace

Result<std::string> InspectCheckpoint(const std::string& dir) {
  SLUICE_ASSIGN_OR_RETURN(CheckpointMetadata meta, Checkpoint::ReadMetadata(dir));
  std::ostringstream out;
  out << "checkpoint: " << dir << "\n";
  out << "query id: " << meta.query_id << "\n";
  out << "pipeline: " << meta.shape.pipeline_name << "\n";
  out << "sources:\n";
  for (size_t i = 0; i < meta.shape.sources.size(); ++i)
    out << "  " << i << ": " << meta.shape.sources[i].name << " (" << meta.shape.sources[i].type << ")\n";
  OffsetLog offsets(dir);
  CommitLog commits(dir);
  SLUICE_ASSIGN_OR_RETURN(auto ids, offsets.List());
  out << "batches (" << ids.size() << " retained):\n";
  for (int64_t id : ids) {
    auto seq = offsets.Get(id, meta.shape.sources.size());
    out << "  batch " << id << ": " << (commits.Exists(id) ? "committed" : "NOT committed (will be redone on restart)")
        << "\n";
    if (!seq.ok()) {
      out << "    " << seq.status().message() << "\n";
      continue;
    }
    for (size_t i = 0; i < seq->offsets.size(); ++i)
      out << "    " << meta.shape.sources[i].name << ": " << (seq->offsets[i] ? *seq->offsets[i] : "-") << "\n";
  }
  for (const auto& sink : meta.shape.sinks) {
    out << "sink " << sink.name << " (" << sink.type << ")";
    if (sink.type == "file" && !sink.path.empty()) {
      out << " " << sink.path << ", manifest:\n" << DescribeFileSinkManifest(sink.path);
    } else {
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace sluice
