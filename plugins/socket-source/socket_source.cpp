// The "socket" source: reads newline-separated text from a TCP server, like
// Spark's socket source, for demos and tests. It connects as a client at the
// first LatestOffset (not when created: `sluice validate` creates sources to
// learn their schemas and must not open connections); a background thread
// then appends every received line to an in-memory buffer, and an offset
// counts the lines received ({"lines":N}).
//
// NOT FAULT-TOLERANT: lines live only in this process's memory. Once a batch
// is committed its lines are discarded, and lines received by an earlier run
// are gone after a restart: a replayed batch of that run reads no rows, and a
// restarted source numbers its lines after the offsets it is given, so the
// stream goes on, minus what was lost.
#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "count_offset.h"
#include "sluice/plugin.h"

namespace sluice::socket_source {
namespace {

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string LinesOffset(int64_t lines) { return count_offset::Format("lines", lines); }

Result<int64_t> ParseLinesOffset(const std::optional<Offset>& offset) {
  return count_offset::Parse(offset, "lines", "socket source");
}

// A partition is the line range "<from>,<to>".
bool ParseLineRange(const std::string& text, int64_t* from, int64_t* to) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto first = std::from_chars(begin, end, *from);
  if (first.ec != std::errc() || first.ptr == end || *first.ptr != ',') return false;
  auto second = std::from_chars(first.ptr + 1, end, *to);
  return second.ec == std::errc() && second.ptr == end && *from <= *to;
}

// Opens a TCP connection to host:port, trying every address the name has.
Result<int> ConnectTcp(const std::string& host, int64_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  const std::string where = host + ":" + std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &addresses);
  // "localhost" is loopback by definition (RFC 6761), even on a minimal
  // system without an /etc/hosts entry for it.
  if (rc != 0 && host == "localhost")
    rc = ::getaddrinfo("127.0.0.1", std::to_string(port).c_str(), &hints, &addresses);
  if (rc != 0) return Status::IOError("cannot resolve " + where + ": " + ::gai_strerror(rc));
  std::string last_error = "no address";
  int fd = -1;
  for (addrinfo* a = addresses; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    last_error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(addresses);
  if (fd < 0) return Status::IOError("cannot connect to " + where + ": " + last_error);
  return fd;
}

// Received lines, stored back to back in one string so that receiving a line
// allocates nothing beyond buffer growth. Line numbers are stream offsets:
// spans_[0] is line `first_line_`.
class LineBuffer {
 public:
  struct Span {
    size_t begin;
    size_t end;
    int64_t arrival_micros;
  };

  // Appends received bytes, completing lines at each '\n' ("\r\n" too).
  void Append(const char* data, size_t size, int64_t arrival_micros) {
    size_t scan_from = text_.size();
    text_.append(data, size);
    while (const void* found = std::memchr(text_.data() + scan_from, '\n', text_.size() - scan_from)) {
      const size_t newline = static_cast<size_t>(static_cast<const char*>(found) - text_.data());
      const size_t end = (newline > pending_begin_ && text_[newline - 1] == '\r') ? newline - 1 : newline;
      spans_.push_back({pending_begin_, end, arrival_micros});
      pending_begin_ = scan_from = newline + 1;
    }
  }

  // At end of stream an unterminated last line still counts.
  void FinishPartialLine(int64_t arrival_micros) {
    if (pending_begin_ < text_.size()) spans_.push_back({pending_begin_, text_.size(), arrival_micros});
    pending_begin_ = text_.size();
  }

  int64_t first_line() const { return first_line_; }
  int64_t end_line() const { return first_line_ + static_cast<int64_t>(spans_.size()); }
  std::string_view line(int64_t number) const {
    const Span& s = spans_[static_cast<size_t>(number - first_line_)];
    return std::string_view(text_).substr(s.begin, s.end - s.begin);
  }
  int64_t arrival_micros(int64_t number) const { return spans_[static_cast<size_t>(number - first_line_)].arrival_micros; }

  // Forgets lines before `number`.
  void DiscardBefore(int64_t number) {
    if (number <= first_line_) return;
    const size_t drop = static_cast<size_t>(std::min(number, end_line()) - first_line_);
    const size_t bytes = drop < spans_.size() ? spans_[drop].begin : pending_begin_;
    text_.erase(0, bytes);
    spans_.erase(spans_.begin(), spans_.begin() + static_cast<std::ptrdiff_t>(drop));
    for (auto& s : spans_) {
      s.begin -= bytes;
      s.end -= bytes;
    }
    pending_begin_ -= bytes;
    first_line_ += static_cast<int64_t>(drop);
  }

  // Renumbers the lines so the first one is `number` (a restarted source
  // continues after the offsets of the previous run).
  void Renumber(int64_t number) { first_line_ = number; }

 private:
  std::string text_;
  std::vector<Span> spans_;
  size_t pending_begin_ = 0;  // start of the line still being received
  int64_t first_line_ = 0;
};

class SocketSource final : public Source {
 public:
  static Status Validate(const Options& options) {
    const int64_t port = options.GetInt("port", 0);
    if (port < 1 || port > 65535)
      return Status::InvalidArgument("port: must be between 1 and 65535, got " + std::to_string(port));
    if (options.GetString("host", "localhost").empty()) return Status::InvalidArgument("host: must not be empty");
    if (options.GetInt("max_records_per_trigger", 0) < 0)
      return Status::InvalidArgument("max_records_per_trigger: must be 0 (no limit) or more");
    return Status::OK();
  }

  explicit SocketSource(const SourceContext& ctx)
      : host_(ctx.options.GetString("host", "localhost")),
        port_(ctx.options.GetInt("port", 0)),
        include_timestamp_(ctx.options.GetBool("include_timestamp", false)),
        max_records_per_trigger_(ctx.options.GetInt("max_records_per_trigger", 0)) {
    Status valid = Validate(ctx.options);
    if (!valid.ok()) throw std::invalid_argument(valid.message());
    std::vector<Field> fields{{"value", DataType::kString, true}};
    if (include_timestamp_) fields.push_back({"timestamp", DataType::kTimestamp, true});
    schema_ = std::make_shared<const Schema>(std::move(fields));
  }

  ~SocketSource() override { Stop(); }

  Schema schema() const override { return *schema_; }

  std::string Description() const override {
    return "TextSocket[" + host_ + ":" + std::to_string(port_) + ", not fault-tolerant]";
  }

  Result<std::optional<Offset>> LatestOffset(const std::optional<Offset>& start, ReadLimit limit) override {
    SLUICE_ASSIGN_OR_RETURN(int64_t start_line, ParseLinesOffset(start));
    SLUICE_RETURN_IF_ERROR(ConnectOnce());
    std::lock_guard<std::mutex> lock(mu_);
    if (!numbering_fixed_) {
      // The first offset this source hands out decides how lines are numbered.
      buffer_.Renumber(start_line);
      numbering_fixed_ = true;
    }
    const int64_t end_line = buffer_.end_line();
    if (start_line > end_line)
      return Status::Corruption("offset " + *start + " is beyond the " + std::to_string(end_line) +
                                " lines received from " + host_ + ":" + std::to_string(port_));
    if (end_line > start_line) {
      int64_t capped = end_line;
      if (limit == ReadLimit::kDefault && max_records_per_trigger_ > 0)
        capped = std::min(end_line, start_line + max_records_per_trigger_);
      return std::optional<Offset>(LinesOffset(capped));
    }
    if (!receive_error_.empty()) return Status::IOError(receive_error_);
    return start;
  }

  Result<std::vector<std::string>> PlanPartitions(const std::optional<Offset>& start, const Offset& end) override {
    SLUICE_ASSIGN_OR_RETURN(int64_t from, ParseLinesOffset(start));
    SLUICE_ASSIGN_OR_RETURN(int64_t to, ParseLinesOffset(end));
    if (from > to) return Status::InvalidArgument("batch starts at " + *start + " after its end " + end);
    if (from == to) return std::vector<std::string>{};
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!numbering_fixed_) {
        // Planned before this run handed out any offset: a batch of an earlier
        // run being replayed. Its lines were lost with that run; new lines are
        // numbered after it.
        buffer_.Renumber(to);
        numbering_fixed_ = true;
        return std::vector<std::string>{};
      }
      SLUICE_RETURN_IF_ERROR(CheckRetained(from, to));
    }
    return std::vector<std::string>{std::to_string(from) + "," + std::to_string(to)};
  }

  Status ReadPartition(const std::string& partition, ReadContext& ctx) override {
    int64_t from, to;
    if (!ParseLineRange(partition, &from, &to))
      return Status::InvalidArgument("'" + partition + "' is not a socket source partition");
    RecordBatchBuilder builder(schema_, std::min<int64_t>(to - from, kPreferredBatchRows));
    for (int64_t batch_from = from; batch_from < to; batch_from += kPreferredBatchRows) {
      const int64_t batch_to = std::min<int64_t>(to, batch_from + kPreferredBatchRows);
      {
        // Copy under the lock, emit outside it, so the reader thread is not
        // held up by the engine.
        std::lock_guard<std::mutex> lock(mu_);
        SLUICE_RETURN_IF_ERROR(CheckRetained(batch_from, batch_to));
        for (int64_t line = batch_from; line < batch_to; ++line) {
          builder.column(0).AppendString(buffer_.line(line));
          if (include_timestamp_) builder.column(1).AppendTimestamp(buffer_.arrival_micros(line));
        }
      }
      SLUICE_RETURN_IF_ERROR(ctx.Emit(builder.Finish()));
    }
    return Status::OK();
  }

  // Committed lines are never read again: free their memory.
  Status Commit(const Offset& end) override {
    SLUICE_ASSIGN_OR_RETURN(int64_t end_line, ParseLinesOffset(end));
    std::lock_guard<std::mutex> lock(mu_);
    if (numbering_fixed_) buffer_.DiscardBefore(end_line);  // else: an earlier run's batch
    return Status::OK();
  }

  void Stop() override {
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    stopped_ = true;
    if (fd_ < 0) return;
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);  // wakes the reader's blocking recv
    if (reader_.joinable()) reader_.join();
    ::close(fd_);
    fd_ = -1;
  }

 private:
  // Connects and starts the reader on the first call; later calls return the
  // first call's outcome, so a refused connection is not retried silently.
  Status ConnectOnce() {
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    if (connect_attempted_) return connect_status_;
    connect_attempted_ = true;
    if (stopped_) return connect_status_ = Status::Aborted("the socket source was stopped");
    Result<int> fd = ConnectTcp(host_, port_);
    if (!fd.ok()) return connect_status_ = fd.status();
    fd_ = *fd;
    reader_ = std::thread([this] { ReceiveLines(); });
    return Status::OK();
  }

  // Requires mu_.
  Status CheckRetained(int64_t from, int64_t to) const {
    if (from >= buffer_.first_line() && to <= buffer_.end_line()) return Status::OK();
    if (from < buffer_.first_line())
      return Status::NotFound("lines " + std::to_string(from) + " to " + std::to_string(to) + " from " + host_ + ":" +
                              std::to_string(port_) +
                              " are gone: they were committed or received before a restart, and the socket source "
                              "is not fault-tolerant");
    return Status::Internal("lines up to " + std::to_string(to) + " were requested but only " +
                            std::to_string(buffer_.end_line()) + " have been received");
  }

  void ReceiveLines() {
    std::vector<char> chunk(64 * 1024);
    while (true) {
      ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      const int64_t arrival = NowMicros();
      std::lock_guard<std::mutex> lock(mu_);
      if (n > 0) {
        buffer_.Append(chunk.data(), static_cast<size_t>(n), arrival);
        continue;
      }
      buffer_.FinishPartialLine(arrival);
      if (n < 0 && !stopping_)
        receive_error_ = "connection to " + host_ + ":" + std::to_string(port_) + " failed: " + std::strerror(errno);
      return;  // end of stream: the server closed the connection, or Stop()
    }
  }

  const std::string host_;
  const int64_t port_;
  const bool include_timestamp_;
  const int64_t max_records_per_trigger_;  // 0 = no limit
  SchemaPtr schema_;
  int fd_ = -1;
  std::thread reader_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;  // guards connecting and stopping
  bool connect_attempted_ = false;
  bool stopped_ = false;
  Status connect_status_;

  mutable std::mutex mu_;  // guards everything below
  LineBuffer buffer_;
  bool numbering_fixed_ = false;
  std::string receive_error_;
};

const OptionSpec kOptions[] = {
    {"host", OptionType::kString, "localhost", false, "server to connect to"},
    {"port", OptionType::kInt, nullptr, true, "TCP port of the server"},
    {"include_timestamp", OptionType::kBool, "false", false,
     "add a `timestamp TIMESTAMP` column holding each line's arrival time"},
    {"max_records_per_trigger", OptionType::kInt, "0", false,
     "most lines one micro-batch takes (0 = no limit); a trigger that reads everything at once ignores it"},
};

}  // namespace
}  // namespace sluice::socket_source

SLUICE_REGISTER_SOURCE("socket", SLUICE_VERSION_STRING, "Lines of text from a TCP server (not fault-tolerant: for demos and tests)",
                       sluice::socket_source::kOptions, sluice::socket_source::SocketSource)
