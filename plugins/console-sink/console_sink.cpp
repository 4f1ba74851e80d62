// The console sink prints every micro-batch as a text table, byte for byte
// the way Spark's console sink does: a "Batch: N" banner between dashed lines,
// then Dataset.show() output (a boxed table of at most num_rows rows, cells
// longer than 20 characters cut to 17 + "...", null shown as "null", and
// "only showing top N rows" when rows were left out), then a blank line. It is
// meant for watching a pipeline while developing it; the `path` option sends
// the same text to a file so tests and operators can keep it. Each batch is
// built in memory and written with a single fwrite and fflush, so tables of
// concurrent writers to the same terminal do not interleave mid-table.
//
// Guarantee: at-least-once. The sink keeps no record of what it printed, so a
// batch replayed after a crash is printed again.

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/sluice.h"

namespace {

using sluice::BatchData;
using sluice::Column;
using sluice::DeliveryGuarantee;
using sluice::RecordBatchPtr;
using sluice::Schema;
using sluice::SinkContext;
using sluice::Status;

// Dataset.show(truncate = true) cuts cells at 20 characters.
constexpr size_t kTruncatedCellCharacters = 20;
constexpr size_t kTruncatedCellKeptCharacters = kTruncatedCellCharacters - 3;  // then "..."
// Dataset.show() and the console sink show 20 rows unless told otherwise.
constexpr int64_t kDefaultRowsShown = 20;
// Spark never draws a column narrower than this.
constexpr size_t kMinimumColumnWidth = 3;

// Characters (code points) in UTF-8 text: every byte that does not continue a
// multi-byte sequence starts a character.
size_t CharacterCount(std::string_view text) {
  size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

// Bytes taken by the first `characters` characters of UTF-8 text, so a cut
// never splits a multi-byte character.
size_t PrefixBytes(std::string_view text, size_t characters) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    if (seen == characters) return i;
    ++seen;
  }
  return text.size();
}

// Spark writes control characters as escapes so that a value cannot break a
// table line.
void AppendEscaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\f': out += "\\f"; break;
      case '\b': out += "\\b"; break;
      case '\v': out += "\\v"; break;
      case '\a': out += "\\a"; break;
      default: out.push_back(c);
    }
  }
}

// The text shown for one column: its header and its shown cells, with the
// width the column is drawn at.
struct ShownColumn {
  std::string header;
  std::vector<std::string> cells;
  size_t width = kMinimumColumnWidth;
};

ShownColumn ShowColumn(const std::string& name, int column_index, const std::vector<RecordBatchPtr>& batches,
                       int64_t rows_to_show, bool truncate) {
  ShownColumn shown;
  AppendEscaped(shown.header, name);  // headers are escaped but never cut, as in Spark
  shown.cells.reserve(static_cast<size_t>(rows_to_show));
  std::string value;
  int64_t remaining = rows_to_show;
  for (const auto& batch : batches) {
    if (remaining == 0) break;
    const Column& column = batch->column(column_index);
    const int64_t rows = std::min(remaining, batch->num_rows());
    for (int64_t row = 0; row < rows; ++row) {
      std::string cell;
      if (column.is_null(row)) {
        cell = "null";
      } else {
        value.clear();
        sluice::AppendCellText(value, column, row);
        AppendEscaped(cell, value);
        if (truncate && CharacterCount(cell) > kTruncatedCellCharacters) {
          cell.resize(PrefixBytes(cell, kTruncatedCellKeptCharacters));
          cell += "...";
        }
      }
      shown.cells.push_back(std::move(cell));
    }
    remaining -= rows;
  }
  shown.width = std::max(shown.width, CharacterCount(shown.header));
  for (const auto& cell : shown.cells) shown.width = std::max(shown.width, CharacterCount(cell));
  return shown;
}

// Spark right-aligns cells when truncating and left-aligns them otherwise.
void AppendPadded(std::string& out, const std::string& cell, size_t width, bool right_align) {
  const size_t padding = width - CharacterCount(cell);
  if (right_align) out.append(padding, ' ');
  out += cell;
  if (!right_align) out.append(padding, ' ');
}

void AppendSeparator(std::string& out, const std::vector<ShownColumn>& columns) {
  out.push_back('+');
  for (const auto& column : columns) {
    out.append(column.width, '-');
    out.push_back('+');
  }
  out.push_back('\n');
}

// The whole text printed for one batch: the banner, the table, a blank line.
std::string FormatBatch(int64_t batch_id, const Schema& schema, const std::vector<RecordBatchPtr>& batches,
                        int64_t total_rows, int64_t num_rows, bool truncate) {
  const int64_t rows_to_show = std::min(total_rows, num_rows);
  std::vector<ShownColumn> columns;
  columns.reserve(static_cast<size_t>(schema.num_fields()));
  for (int c = 0; c < schema.num_fields(); ++c)
    columns.push_back(ShowColumn(schema.field(c).name, c, batches, rows_to_show, truncate));

  std::string out;
  out += "-------------------------------------------\n";
  out += "Batch: " + std::to_string(batch_id) + "\n";
  out += "-------------------------------------------\n";
  AppendSeparator(out, columns);
  out.push_back('|');
  for (const auto& column : columns) {
    AppendPadded(out, column.header, column.width, truncate);
    out.push_back('|');
  }
  out.push_back('\n');
  AppendSeparator(out, columns);
  for (size_t row = 0; row < static_cast<size_t>(rows_to_show); ++row) {
    out.push_back('|');
    for (const auto& column : columns) {
      AppendPadded(out, column.cells[row], column.width, truncate);
      out.push_back('|');
    }
    out.push_back('\n');
  }
  AppendSeparator(out, columns);
  if (total_rows > num_rows)
    out += "only showing top " + std::to_string(num_rows) + (num_rows == 1 ? " row\n" : " rows\n");
  out.push_back('\n');
  return out;
}

class ConsoleSink final : public sluice::Sink {
 public:
  explicit ConsoleSink(const SinkContext& ctx)
      : input_schema_(ctx.input_schema),
        num_rows_(ctx.options.GetInt("num_rows", kDefaultRowsShown)),
        truncate_(ctx.options.GetBool("truncate", true)),
        path_(ctx.options.GetString("path")) {
    if (!path_.empty()) {
      destination_name_ = path_;
      out_ = std::fopen(path_.c_str(), "ae");
      if (!out_) throw std::runtime_error("cannot open '" + path_ + "' for appending: " + std::strerror(errno));
      owns_out_ = true;
    } else if (ctx.options.GetString("output", "stdout") == "stderr") {
      destination_name_ = "stderr";
      out_ = stderr;
    } else {
      destination_name_ = "stdout";
      out_ = stdout;
    }
  }
  ~ConsoleSink() override { Stop(); }

  static Status Validate(const sluice::Options& options) {
    if (options.GetInt("num_rows", kDefaultRowsShown) < 0)
      return Status::InvalidArgument("num_rows must be 0 or more, got " + std::to_string(options.GetInt("num_rows")));
    return Status::OK();
  }

  // A replayed batch is printed again: nothing remembers what was shown.
  DeliveryGuarantee guarantee() const override { return DeliveryGuarantee::kAtLeastOnce; }

  std::string Description() const override { return "ConsoleSink[" + destination_name_ + "]"; }

  Status AddBatch(const BatchData& data) override {
    if (!out_) return Status::Aborted("console sink writing to " + destination_name_ + " is stopped");
    const Schema& schema = data.schema ? *data.schema : input_schema_;
    const std::string text = FormatBatch(data.batch_id, schema, data.batches, data.num_rows(), num_rows_, truncate_);
    // One write per batch keeps the table whole when others share the stream.
    if (std::fwrite(text.data(), 1, text.size(), out_) != text.size() || std::fflush(out_) != 0)
      return Status::IOError("console sink cannot write batch " + std::to_string(data.batch_id) + " to " +
                             destination_name_ + ": " + std::strerror(errno));
    return Status::OK();
  }

  Status Stop() override {
    if (!out_) return Status::OK();
    FILE* out = out_;
    out_ = nullptr;
    if (owns_out_ && std::fclose(out) != 0)
      return Status::IOError("console sink cannot close '" + path_ + "': " + std::strerror(errno));
    return Status::OK();
  }

 private:
  Schema input_schema_;
  int64_t num_rows_;
  bool truncate_;
  std::string path_;
  std::string destination_name_;
  FILE* out_ = nullptr;
  bool owns_out_ = false;
};

const sluice::OptionSpec kConsoleOptions[] = {
    {"num_rows", sluice::OptionType::kInt, "20", false, "rows shown per batch; more are summarised as "
                                                        "\"only showing top N rows\""},
    {"truncate", sluice::OptionType::kBool, "true", false,
     "cut cells longer than 20 characters to their first 17 and \"...\" (and right-align cells)"},
    {"output", sluice::OptionType::kString, "stdout", false, "the stream tables are printed to when `path` is not set",
     "stdout|stderr"},
    {"path", sluice::OptionType::kPath, nullptr, false, "append the tables to this file instead of printing them"},
};

}  // namespace

SLUICE_REGISTER_SINK("console", SLUICE_VERSION_STRING,
                       "Prints each batch as a table, like Spark's console sink (at-least-once: a replayed batch is printed "
      "again)",
                       kConsoleOptions, ConsoleSink)
