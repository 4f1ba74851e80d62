// Parsers for the file source's formats: text (one row per line), csv (RFC
// 4180) and jsonl (one JSON object per line). Each reads one whole file and
// emits its rows in batches of at most kPreferredBatchRows, reporting each
// malformed record to the ReadContext with its position "<file name>:<line>".
#pragma once

#include <string>

#include "sluice/record_batch.h"
#include "sluice/source.h"

namespace sluice::file_source {

enum class FileFormat { kText, kCsv, kJsonl };

struct RecordFormat {
  FileFormat format = FileFormat::kText;
  SchemaPtr schema;      // `value STRING` for text
  bool header = false;   // csv: the first record holds column names and is skipped
  char delimiter = ',';  // csv
};

// Reads `path` and emits its rows. `display_name` names the file in the
// position of bad records.
Status ReadFileRecords(const std::string& path, const std::string& display_name, const RecordFormat& format,
                       ReadContext& ctx);

}  // namespace sluice::file_source
