// A built query: plugin instances and compiled operators wired into a DAG,
// ready for the executor. Building is also how a pipeline is validated:
// `sluice validate` builds the query and throws it away.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "exec/batch_aggregate.h"
#include "exec/stateful_operators.h"
#include "expr/expression.h"
#include "pipeline/pipeline_spec.h"
#include "plugin/plugin_registry.h"

namespace sluice {

struct QuerySource {
  SourceSpec spec;
  std::shared_ptr<Source> source;
  SchemaPtr schema;
  std::string checkpoint_dir;    // <checkpoint>/sources/<index>, or empty
  std::string dead_letter_path;  // where on_error = dead_letter writes
};

// One vertex of the DAG: a source's output or a step.
struct QueryNode {
  std::string name;
  int source = -1;  // index into Query::sources for a source node
  int input = -1;   // index of the input node for a step
  StepKind kind = StepKind::kSelect;
  SchemaPtr schema;
  std::shared_ptr<expr::Projection> projection;  // select, with_column
  std::shared_ptr<expr::Predicate> predicate;    // where
  std::shared_ptr<BatchAggregate> aggregate;     // group_by with scope = "batch"
  std::shared_ptr<StatefulOperator> stateful;    // group_by (scope = "stream"), drop_duplicates
  // The event-time column of this node's rows, when a watermark upstream
  // defines one and the column survived the steps in between.
  std::string watermark_column;
  std::optional<WatermarkSpec> watermark;  // set on the node that declares with_watermark
  int watermark_index = -1;                // its slot in the executor's watermark tracker
};

struct QuerySink {
  SinkSpec spec;
  std::string checkpoint_dir;  // <checkpoint>/sinks/<name>, or empty
  std::shared_ptr<Sink> sink;
  int input = -1;  // node index
};

struct Query {
  PipelineSpec spec;
  std::string query_id;
  std::shared_ptr<StateStoreProvider> state_provider;  // when any step is stateful
  int num_watermarks = 0;
  std::vector<QuerySource> sources;
  std::vector<QueryNode> nodes;  // topologically ordered: inputs before users
  std::vector<QuerySink> sinks;
};

struct BuildOptions {
  // Handed to plugins (SourceContext/SinkContext::query_id). `sluice run`
  // takes it from the checkpoint's metadata, or makes a new one that the
  // checkpoint then records.
  std::string query_id;
};

// The query id of the checkpoint at `dir` if it has one, else a new UUID.
std::string QueryIdFor(const std::string& checkpoint_dir);

// Builds the query, appending every problem to `diagnostics` (unknown plugin,
// bad option, bad expression, unknown column, type mismatch, unknown input,
// cycle, invalid output mode). Returns null when there was any.
std::unique_ptr<Query> BuildQuery(const PipelineSpec& spec, const PluginRegistry& registry,
                                  const BuildOptions& options, std::vector<Diagnostic>* diagnostics);

}  // namespace sluice
