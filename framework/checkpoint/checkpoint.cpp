#include "checkpoint/checkpoint.h"

#include <simdjson.h>

#include <filesystem>

#include "checkpoint/durable_file.h"
#include "common/ids.h"
#include "common/json_writer.h"

namespace sluice {

namespace fs = std::filesystem;

namespace {

std::string Describe(const std::vector<QueryShape::Named>& items) {
  std::string s = "[";
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i].name + " (" + items[i].type + ")";
  return s + "]";
}

void WriteNamed(JsonWriter& w, const char* key, const std::vector<QueryShape::Named>& items) {
  w.Key(key).BeginArray();
  for (const auto& n : items) {
    w.BeginObject().Key("name").String(n.name).Key("type").String(n.type);
    if (!n.path.empty()) w.Key("path").String(n.path);
    w.EndObject();
  }
  w.EndArray();
}

std::string Serialize(const CheckpointMetadata& m) {
  JsonWriter w;
  w.BeginObject().Key("id").String(m.query_id).Key("version").Int(1).Key("pipeline").String(m.shape.pipeline_name);
  WriteNamed(w, "sources", m.shape.sources);
  WriteNamed(w, "statefulOperators", m.shape.stateful_operators);
  WriteNamed(w, "sinks", m.shape.sinks);
  if (!m.shape.state_provider.empty()) w.Key("stateProvider").String(m.shape.state_provider);
  w.EndObject();
  return w.str() + "\n";
}

bool ReadNamed(simdjson::dom::element doc, const char* key, std::vector<QueryShape::Named>* out) {
  simdjson::dom::array arr;
  if (doc[key].get(arr) != simdjson::SUCCESS) return false;
  for (auto el : arr) {
    std::string_view name, type, path;
    if (el["name"].get(name) != simdjson::SUCCESS || el["type"].get(type) != simdjson::SUCCESS) return false;
    if (el["path"].get(path) != simdjson::SUCCESS) path = "";
    out->push_back({std::string(name), std::string(type), std::string(path)});
  }
  return true;
}

}  // namespace

std::string IncompatibleChange(const QueryShape& then, const QueryShape& now) {
  const std::string restart = "; start a new checkpoint (a new `checkpoint` directory) to run this pipeline";
  for (const auto& t : then.sources) {
    bool found = false;
    for (const auto& n : now.sources)
      if (n.name == t.name) {
        found = true;
        if (n.type != t.type)
          return "source '" + t.name + "' was of type '" + t.type + "' when the checkpoint was written and is now '" +
                 n.type + "'" + restart;
      }
    if (!found)
      return "source '" + t.name + "' was removed or renamed: the checkpoint was written with sources " +
             Describe(then.sources) + " and the pipeline now has " + Describe(now.sources) + restart;
  }
  for (const auto& n : now.sources) {
    bool found = false;
    for (const auto& t : then.sources) found |= t.name == n.name;
    if (!found)
      return "source '" + n.name + "' was added: the checkpoint was written with sources " + Describe(then.sources) +
             " and the pipeline now has " + Describe(now.sources) + restart;
  }
  for (size_t i = 0; i < then.sources.size() && i < now.sources.size(); ++i)
    if (then.sources[i].name != now.sources[i].name)
      return "sources are in a different order than when the checkpoint was written (" + Describe(then.sources) +
             ", now " + Describe(now.sources) + ")" + restart;
  if (!(then.stateful_operators == now.stateful_operators))
    return "the stateful operators changed: the checkpoint holds state for " + Describe(then.stateful_operators) +
           " and the pipeline now has " + Describe(now.stateful_operators) + restart;
  if (!then.state_provider.empty() && !now.state_provider.empty() && then.state_provider != now.state_provider)
    return "the state was written by state store provider '" + then.state_provider + "' and the pipeline now uses '" +
           now.state_provider + "' ([state] provider); state cannot move between providers" + restart;
  return "";
}

Result<CheckpointMetadata> Checkpoint::ReadMetadata(const std::string& dir) {
  std::string path = dir + "/metadata";
  SLUICE_ASSIGN_OR_RETURN(std::string content, ReadWholeFile(path));
  auto corrupt = [&](const std::string& what) {
    return Status::Corruption("checkpoint file " + path + " " + what +
                              "; the checkpoint is corrupt: restore it from a backup or start a new checkpoint");
  };
  if (content.empty() || content.back() != '\n') return corrupt("is truncated");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(content).get(doc) != simdjson::SUCCESS) return corrupt("is not valid JSON");
  CheckpointMetadata m;
  std::string_view id, name;
  if (doc["id"].get(id) != simdjson::SUCCESS) return corrupt("has no query id");
  m.query_id = std::string(id);
  if (doc["pipeline"].get(name) == simdjson::SUCCESS) m.shape.pipeline_name = std::string(name);
  std::string_view provider;
  if (doc["stateProvider"].get(provider) == simdjson::SUCCESS) m.shape.state_provider = std::string(provider);
  if (!ReadNamed(doc, "sources", &m.shape.sources) || !ReadNamed(doc, "statefulOperators", &m.shape.stateful_operators) ||
      !ReadNamed(doc, "sinks", &m.shape.sinks))
    return corrupt("is missing its sources, statefulOperators or sinks");
  return m;
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir, const QueryShape& shape,
                                                     const std::string& new_query_id) {
  SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(dir));
  for (const char* sub : {"offsets", "commits", "sources", "sinks", "state"})
    SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(dir + "/" + sub));
  CheckpointMetadata metadata;
  std::error_code ec;
  if (fs::exists(dir + "/metadata", ec)) {
    SLUICE_ASSIGN_OR_RETURN(metadata, ReadMetadata(dir));
    std::string change = IncompatibleChange(metadata.shape, shape);
    if (!change.empty())
      return Status::InvalidArgument("cannot restart from checkpoint " + dir + ": " + change);
    if (!(metadata.shape.sinks == shape.sinks) || metadata.shape.pipeline_name != shape.pipeline_name ||
        metadata.shape.state_provider != shape.state_provider) {
      // Sinks may change (as Spark allows); keep the metadata current for inspection.
      metadata.shape = shape;
      SLUICE_RETURN_IF_ERROR(WriteFileAtomically(dir + "/metadata", Serialize(metadata)));
    }
  } else {
    metadata.query_id = new_query_id.empty() ? NewUuid() : new_query_id;
    metadata.shape = shape;
    SLUICE_RETURN_IF_ERROR(WriteFileAtomically(dir + "/metadata", Serialize(metadata)));
  }
  return std::unique_ptr<Checkpoint>(new Checkpoint(dir, std::move(metadata)));
}

}  // namespace sluice
