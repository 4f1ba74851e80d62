// The file source's format parsers. A file is read into one padded buffer
// (simdjson may read a little past the end of each JSON line), then scanned
// in place: text and unquoted csv fields are views into that buffer, and only
// csv fields with "" escapes are copied, into a scratch string reused for
// every record.
#include "record_readers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "typed_rows.h"

namespace sluice::file_source {
namespace {

using typed_rows::BatchEmitter;
using typed_rows::PendingRow;

Result<simdjson::padded_string> LoadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    int err = errno;
    ::close(fd);
    return Status::IOError("cannot stat " + path + ": " + std::strerror(err));
  }
  simdjson::padded_string content(static_cast<size_t>(info.st_size));
  size_t filled = 0;
  while (filled < content.size()) {
    ssize_t n = ::read(fd, content.data() + filled, content.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::IOError("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;  // the file shrank since fstat: read what is there
    filled += static_cast<size_t>(n);
  }
  ::close(fd);
  if (filled < content.size()) {
    simdjson::padded_string shorter(content.data(), filled);
    return shorter;
  }
  return content;
}

std::string Position(const std::string& display_name, int64_t line) {
  return display_name + ":" + std::to_string(line);
}

// Reports a malformed record; a non-OK status means the pipeline's on_error
// says to fail.
Status ReportBadRecord(ReadContext& ctx, std::string_view raw, const std::string& display_name, int64_t line,
                       const std::string& error) {
  return ctx.BadRecord(raw, Position(display_name, line), error);
}

// The line starting at `pos`, without its "\n" or "\r\n"; `next` is where the
// following line starts.
std::string_view LineAt(std::string_view data, size_t pos, size_t* next) {
  const void* nl = std::memchr(data.data() + pos, '\n', data.size() - pos);
  size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data.data()) : data.size();
  *next = nl ? end + 1 : data.size();
  if (end > pos && data[end - 1] == '\r') --end;
  return data.substr(pos, end - pos);
}

int64_t EstimateRows(std::string_view data) {
  return static_cast<int64_t>(data.size() / 32 + 1);  // only a reservation hint
}

Status ReadText(std::string_view data, const RecordFormat& format, ReadContext& ctx) {
  BatchEmitter emitter(format.schema, ctx, EstimateRows(data));
  size_t pos = 0;
  while (pos < data.size()) {
    size_t next;
    std::string_view line = LineAt(data, pos, &next);
    emitter.builder().column(0).AppendString(line);
    SLUICE_RETURN_IF_ERROR(emitter.RowAppended());
    pos = next;
  }
  return emitter.Flush();
}

// ---- csv --------------------------------------------------------------------

// Where one field's text is: a span of the file, or of the unescape scratch
// when the field had "" escapes.
struct CsvFieldSpan {
  size_t begin = 0;
  size_t end = 0;
  bool in_scratch = false;
  bool quoted = false;
};

// Splits RFC 4180 records. Quoted fields may hold delimiters, newlines and ""
// (one quote); a quote inside an unquoted field is kept as an ordinary
// character.
class CsvScanner {
 public:
  CsvScanner(std::string_view data, char delimiter) : data_(data), delimiter_(delimiter) {}

  bool AtEnd() const { return pos_ >= data_.size(); }
  int64_t line() const { return line_; }

  // Skips an empty line at the current position; true if there was one.
  bool SkipBlankLine() {
    if (data_[pos_] == '\n') {
      pos_ += 1;
    } else if (data_[pos_] == '\r' && (pos_ + 1 == data_.size() || data_[pos_ + 1] == '\n')) {
      pos_ += pos_ + 1 == data_.size() ? 1 : 2;
    } else {
      return false;
    }
    ++line_;
    return true;
  }

  // Scans one record into fields(). On a syntax error returns false with
  // `error` set, having skipped to the end of the offending line. `raw` is the
  // record's text without its line terminator.
  bool NextRecord(std::string_view* raw, std::string* error) {
    fields_.clear();
    scratch_.clear();
    size_t record_start = pos_;
    size_t raw_end = 0;
    bool ok = ScanFields(&raw_end, error);
    *raw = data_.substr(record_start, raw_end - record_start);
    return ok;
  }

  size_t field_count() const { return fields_.size(); }
  std::string_view field_text(size_t i) const {
    const CsvFieldSpan& f = fields_[i];
    std::string_view from = f.in_scratch ? std::string_view(scratch_) : data_;
    return from.substr(f.begin, f.end - f.begin);
  }
  bool field_quoted(size_t i) const { return fields_[i].quoted; }

 private:
  // Consumes a line terminator at pos_ if there is one. Sets *raw_end before it.
  bool EndOfRecordAt(size_t at, size_t* raw_end) {
    if (at >= data_.size()) {
      *raw_end = data_.size();
      pos_ = data_.size();
      return true;
    }
    if (data_[at] == '\n') {
      *raw_end = at;
      pos_ = at + 1;
      ++line_;
      return true;
    }
    if (data_[at] == '\r' && (at + 1 == data_.size() || data_[at + 1] == '\n')) {
      *raw_end = at;
      pos_ = at + 1 == data_.size() ? at + 1 : at + 2;
      ++line_;
      return true;
    }
    return false;
  }

  void SkipRestOfLine(size_t from, size_t* raw_end) {
    size_t next;
    std::string_view rest = LineAt(data_, from, &next);
    *raw_end = from + rest.size();
    if (next > from && data_[next - 1] == '\n') ++line_;
    pos_ = next;
  }

  bool ScanFields(size_t* raw_end, std::string* error) {
    const size_t n = data_.size();
    while (true) {
      if (pos_ < n && data_[pos_] == '"') {
        if (!ScanQuotedField(raw_end, error)) return false;
        if (EndOfRecordAt(pos_, raw_end)) return true;
        if (data_[pos_] == delimiter_) {
          ++pos_;
          continue;
        }
        *error = "unexpected character '" + std::string(1, data_[pos_]) + "' after the closing quote of field " +
                 std::to_string(fields_.size());
        SkipRestOfLine(pos_, raw_end);
        return false;
      }
      size_t end = pos_;
      while (end < n && data_[end] != delimiter_ && data_[end] != '\n') ++end;
      if (end < n && data_[end] == delimiter_) {
        fields_.push_back({pos_, end, false, false});
        pos_ = end + 1;
        continue;
      }
      size_t text_end = (end > pos_ && data_[end - 1] == '\r') ? end - 1 : end;
      fields_.push_back({pos_, text_end, false, false});
      *raw_end = text_end;
      pos_ = end < n ? end + 1 : n;
      if (end < n) ++line_;
      return true;
    }
  }

  // pos_ is at the opening quote; leaves pos_ just after the closing one.
  bool ScanQuotedField(size_t* raw_end, std::string* error) {
    const size_t n = data_.size();
    size_t segment = pos_ + 1;
    bool copied = false;
    size_t scratch_begin = scratch_.size();
    while (true) {
      const void* found = std::memchr(data_.data() + segment, '"', n - segment);
      size_t quote = found ? static_cast<size_t>(static_cast<const char*>(found) - data_.data()) : n;
      for (size_t i = segment; i < quote; ++i) line_ += data_[i] == '\n';
      if (quote == n) {
        *error = "unterminated quoted field " + std::to_string(fields_.size() + 1);
        *raw_end = n;
        pos_ = n;
        return false;
      }
      if (quote + 1 < n && data_[quote + 1] == '"') {  // "" stands for one quote
        if (!copied) scratch_begin = scratch_.size();
        copied = true;
        scratch_.append(data_.substr(segment, quote + 1 - segment));
        segment = quote + 2;
        continue;
      }
      if (copied) {
        scratch_.append(data_.substr(segment, quote - segment));
        fields_.push_back({scratch_begin, scratch_.size(), true, true});
      } else {
        fields_.push_back({segment, quote, false, true});
      }
      pos_ = quote + 1;
      return true;
    }
  }

  std::string_view data_;
  char delimiter_;
  size_t pos_ = 0;
  int64_t line_ = 1;
  std::vector<CsvFieldSpan> fields_;
  std::string scratch_;
};

Status ReadCsv(std::string_view data, const std::string& display_name, const RecordFormat& format,
               ReadContext& ctx) {
  const Schema& schema = *format.schema;
  const size_t expected_fields = static_cast<size_t>(schema.num_fields());
  BatchEmitter emitter(format.schema, ctx, EstimateRows(data));
  PendingRow row(schema);
  CsvScanner scanner(data, format.delimiter);
  std::string error;
  bool header_pending = format.header;
  while (!scanner.AtEnd()) {
    if (scanner.SkipBlankLine()) continue;
    int64_t record_line = scanner.line();
    std::string_view raw;
    bool scanned = scanner.NextRecord(&raw, &error);
    if (header_pending) {
      header_pending = false;
      continue;
    }
    if (!scanned) {
      SLUICE_RETURN_IF_ERROR(ReportBadRecord(ctx, raw, display_name, record_line, error));
      continue;
    }
    if (scanner.field_count() != expected_fields) {
      error = "expected " + std::to_string(expected_fields) + " field" + (expected_fields == 1 ? "" : "s") +
              ", found " + std::to_string(scanner.field_count());
      SLUICE_RETURN_IF_ERROR(ReportBadRecord(ctx, raw, display_name, record_line, error));
      continue;
    }
    row.Reset();
    bool converted = true;
    for (size_t i = 0; i < expected_fields && converted; ++i) {
      int index = static_cast<int>(i);
      converted = typed_rows::ConvertTextCell(scanner.field_text(i), scanner.field_quoted(i), schema.field(index),
                                              index, row, &error);
    }
    if (converted) converted = typed_rows::CheckNotNullFields(schema, row, &error);
    if (!converted) {
      SLUICE_RETURN_IF_ERROR(ReportBadRecord(ctx, raw, display_name, record_line, error));
      continue;
    }
    SLUICE_RETURN_IF_ERROR(emitter.Append(row));
  }
  return emitter.Flush();
}

// ---- jsonl --------------------------------------------------------------------

bool IsBlank(std::string_view line) {
  for (char c : line)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

Status ReadJsonl(const simdjson::padded_string& content, const std::string& display_name, const RecordFormat& format,
                 ReadContext& ctx) {
  std::string_view data(content.data(), content.size());
  const Schema& schema = *format.schema;
  BatchEmitter emitter(format.schema, ctx, static_cast<int64_t>(data.size() / 64 + 1));
  PendingRow row(schema);
  simdjson::dom::parser parser;
  std::string error;
  size_t pos = 0;
  int64_t line_number = 0;
  while (pos < data.size()) {
    size_t next;
    std::string_view line = LineAt(data, pos, &next);
    ++line_number;
    pos = next;
    if (IsBlank(line)) continue;
    // The buffer is padded past the file's end, so a line can be parsed in
    // place; grow the parser geometrically rather than to each longer line.
    if (line.size() > parser.capacity())
      if (parser.allocate(std::max(line.size(), 2 * parser.capacity())) != simdjson::SUCCESS)
        return Status::IOError("out of memory parsing " + display_name);
    simdjson::dom::element document;
    auto parse_error = parser.parse(line.data(), line.size(), false).get(document);
    if (parse_error != simdjson::SUCCESS) {
      error = std::string("malformed JSON: ") + simdjson::error_message(parse_error);
      SLUICE_RETURN_IF_ERROR(ReportBadRecord(ctx, line, display_name, line_number, error));
      continue;
    }
    if (!typed_rows::ConvertJsonObject(document, schema, row, &error)) {
      SLUICE_RETURN_IF_ERROR(ReportBadRecord(ctx, line, display_name, line_number, error));
      continue;
    }
    SLUICE_RETURN_IF_ERROR(emitter.Append(row));
  }
  return emitter.Flush();
}

}  // namespace

Status ReadFileRecords(const std::string& path, const std::string& display_name, const RecordFormat& format,
                       ReadContext& ctx) {
  SLUICE_ASSIGN_OR_RETURN(simdjson::padded_string content, LoadFile(path));
  std::string_view data(content.data(), content.size());
  switch (format.format) {
    case FileFormat::kText: return ReadText(data, format, ctx);
    case FileFormat::kCsv: return ReadCsv(data, display_name, format, ctx);
    case FileFormat::kJsonl: return ReadJsonl(content, display_name, format, ctx);
  }
  return Status::Internal("unknown file format");
}

}  // namespace sluice::file_source
