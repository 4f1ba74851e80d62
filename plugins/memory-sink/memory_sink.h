// What the memory sink exports besides its plugin entry: functions that read
// and clear its tables, found by alias in the loaded library (for example with
// PluginRegistry::FindAlias<sluice::memory_sink::RowsFn>(PluginKind::kSink,
// "memory", sluice::memory_sink::kRowsAlias)). Tests and embedders include
// this header to name the aliases and their types without linking the plugin.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/record_batch.h"

namespace sluice::memory_sink {

// Every batch currently in the table of `query_name`, in the order added.
using RowsFn = std::vector<RecordBatchPtr>(const std::string& query_name);
inline constexpr const char* kRowsAlias = "sluice_memory_sink_rows";

// The batch id of each batch currently in the table, in the order added.
using BatchIdsFn = std::vector<int64_t>(const std::string& query_name);
inline constexpr const char* kBatchIdsAlias = "sluice_memory_sink_batch_ids";

// Empties the table of `query_name` and forgets its batch ids.
using ClearFn = void(const std::string& query_name);
inline constexpr const char* kClearAlias = "sluice_memory_sink_clear";

}  // namespace sluice::memory_sink
