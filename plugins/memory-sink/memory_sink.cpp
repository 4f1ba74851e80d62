// The memory sink keeps every batch it receives in a process-wide table named
// by its query name, as Spark's memory sink does, so tests and embedders can
// read a stream's output back without touching disk. The table is shared by
// every sink instance with the same query name in the process: a pipeline
// restarted in the same process finds the rows it already wrote, which is what
// lets a replayed batch be recognised. Readers reach the tables through the
// functions this library exports by alias (see memory_sink.h).
//
// Output modes: append and update add each batch to the table; complete
// replaces the table with the batch, since a complete-mode batch is the whole
// result. Like Spark's MemorySink, a batch whose id is at or below the last one
// added is skipped, so a replay does not duplicate rows.
//
// Guarantee: at-least-once. The table lives only in this process and is lost
// on a crash; the replay check protects only a restart within the process.

#include "memory_sink.h"

#include <boost/dll/alias.hpp>
#include <map>
#include <mutex>
#include <type_traits>
#include <string>
#include <vector>

#include "sluice/sluice.h"

namespace sluice::memory_sink {
namespace {

// One AddBatch call that was kept.
struct AddedBatch {
  int64_t batch_id;
  std::vector<RecordBatchPtr> batches;  // only those with rows
};

struct Table {
  std::vector<AddedBatch> added;
};

// Every table in the process, by query name. Record batches are immutable, so
// readers get shared pointers to them and copy no values.
struct Tables {
  std::mutex mutex;
  std::map<std::string, Table> by_query_name;
};

Tables& AllTables() {
  static Tables* tables = new Tables();  // never destroyed: readers may run during exit
  return *tables;
}

class MemorySink final : public Sink {
 public:
  explicit MemorySink(const SinkContext& ctx)
      : query_name_(ctx.options.GetString("query_name", ctx.name)),
        replaces_table_(ctx.output_mode == OutputMode::kComplete) {
    if (query_name_.empty()) query_name_ = ctx.name;
  }

  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kAtLeastOnce; }

  std::string Description() const override { return "MemorySink[" + query_name_ + "]"; }

  Status AddBatch(const BatchData& data) override {
    AddedBatch added{data.batch_id, {}};
    for (const auto& batch : data.batches)
      if (batch->num_rows() > 0) added.batches.push_back(batch);

    Tables& tables = AllTables();
    std::lock_guard<std::mutex> lock(tables.mutex);
    Table& table = tables.by_query_name[query_name_];
    // A batch id at or below the last one kept was already written: a replay.
    if (!table.added.empty() && data.batch_id <= table.added.back().batch_id) return Status::OK();
    if (replaces_table_) table.added.clear();
    table.added.push_back(std::move(added));
    return Status::OK();
  }

 private:
  std::string query_name_;
  bool replaces_table_;
};

const OptionSpec kMemoryOptions[] = {
    {"query_name", OptionType::kString, nullptr, false,
     "name of the in-process table the rows go to; defaults to the sink's name"},
};

}  // namespace

std::vector<RecordBatchPtr> MemorySinkRows(const std::string& query_name) {
  Tables& tables = AllTables();
  std::lock_guard<std::mutex> lock(tables.mutex);
  std::vector<RecordBatchPtr> rows;
  auto it = tables.by_query_name.find(query_name);
  if (it == tables.by_query_name.end()) return rows;
  for (const auto& added : it->second.added) rows.insert(rows.end(), added.batches.begin(), added.batches.end());
  return rows;
}

std::vector<int64_t> MemorySinkBatchIds(const std::string& query_name) {
  Tables& tables = AllTables();
  std::lock_guard<std::mutex> lock(tables.mutex);
  std::vector<int64_t> ids;
  auto it = tables.by_query_name.find(query_name);
  if (it == tables.by_query_name.end()) return ids;
  for (const auto& added : it->second.added) ids.push_back(added.batch_id);
  return ids;
}

void MemorySinkClear(const std::string& query_name) {
  Tables& tables = AllTables();
  std::lock_guard<std::mutex> lock(tables.mutex);
  tables.by_query_name.erase(query_name);
}

// Checked against the types readers use to look the functions up.
static_assert(std::is_same_v<decltype(MemorySinkRows), RowsFn>);
static_assert(std::is_same_v<decltype(MemorySinkBatchIds), BatchIdsFn>);
static_assert(std::is_same_v<decltype(MemorySinkClear), ClearFn>);

}  // namespace sluice::memory_sink

BOOST_DLL_ALIAS(sluice::memory_sink::MemorySinkRows, sluice_memory_sink_rows)
BOOST_DLL_ALIAS(sluice::memory_sink::MemorySinkBatchIds, sluice_memory_sink_batch_ids)
BOOST_DLL_ALIAS(sluice::memory_sink::MemorySinkClear, sluice_memory_sink_clear)

SLUICE_REGISTER_SINK("memory", SLUICE_VERSION_STRING,
                       "Keeps each batch in an in-process table for tests, like Spark's memory sink (at-least-once: rows are "
      "lost with the process; a replayed batch id is skipped)",
                       sluice::memory_sink::kMemoryOptions, sluice::memory_sink::MemorySink)
