// Row selection over record batches: keep the rows a boolean mask selects,
// gather rows by index, and concatenate batches. The `where` step filters with
// these, `explode` repeats rows with Take(), and the executor reuses them to
// split and merge batches. Columns that need no change are shared, never copied.
#pragma once

#include <cstdint>
#include <vector>

#include "sluice/record_batch.h"
#include "sluice/status.h"

namespace sluice::compute {

// Row numbers within a batch. 32 bits suffice: a batch holds far fewer than
// 2^31 rows, and half-size indices gather faster.
using RowIndex = int32_t;

// The rows where `mask` (a BOOLEAN column) is valid and true, in order.
std::vector<RowIndex> SelectedRows(const Column& mask);

// A column holding rows `indices[0..count)` of `column`, in that order.
ColumnPtr TakeColumn(const Column& column, const RowIndex* indices, int64_t count);

// The batch's rows at `indices`, in that order, under the batch's schema.
RecordBatchPtr Take(const RecordBatch& batch, const std::vector<RowIndex>& indices);

// The rows of `batch` where `mask` is TRUE (NULL and FALSE drop the row). Returns
// `batch` itself when every row is kept.
Result<RecordBatchPtr> Filter(const RecordBatchPtr& batch, const Column& mask);

// `length` rows of `column` starting at `offset` (copied: columns own their buffers).
ColumnPtr SliceColumn(const Column& column, int64_t offset, int64_t length);
RecordBatchPtr Slice(const RecordBatch& batch, int64_t offset, int64_t length);

// One column with the rows of every column in `columns`, which must share a type.
Result<ColumnPtr> ConcatenateColumns(const std::vector<ColumnPtr>& columns);

// One batch with the rows of every batch in order; all must share a schema.
// Requires at least one batch.
Result<RecordBatchPtr> Concatenate(const std::vector<RecordBatchPtr>& batches);

}  // namespace sluice::compute
