// Session-window aggregation across batches: a stateful group_by with a
// session_window(ts, '5 minutes') key, built to Spark's rules for session
// windows (../shared/reference/spark-stateful-semantics.md §4, §6, §7.1).
// Each row opens a session [t, t + gap); sessions of the same other keys that
// overlap or touch merge, also across batches and also when a new row bridges
// two stored ones. Spark names the session a struct `session_window` with
// `start` and `end`; sluice has no structs, so the output carries two
// TIMESTAMP columns session_window_start and session_window_end, then the
// other keys, then the aggregates. MakeStreamingAggregate builds this
// operator instead of a StreamingAggregate when a group key is a
// session_window(...) call.
#pragma once

#include <memory>
#include <string_view>

#include "exec/stateful_operators.h"

namespace sluice {

// Whether `text` is a session_window(...) call (well formed or not), so the
// caller knows which operator should parse it.
bool IsSessionWindowKey(std::string_view text);

// Builds the session-window aggregation for a group_by whose keys include one
// session_window(...) call. On failure returns null with *error and *item, as
// MakeStreamingAggregate does (index into key_texts, then aggregate_texts).
std::unique_ptr<StatefulOperator> MakeSessionWindowAggregate(const StreamingAggregateOptions& options,
                                                             const Schema& input, expr::ExprError* error,
                                                             size_t* item);

}  // namespace sluice
