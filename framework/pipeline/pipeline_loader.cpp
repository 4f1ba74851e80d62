// Turns a TOML pipeline file into a PipelineSpec, reporting every structural
// problem with its file:line:column. Plugin options and expressions are only
// collected here; the query builder checks them against plugins and schemas.
#include <toml++/toml.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "pipeline/pipeline_spec.h"
#include "plugin/plugin_registry.h"

namespace sluice {

namespace fs = std::filesystem;

std::string Diagnostic::ToString() const {
  std::string s = pos.file;
  if (pos.line > 0) s += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  return s + ": error: " + message;
}

SourcePos ExprText::At(size_t offset) const {
  SourcePos p = pos;
  if (locatable && p.line > 0) p.column += quote_length + static_cast<int>(offset);
  return p;
}

std::string ResolvePath(const std::string& directory, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || directory.empty()) return path;
  return (fs::path(directory) / path).lexically_normal().string();
}

namespace {

class Loader {
 public:
  Loader(std::string text, std::string path, std::vector<Diagnostic>* diags)
      : text_(std::move(text)), path_(std::move(path)), diags_(diags) {
    std::stringstream ss(text_);
    std::string line;
    while (std::getline(ss, line)) lines_.push_back(line);
  }

  PipelineSpec Load() {
    PipelineSpec spec;
    spec.file = path_;
    spec.directory = fs::absolute(fs::path(path_)).parent_path().string();
    spec.name = fs::path(path_).stem().string();
    toml::table root;
    try {
      root = toml::parse(text_, path_);
    } catch (const toml::parse_error& e) {
      Error(Pos(e.source().begin), "invalid TOML: " + std::string(e.description()));
      return spec;
    }
    spec.parsed = true;
    for (auto&& [key, node] : root) {
      std::string k(key.str());
      if (k == "pipeline") LoadPipelineTable(node, spec);
      else if (k == "sources") LoadSources(node, spec);
      else if (k == "steps") LoadSteps(node, spec);
      else if (k == "sinks") LoadSinks(node, spec);
      else if (k == "state") LoadState(node, spec);
      else Error(Pos(key.source().begin), "unknown top-level key '" + k + "'; expected [pipeline], [sources.<name>], [[steps]], [sinks.<name>] or [state]");
    }
    if (spec.sources.empty()) Error({path_, 1, 1}, "the pipeline has no source; add a [sources.<name>] table with a 'type'");
    if (spec.sinks.empty()) Error({path_, 1, 1}, "the pipeline has no sink; add a [sinks.<name>] table with a 'type' and an 'input'");
    CheckNames(spec);
    return spec;
  }

 private:
  SourcePos Pos(const toml::source_position& p) const {
    return {path_, static_cast<int>(p.line), static_cast<int>(p.column)};
  }
  SourcePos Pos(const toml::node& n) const { return Pos(n.source().begin); }
  void Error(SourcePos pos, std::string message) { diags_->push_back({std::move(pos), std::move(message)}); }

  std::optional<std::string> GetString(const toml::node& n, const std::string& what) {
    if (auto* s = n.as_string()) return s->get();
    Error(Pos(n), what + " must be a string");
    return std::nullopt;
  }

  ExprText MakeExpr(const toml::node& n, const std::string& text) {
    ExprText e{text, Pos(n), 1, true};
    // Find the raw text of the value to tell where inside it each character is.
    size_t line = static_cast<size_t>(e.pos.line), col = static_cast<size_t>(e.pos.column);
    if (line == 0 || line > lines_.size() || col == 0) { e.locatable = false; return e; }
    std::string_view raw(lines_[line - 1]);
    raw.remove_prefix(std::min(raw.size(), col - 1));
    if (raw.rfind("\"\"\"", 0) == 0 || raw.rfind("'''", 0) == 0) e.quote_length = 3;
    if (raw.size() < static_cast<size_t>(e.quote_length) + text.size() ||
        raw.substr(static_cast<size_t>(e.quote_length), text.size()) != text)
      e.locatable = false;
    return e;
  }

  std::vector<ExprText> GetExprList(const toml::node& n, const std::string& what) {
    std::vector<ExprText> out;
    if (auto* s = n.as_string()) {  // a single string is a list of one
      out.push_back(MakeExpr(n, s->get()));
      return out;
    }
    auto* arr = n.as_array();
    if (!arr) {
      Error(Pos(n), what + " must be an array of strings");
      return out;
    }
    for (auto& el : *arr) {
      if (auto* s = el.as_string()) out.push_back(MakeExpr(el, s->get()));
      else Error(Pos(el), what + " must contain only strings");
    }
    return out;
  }

  std::optional<OptionValue> ToOptionValue(const toml::node& n, const std::string& key) {
    if (auto* s = n.as_string()) return OptionValue(s->get());
    if (auto* i = n.as_integer()) return OptionValue(static_cast<int64_t>(i->get()));
    if (auto* f = n.as_floating_point()) return OptionValue(f->get());
    if (auto* b = n.as_boolean()) return OptionValue(b->get());
    if (auto* a = n.as_array()) {
      std::vector<std::string> items;
      for (auto& el : *a) {
        if (auto* s = el.as_string()) items.push_back(s->get());
        else {
          Error(Pos(el), "option '" + key + "': arrays may hold only strings");
          return std::nullopt;
        }
      }
      return OptionValue(std::move(items));
    }
    Error(Pos(n), "option '" + key + "' must be a string, number, boolean or array of strings");
    return std::nullopt;
  }

  void LoadPipelineTable(const toml::node& node, PipelineSpec& spec) {
    auto* tbl = node.as_table();
    if (!tbl) { Error(Pos(node), "'pipeline' must be a table: [pipeline]"); return; }
    for (auto&& [key, v] : *tbl) {
      std::string k(key.str());
      if (k == "name") {
        if (auto s = GetString(v, "pipeline.name")) spec.name = *s;
      } else if (k == "checkpoint") {
        if (auto s = GetString(v, "pipeline.checkpoint")) spec.checkpoint = ResolvePath(spec.directory, *s);
      } else if (k == "progress_file") {
        if (auto s = GetString(v, "pipeline.progress_file")) spec.progress_file = ResolvePath(spec.directory, *s);
      } else if (k == "output_mode") {
        spec.output_mode_pos = Pos(v);
        if (auto s = GetString(v, "pipeline.output_mode")) {
          if (*s == "append") spec.output_mode = OutputMode::kAppend;
          else if (*s == "update") spec.output_mode = OutputMode::kUpdate;
          else if (*s == "complete") spec.output_mode = OutputMode::kComplete;
          else Error(Pos(v), "output_mode is '" + *s + "'; expected append, update or complete");
        }
      } else if (k == "threads") {
        if (auto* i = v.as_integer(); i && i->get() >= 0) spec.threads = static_cast<int>(i->get());
        else Error(Pos(v), "pipeline.threads must be an integer >= 0 (0 = one per core)");
      } else if (k == "idle_poll_interval") {
        if (auto s = GetString(v, "pipeline.idle_poll_interval")) {
          auto d = ParseDuration(*s);
          if (d.ok()) spec.idle_poll_micros = *d;
          else Error(Pos(v), "pipeline.idle_poll_interval: " + d.status().message());
        }
      } else if (k == "min_batches_to_retain") {
        if (auto* i = v.as_integer(); i && i->get() >= 1) spec.min_batches_to_retain = i->get();
        else Error(Pos(v), "pipeline.min_batches_to_retain must be an integer >= 1");
      } else if (k == "shuffle_partitions") {
        if (auto* i = v.as_integer(); i && i->get() >= 1 && i->get() <= 4096) spec.shuffle_partitions = static_cast<int>(i->get());
        else Error(Pos(v), "pipeline.shuffle_partitions must be an integer from 1 to 4096");
      } else if (k == "watermark_policy") {
        if (auto s = GetString(v, "pipeline.watermark_policy")) {
          if (*s == "min") spec.watermark_policy_max = false;
          else if (*s == "max") spec.watermark_policy_max = true;
          else Error(Pos(v), "watermark_policy is '" + *s + "'; expected min or max");
        }
      } else if (k == "trigger") {
        LoadTrigger(v, spec.trigger);
      } else {
        Error(Pos(key.source().begin), "unknown key '" + k + "' in [pipeline]; expected name, trigger, checkpoint, "
              "output_mode, threads, progress_file, idle_poll_interval, min_batches_to_retain, shuffle_partitions or "
              "watermark_policy");
      }
    }
  }

  void LoadTrigger(const toml::node& v, TriggerSpec& t) {
    static const char* kExpected =
        "trigger must be \"default\", \"once\", \"available_now\" or { processing_time = \"<duration>\" }";
    if (auto* s = v.as_string()) {
      std::string name = s->get();
      if (name == "default") t.kind = TriggerKind::kDefault;
      else if (name == "once") t.kind = TriggerKind::kOnce;
      else if (name == "available_now") t.kind = TriggerKind::kAvailableNow;
      else Error(Pos(v), "trigger is '" + name + "'; " + kExpected);
      return;
    }
    if (auto* tbl = v.as_table()) {
      for (auto&& [key, val] : *tbl) {
        if (key.str() != "processing_time") {
          Error(Pos(key.source().begin), std::string("unknown trigger key '") + std::string(key.str()) + "'; " + kExpected);
          continue;
        }
        auto s = GetString(val, "trigger.processing_time");
        if (!s) continue;
        auto d = ParseDuration(*s);
        if (!d.ok()) { Error(Pos(val), "trigger.processing_time: " + d.status().message()); continue; }
        t.kind = TriggerKind::kProcessingTime;
        t.interval_micros = *d;
      }
      return;
    }
    Error(Pos(v), kExpected);
  }

  std::optional<WatermarkSpec> LoadWatermark(const toml::node& v) {
    static const char* kShape = "with_watermark must be a table: with_watermark = { column = \"ts\", delay = \"10 minutes\" }";
    auto* t = v.as_table();
    if (!t) { Error(Pos(v), kShape); return std::nullopt; }
    WatermarkSpec w;
    w.pos = Pos(v);
    bool has_delay = false;
    for (auto&& [wk, wv] : *t) {
      if (wk.str() == "column") {
        if (auto s = GetString(wv, "with_watermark.column")) w.column = *s;
      } else if (wk.str() == "delay") {
        if (auto s = GetString(wv, "with_watermark.delay")) {
          auto d = ParseDuration(*s);
          if (d.ok() && *d >= 0) { w.delay_us = *d; has_delay = true; }
          else Error(Pos(wv), "with_watermark.delay: " + (d.ok() ? std::string("must not be negative") : d.status().message()));
        }
      } else {
        Error(Pos(wk.source().begin), "unknown key '" + std::string(wk.str()) + "' in with_watermark; expected column and delay");
      }
    }
    if (w.column.empty() || !has_delay) { Error(Pos(v), kShape); return std::nullopt; }
    return w;
  }

  void LoadState(const toml::node& node, PipelineSpec& spec) {
    auto* tbl = node.as_table();
    if (!tbl) { Error(Pos(node), "'state' must be a table: [state] with provider = \"memory\""); return; }
    spec.state_pos = Pos(node);
    for (auto&& [key, v] : *tbl) {
      std::string k(key.str());
      if (k == "provider") {
        if (auto s = GetString(v, "state.provider")) spec.state_provider = *s;
        spec.state_pos = Pos(v);
      } else if (auto val = ToOptionValue(v, k)) {
        spec.state_options[k] = {*val, Pos(key.source().begin)};
      }
    }
  }

  void LoadSources(const toml::node& node, PipelineSpec& spec) {
    auto* tbl = node.as_table();
    if (!tbl) { Error(Pos(node), "'sources' must be a table of tables: [sources.<name>]"); return; }
    for (auto&& [key, v] : *tbl) {
      SourceSpec s;
      s.name = std::string(key.str());
      s.pos = Pos(key.source().begin);
      auto* st = v.as_table();
      if (!st) { Error(Pos(v), "source '" + s.name + "' must be a table: [sources." + s.name + "]"); continue; }
      bool has_type = false;
      for (auto&& [okey, ov] : *st) {
        std::string k(okey.str());
        if (k == "type") {
          if (auto t = GetString(ov, "source type")) { s.type = *t; has_type = true; s.type_pos = Pos(ov); }
        } else if (k == "on_error") {
          if (auto e = GetString(ov, "on_error")) {
            if (*e == "fail") s.on_error = OnError::kFail;
            else if (*e == "drop") s.on_error = OnError::kDrop;
            else if (*e == "dead_letter") s.on_error = OnError::kDeadLetter;
            else Error(Pos(ov), "on_error is '" + *e + "'; expected fail, drop or dead_letter");
          }
        } else if (k == "with_watermark") {
          s.watermark = LoadWatermark(ov);
        } else if (k == "dead_letter_path") {
          if (auto p = GetString(ov, "dead_letter_path")) {
            s.dead_letter_path = ResolvePath(spec.directory, *p);
            s.dead_letter_pos = Pos(ov);
          }
        } else if (auto val = ToOptionValue(ov, k)) {
          s.options[k] = {*val, Pos(okey.source().begin)};
        }
      }
      if (!has_type) Error(s.pos, "source '" + s.name + "' has no 'type' (the source plugin to use, e.g. type = \"file\")");
      spec.sources.push_back(std::move(s));
    }
  }

  void LoadSteps(const toml::node& node, PipelineSpec& spec) {
    auto* arr = node.as_array();
    if (!arr || !arr->is_array_of_tables()) {
      Error(Pos(node), "'steps' must be an array of tables: [[steps]]");
      return;
    }
    for (auto& el : *arr) {
      auto* t = el.as_table();
      StepSpec step;
      step.pos = Pos(el);
      int kinds = 0;
      for (auto&& [key, v] : *t) {
        std::string k(key.str());
        if (k == "name") {
          if (auto s = GetString(v, "step name")) step.name = *s;
        } else if (k == "input") {
          if (auto s = GetString(v, "step input")) { step.input = *s; step.input_pos = Pos(v); }
        } else if (k == "select") {
          ++kinds;
          step.kind = StepKind::kSelect;
          step.items = GetExprList(v, "select");
        } else if (k == "where") {
          ++kinds;
          step.kind = StepKind::kWhere;
          if (auto s = GetString(v, "where")) step.items = {MakeExpr(v, *s)};
        } else if (k == "with_column") {
          ++kinds;
          step.kind = StepKind::kWithColumn;
          auto* wc = v.as_table();
          if (!wc) { Error(Pos(v), "with_column must be a table: with_column = { name = \"col\", expr = \"...\" }"); continue; }
          for (auto&& [wk, wv] : *wc) {
            if (wk.str() == "name") { if (auto s = GetString(wv, "with_column.name")) step.column_name = *s; }
            else if (wk.str() == "expr") { if (auto s = GetString(wv, "with_column.expr")) step.items = {MakeExpr(wv, *s)}; }
            else Error(Pos(wk.source().begin), "unknown key '" + std::string(wk.str()) + "' in with_column; expected name and expr");
          }
          if (step.column_name.empty() || step.items.empty())
            Error(Pos(v), "with_column needs both name and expr: with_column = { name = \"col\", expr = \"...\" }");
        } else if (k == "group_by") {
          ++kinds;
          step.kind = StepKind::kAggregate;
          step.items = GetExprList(v, "group_by");
        } else if (k == "with_watermark") {
          ++kinds;
          step.kind = StepKind::kWatermark;
          if (auto w = LoadWatermark(v)) step.watermark = *w;
        } else if (k == "drop_duplicates") {
          ++kinds;
          step.kind = StepKind::kDeduplicate;
          for (const auto& e : GetExprList(v, "drop_duplicates")) step.dedup_columns.push_back(e.text);
        } else if (k == "aggregate") {
          step.aggregates = GetExprList(v, "aggregate");
        } else if (k == "scope") {
          step.scope_pos = Pos(v);
          if (auto s = GetString(v, "scope")) step.scope = *s;
        } else {
          Error(Pos(key.source().begin), "unknown key '" + k + "' in [[steps]]; expected name, input and one of "
                "select, where, with_column, group_by (with aggregate), with_watermark, drop_duplicates");
        }
      }
      if (step.name.empty()) Error(step.pos, "a step has no 'name'");
      if (step.input.empty()) Error(step.pos, "step '" + step.name + "' has no 'input' (a source or step name)");
      if (kinds == 0)
        Error(step.pos, "step '" + step.name + "' does nothing; give it one of select, where, with_column, group_by, "
              "with_watermark, drop_duplicates");
      if (kinds > 1)
        Error(step.pos, "step '" + step.name + "' has more than one of select, where, with_column, group_by, "
              "with_watermark, drop_duplicates; split it into several steps");
      if (step.kind == StepKind::kAggregate && step.aggregates.empty())
        Error(step.pos, "step '" + step.name + "' has group_by but no aggregate list, e.g. aggregate = [\"count(*) AS count\"]");
      if (step.kind != StepKind::kAggregate && !step.aggregates.empty())
        Error(step.pos, "step '" + step.name + "' has aggregate without group_by (use group_by = [] for a global aggregate)");
      spec.steps.push_back(std::move(step));
    }
  }

  void LoadSinks(const toml::node& node, PipelineSpec& spec) {
    auto* tbl = node.as_table();
    if (!tbl) { Error(Pos(node), "'sinks' must be a table of tables: [sinks.<name>]"); return; }
    for (auto&& [key, v] : *tbl) {
      SinkSpec s;
      s.name = std::string(key.str());
      s.pos = Pos(key.source().begin);
      auto* st = v.as_table();
      if (!st) { Error(Pos(v), "sink '" + s.name + "' must be a table: [sinks." + s.name + "]"); continue; }
      bool has_type = false;
      for (auto&& [okey, ov] : *st) {
        std::string k(okey.str());
        if (k == "type") {
          if (auto t = GetString(ov, "sink type")) { s.type = *t; has_type = true; s.type_pos = Pos(ov); }
        } else if (k == "input") {
          if (auto t = GetString(ov, "sink input")) { s.input = *t; s.input_pos = Pos(ov); }
        } else if (k == "asyncProgressTrackingEnabled") {
          if (auto* b = ov.as_boolean()) { s.async_progress = b->get(); s.async_progress_pos = Pos(okey.source().begin); }
          else Error(Pos(ov), "asyncProgressTrackingEnabled must be true or false");
        } else if (k == "asyncProgressTrackingCheckpointIntervalMs") {
          if (auto* i = ov.as_integer(); i && i->get() >= 0) s.async_progress_interval_ms = i->get();
          else Error(Pos(ov), "asyncProgressTrackingCheckpointIntervalMs must be an integer >= 0 (milliseconds)");
        } else if (auto val = ToOptionValue(ov, k)) {
          s.options[k] = {*val, Pos(okey.source().begin)};
        }
      }
      if (!has_type) Error(s.pos, "sink '" + s.name + "' has no 'type' (the sink plugin to use, e.g. type = \"console\")");
      if (s.input.empty()) Error(s.pos, "sink '" + s.name + "' has no 'input' (the source or step it writes)");
      spec.sinks.push_back(std::move(s));
    }
  }

  static bool ValidName(const std::string& n) {
    if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
    for (char c : n)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
    return true;
  }

  void CheckNames(const PipelineSpec& spec) {
    std::map<std::string, SourcePos> nodes;
    for (const auto& s : spec.sources) {
      if (!ValidName(s.name)) Error(s.pos, "source name '" + s.name + "' must start with a letter and hold only letters, digits, '_' and '-'");
      nodes[s.name] = s.pos;
    }
    for (const auto& st : spec.steps) {
      if (st.name.empty()) continue;
      if (!ValidName(st.name)) Error(st.pos, "step name '" + st.name + "' must start with a letter and hold only letters, digits, '_' and '-'");
      if (auto it = nodes.find(st.name); it != nodes.end())
        Error(st.pos, "step name '" + st.name + "' is already used at line " + std::to_string(it->second.line));
      else nodes[st.name] = st.pos;
    }
  }

  std::string text_;
  std::string path_;
  std::vector<std::string> lines_;
  std::vector<Diagnostic>* diags_;
};

}  // namespace

PipelineSpec LoadPipelineString(const std::string& toml_text, const std::string& path,
                                std::vector<Diagnostic>* diagnostics) {
  return Loader(toml_text, path, diagnostics).Load();
}

PipelineSpec LoadPipelineFile(const std::string& path, std::vector<Diagnostic>* diagnostics) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    diagnostics->push_back({{path, 0, 0}, "cannot read the pipeline file: " + std::string(std::strerror(errno))});
    PipelineSpec spec;
    spec.file = path;
    return spec;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return LoadPipelineString(ss.str(), path, diagnostics);
}

}  // namespace sluice
