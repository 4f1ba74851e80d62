// Builds a Query from a PipelineSpec: instantiates source and sink plugins
// through the registry, resolves step inputs into a DAG, compiles expressions
// against each input's schema, and checks query-level rules. Errors are
// collected, not thrown, so one run of `sluice validate` reports them all.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>

#include "checkpoint/checkpoint.h"
#include "common/ids.h"
#include "exec/query.h"

namespace sluice {

namespace fs = std::filesystem;

namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s.empty() ? "(none installed)" : s;
}

class Builder {
 public:
  Builder(const PipelineSpec& spec, const PluginRegistry& registry, const BuildOptions& options,
          std::vector<Diagnostic>* diags)
      : spec_(spec), registry_(registry), options_(options), diags_(diags) {}

  std::unique_ptr<Query> Build() {
    size_t errors_before = diags_->size();
    auto q = std::make_unique<Query>();
    q->spec = spec_;
    q->query_id = options_.query_id.empty() ? QueryIdFor(spec_.checkpoint) : options_.query_id;
    BuildSources(*q);
    BuildSteps(*q);
    BuildSinks(*q);
    // Output-mode rules judge the whole DAG: a step that failed to build
    // would only produce misleading follow-on errors.
    CheckQueryRules(*q, /*dag_complete=*/diags_->size() == errors_before);
    if (diags_->size() != errors_before) return nullptr;
    return q;
  }

 private:
  void Error(const SourcePos& pos, std::string msg) { diags_->push_back({pos, std::move(msg)}); }

  // Converts the TOML options into validated plugin Options, pointing at the
  // offending key on error. Relative paths resolve against the pipeline file.
  bool ResolveOptions(const LoadedPlugin& plugin, const std::map<std::string, OptionEntry>& entries,
                      const SourcePos& owner_pos, Options* out) {
    std::map<std::string, OptionValue> given;
    for (const auto& [k, e] : entries) {
      OptionValue v = e.value;
      const OptionSpec* os = plugin.FindOption(k);
      if (os && os->type == OptionType::kPath)
        if (auto* s = std::get_if<std::string>(&v)) v = ResolvePath(spec_.directory, *s);
      given[k] = v;
    }
    std::string bad_key;
    auto r = PluginRegistry::ResolveOptions(plugin, given, &bad_key);
    if (!r.ok()) {
      auto it = entries.find(bad_key);
      Error(it != entries.end() ? it->second.pos : owner_pos, r.status().message());
      return false;
    }
    *out = *r;
    return true;
  }

  void BuildSources(Query& q) {
    for (size_t i = 0; i < spec_.sources.size(); ++i) {
      const SourceSpec& s = spec_.sources[i];
      QueryNode node;
      node.name = s.name;
      node.source = static_cast<int>(q.sources.size());
      QuerySource qs;
      qs.spec = s;
      if (!spec_.checkpoint.empty()) qs.checkpoint_dir = spec_.checkpoint + "/sources/" + std::to_string(i);
      qs.dead_letter_path = s.dead_letter_path;
      if (s.on_error == OnError::kDeadLetter && qs.dead_letter_path.empty()) {
        if (spec_.checkpoint.empty())
          Error(s.pos, "source '" + s.name + "' has on_error = \"dead_letter\" but no dead_letter_path and no "
                "checkpoint to put it under; set dead_letter_path = \"<file>\"");
        else
          qs.dead_letter_path = spec_.checkpoint + "/dead-letter/" + s.name + ".jsonl";
      }
      if (s.type.empty()) { node_index_[s.name] = -1; continue; }
      const LoadedPlugin* plugin = registry_.Find(PluginKind::kSource, s.type);
      if (!plugin) {
        Error(s.type_pos, "unknown source plugin '" + s.type + "'; installed source plugins: " +
              Join(registry_.Names(PluginKind::kSource)) + " (see `sluice plugins`)");
        node_index_[s.name] = -1;
        continue;
      }
      SourceContext ctx;
      ctx.name = s.name;
      ctx.query_id = q.query_id;
      ctx.checkpoint_dir = qs.checkpoint_dir;
      if (!ResolveOptions(*plugin, s.options, s.pos, &ctx.options)) { node_index_[s.name] = -1; continue; }
      auto created = registry_.CreateSource(s.type, ctx);
      if (!created.ok()) {
        Error(s.pos, "source '" + s.name + "': " + created.status().message());
        node_index_[s.name] = -1;
        continue;
      }
      qs.source = *created;
      qs.schema = std::make_shared<const Schema>(qs.source->schema());
      node.schema = qs.schema;
      if (s.watermark && !SetWatermark(q, node, *s.watermark, "source '" + s.name + "'")) {
        node_index_[s.name] = -1;
        continue;
      }
      q.sources.push_back(std::move(qs));
      node_index_[s.name] = static_cast<int>(q.nodes.size());
      q.nodes.push_back(std::move(node));
    }
  }

  void BuildSteps(Query& q) {
    // Resolve in dependency order, whatever order the file lists them in.
    std::map<std::string, const StepSpec*> by_name;
    for (const auto& st : spec_.steps)
      if (!st.name.empty()) by_name[st.name] = &st;
    std::map<std::string, int> state;  // 1 = visiting, 2 = done
    std::function<void(const StepSpec&)> visit = [&](const StepSpec& st) {
      if (state[st.name] == 2) return;
      if (state[st.name] == 1) {
        Error(st.pos, "step '" + st.name + "' depends on itself through its inputs (a cycle); steps must form a DAG");
        node_index_[st.name] = -1;
        state[st.name] = 2;
        return;
      }
      state[st.name] = 1;
      if (auto it = by_name.find(st.input); it != by_name.end() && !node_index_.count(st.input)) visit(*it->second);
      state[st.name] = 2;
      if (!node_index_.count(st.name)) BuildStep(q, st);
    };
    for (const auto& st : spec_.steps)
      if (!st.name.empty()) visit(st);
  }

  void BuildStep(Query& q, const StepSpec& st) {
    node_index_[st.name] = -1;
    auto it = node_index_.find(st.input);
    if (it == node_index_.end()) {
      Error(st.input_pos.line ? st.input_pos : st.pos,
            "step '" + st.name + "' reads from '" + st.input + "', which is not a source or step; known: " +
                KnownNodes(st.name));
      return;
    }
    if (it->second < 0) return;  // the input already failed; do not cascade
    const QueryNode& in = q.nodes[static_cast<size_t>(it->second)];
    QueryNode node;
    node.name = st.name;
    node.input = it->second;
    node.kind = st.kind;
    expr::ExprError err;
    switch (st.kind) {
      case StepKind::kSelect: {
        std::vector<std::string> items;
        for (const auto& e : st.items) items.push_back(e.text);
        size_t bad_item = 0;
        node.projection = expr::Projection::Make(items, *in.schema, &err, &bad_item);
        if (!node.projection) {
          const ExprText& e = st.items.empty() ? ExprText{} : st.items[std::min(bad_item, st.items.size() - 1)];
          Error(e.pos.line ? e.At(err.offset) : st.pos, "step '" + st.name + "': " + err.message);
          return;
        }
        node.schema = node.projection->output_schema();
        break;
      }
      case StepKind::kWhere: {
        node.predicate = expr::Predicate::Make(st.items[0].text, *in.schema, &err);
        if (!node.predicate) { Error(st.items[0].At(err.offset), "step '" + st.name + "': " + err.message); return; }
        node.schema = in.schema;
        break;
      }
      case StepKind::kWithColumn: {
        node.projection = expr::Projection::MakeWithColumn(st.column_name, st.items[0].text, *in.schema, &err);
        if (!node.projection) { Error(st.items[0].At(err.offset), "step '" + st.name + "': " + err.message); return; }
        node.schema = node.projection->output_schema();
        break;
      }
      case StepKind::kWatermark: {
        node.schema = in.schema;
        if (!SetWatermark(q, node, st.watermark, "step '" + st.name + "'")) return;
        break;
      }
      case StepKind::kDeduplicate: {
        DeduplicateOptions opts;
        opts.id = st.name;
        opts.partitions = spec_.shuffle_partitions;
        opts.columns = st.dedup_columns;
        opts.watermark_column = in.watermark_column;
        std::string err;
        node.stateful = MakeStreamingDeduplicate(opts, *in.schema, &err);
        if (!node.stateful) { Error(st.pos, "step '" + st.name + "': " + err); return; }
        node.schema = node.stateful->output_schema();
        break;
      }
      case StepKind::kAggregate: {
        if (st.scope != "batch" && st.scope != "stream") {
          Error(st.scope_pos.line ? st.scope_pos : st.pos,
                "step '" + st.name + "': scope is '" + st.scope + "'; expected \"stream\" (aggregate across batches "
                "through state, as Spark's streaming aggregation) or \"batch\" (each micro-batch on its own)");
          return;
        }
        if (st.scope == "stream") {
          StreamingAggregateOptions opts;
          opts.id = st.name;
          opts.partitions = spec_.shuffle_partitions;
          for (const auto& k : st.items) opts.key_texts.push_back(k.text);
          for (const auto& a : st.aggregates) opts.aggregate_texts.push_back(a.text);
          opts.watermark_column = in.watermark_column;
          size_t item = 0;
          node.stateful = MakeStreamingAggregate(opts, *in.schema, &err, &item);
          if (!node.stateful) {
            const ExprText& e = item < st.items.size() ? st.items[item] : st.aggregates[item - st.items.size()];
            Error(e.At(err.offset), "step '" + st.name + "': " + (item < st.items.size() ? "group_by: " : "aggregate: ") + err.message);
            return;
          }
          node.schema = node.stateful->output_schema();
          break;
        }
        std::vector<std::shared_ptr<expr::CompiledExpr>> keys;
        for (const auto& k : st.items) {
          auto c = expr::CompileExpression(k.text, *in.schema, &err);
          if (!c) { Error(k.At(err.offset), "step '" + st.name + "': group_by: " + err.message); return; }
          keys.push_back(std::move(c));
        }
        std::vector<AggregateSpec> aggs;
        for (const auto& a : st.aggregates) {
          AggregateSpec spec;
          if (!ParseAggregate(a.text, *in.schema, &spec, &err)) {
            Error(a.At(err.offset), "step '" + st.name + "': aggregate: " + err.message);
            return;
          }
          aggs.push_back(std::move(spec));
        }
        node.aggregate = std::make_shared<BatchAggregate>(std::move(keys), std::move(aggs));
        node.schema = node.aggregate->output_schema();
        break;
      }
    }
    // The event-time column follows the rows while it keeps its name and type.
    if (node.watermark_column.empty() && !in.watermark_column.empty()) {
      int c = node.schema->IndexOf(in.watermark_column);
      if (c >= 0 && node.schema->field(c).type == DataType::kTimestamp) node.watermark_column = node.schema->field(c).name;
    }
    node_index_[st.name] = static_cast<int>(q.nodes.size());
    q.nodes.push_back(std::move(node));
  }

  bool SetWatermark(Query& q, QueryNode& node, const WatermarkSpec& w, const std::string& who) {
    int c = node.schema->IndexOf(w.column);
    if (c < 0) {
      std::string names;
      for (const auto& f : node.schema->fields()) names += (names.empty() ? "" : ", ") + f.name;
      Error(w.pos, who + ": with_watermark names column '" + w.column + "', which does not exist; available: " + names);
      return false;
    }
    if (node.schema->field(c).type != DataType::kTimestamp) {
      Error(w.pos, who + ": with_watermark needs a TIMESTAMP column, but '" + w.column + "' is " +
                       DataTypeName(node.schema->field(c).type) + "; convert it first with to_timestamp()");
      return false;
    }
    node.watermark = w;
    node.watermark->column = node.schema->field(c).name;
    node.watermark_column = node.watermark->column;
    node.watermark_index = q.num_watermarks++;
    return true;
  }

  void BuildSinks(Query& q) {
    for (const auto& s : spec_.sinks) {
      if (s.type.empty() || s.input.empty()) continue;
      auto it = node_index_.find(s.input);
      if (it == node_index_.end()) {
        Error(s.input_pos, "sink '" + s.name + "' reads from '" + s.input + "', which is not a source or step; known: " +
              KnownNodes(""));
        continue;
      }
      const LoadedPlugin* plugin = registry_.Find(PluginKind::kSink, s.type);
      if (!plugin) {
        Error(s.type_pos, "unknown sink plugin '" + s.type + "'; installed sink plugins: " +
              Join(registry_.Names(PluginKind::kSink)) + " (see `sluice plugins`)");
        continue;
      }
      SinkContext ctx;
      ctx.name = s.name;
      ctx.query_id = q.query_id;
      if (!spec_.checkpoint.empty()) ctx.checkpoint_dir = spec_.checkpoint + "/sinks/" + s.name;
      ctx.output_mode = spec_.output_mode;
      if (!ResolveOptions(*plugin, s.options, s.pos, &ctx.options)) continue;
      if (it->second < 0) continue;  // input failed to build: its error is already reported
      ctx.input_schema = *q.nodes[static_cast<size_t>(it->second)].schema;
      auto created = registry_.CreateSink(s.type, ctx);
      if (!created.ok()) {
        Error(s.pos, "sink '" + s.name + "': " + created.status().message());
        continue;
      }
      q.sinks.push_back({s, ctx.checkpoint_dir, *created, it->second});
    }
  }

  // Spark's UnsupportedOperationChecker, for what this engine supports.
  void CheckQueryRules(Query& q, bool dag_complete) {
    const SourcePos mode_pos = spec_.output_mode_pos.line ? spec_.output_mode_pos : SourcePos{spec_.file, 1, 1};
    std::vector<const QueryNode*> stateful;
    const QueryNode* aggregation = nullptr;
    for (const auto& n : q.nodes)
      if (n.stateful) {
        stateful.push_back(&n);
        if (n.stateful->kind() == "aggregate" || n.stateful->kind() == "session aggregate") aggregation = &n;
      }
    if (stateful.size() > 1) {
      Error(StepPos(stateful[1]->name), "step '" + stateful[1]->name + "' is a second stateful step (after '" +
            stateful[0]->name + "'); this version runs at most one group_by (scope = \"stream\") or drop_duplicates "
            "per pipeline");
    }
    if (dag_complete && spec_.output_mode == OutputMode::kComplete && !aggregation) {
      Error(mode_pos, "output_mode = \"complete\" needs a streaming aggregation (a group_by step with scope = "
            "\"stream\"): as in Spark, complete mode re-emits the whole result table each batch, and this pipeline "
            "has none; use output_mode = \"append\"");
    }
    if (dag_complete && spec_.output_mode == OutputMode::kAppend && aggregation &&
        !aggregation->stateful->evicts_by_watermark()) {
      Error(mode_pos, "output_mode = \"append\" with the aggregation in step '" + aggregation->name +
            "' needs a watermark: append emits a group once, when the watermark passes it, so group by "
            "window(<event time>, ...), session_window(<event time>, ...) or the event-time column after "
            "with_watermark on that column; or use output_mode = \"update\" or \"complete\"");
    }
    if (dag_complete && spec_.output_mode == OutputMode::kUpdate && aggregation &&
        aggregation->stateful->kind() == "session aggregate") {
      Error(mode_pos, "output_mode = \"update\" is not supported with session_window in step '" + aggregation->name +
            "' (as in Spark): a later row can merge sessions and move a session's start, and rows already emitted "
            "for the old session cannot be withdrawn; use output_mode = \"append\" (with a watermark) or \"complete\"");
    }
    // Spark's asynchronous progress tracking: Kafka sinks only, no stateful
    // operators, and every sink must agree (one offset log serves them all).
    for (const auto& s : spec_.sinks) {
      if (!s.async_progress) continue;
      if (s.type != "kafka")
        Error(s.async_progress_pos, "sink '" + s.name + "': asyncProgressTrackingEnabled works only with the kafka sink "
              "(as in Spark): other sinks rely on the offset and commit logs being written before and after each "
              "batch");
      if (!stateful.empty())
        Error(s.async_progress_pos, "sink '" + s.name + "': asyncProgressTrackingEnabled cannot be used with the "
              "stateful step '" + stateful[0]->name + "' (as in Spark): state must be checkpointed with each batch");
      for (const auto& o : spec_.sinks)
        if (!o.async_progress)
          Error(s.async_progress_pos, "sink '" + s.name + "' enables asyncProgressTrackingEnabled but sink '" + o.name +
                "' does not; the setting belongs to the whole query: set it on every sink or on none");
      if (auto g = s.options.find("guarantee"); g != s.options.end())
        if (auto* v = std::get_if<std::string>(&g->second.value); v && *v == "exactly_once")
          Error(s.async_progress_pos, "sink '" + s.name + "': asyncProgressTrackingEnabled gives at-least-once "
                "output; it cannot be combined with guarantee = \"exactly_once\"");
    }
    if (!stateful.empty()) {
      const LoadedPlugin* plugin = registry_.Find(PluginKind::kStateStore, spec_.state_provider);
      SourcePos pos = spec_.state_pos.line ? spec_.state_pos : StepPos(stateful[0]->name);
      if (!plugin) {
        Error(pos, "unknown state store provider '" + spec_.state_provider + "'; installed: " +
              Join(registry_.Names(PluginKind::kStateStore)) + " (see `sluice plugins`)");
        return;
      }
      StateStoreContext ctx;
      ctx.name = spec_.state_provider;
      if (!ResolveOptions(*plugin, spec_.state_options, pos, &ctx.options)) return;
      auto created = registry_.CreateStateStore(spec_.state_provider, ctx);
      if (!created.ok()) {
        Error(pos, "state store '" + spec_.state_provider + "': " + created.status().message());
        return;
      }
      q.state_provider = *created;
    }
  }

  SourcePos StepPos(const std::string& name) const {
    for (const auto& st : spec_.steps)
      if (st.name == name) return st.pos;
    return {spec_.file, 1, 1};
  }

  std::string KnownNodes(const std::string& except) const {
    std::vector<std::string> names;
    for (const auto& [n, i] : node_index_)
      if (n != except) names.push_back(n);
    return Join(names);
  }

  const PipelineSpec& spec_;
  const PluginRegistry& registry_;
  BuildOptions options_;
  std::vector<Diagnostic>* diags_;
  std::map<std::string, int> node_index_;  // -1: declared but failed to build
};

}  // namespace

std::string QueryIdFor(const std::string& checkpoint_dir) {
  if (!checkpoint_dir.empty()) {
    auto meta = Checkpoint::ReadMetadata(checkpoint_dir);
    if (meta.ok()) return meta->query_id;
  }
  return NewUuid();
}

std::unique_ptr<Query> BuildQuery(const PipelineSpec& spec, const PluginRegistry& registry,
                                  const BuildOptions& options, std::vector<Diagnostic>* diagnostics) {
  return Builder(spec, registry, options, diagnostics).Build();
}

}  // namespace sluice
