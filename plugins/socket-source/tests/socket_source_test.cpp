// Tests of the "socket" source through its shared library, against a plain
// POSIX listening socket on the loopback interface. Lines are awaited by
// polling LatestOffset against a deadline, never by a fixed sleep.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::MakeSource;
using testing::ReadRange;
using testing::ToJsonLines;
using Lines = std::vector<std::string>;

// A one-connection-at-a-time TCP server on 127.0.0.1 and an ephemeral port.
class TestServer {
 public:
  TestServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~TestServer() {
    CloseConnection();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  int64_t port() const { return port_; }
  // Stops listening, so that connecting to port() is refused.
  void CloseListener() {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  // Takes the next connection; a client that connected already is waiting.
  void Accept() {
    CloseConnection();
    connection_fd_ = ::accept(listen_fd_, nullptr, nullptr);
    ASSERT_GE(connection_fd_, 0);
  }
  void Send(const std::string& text) {
    size_t sent = 0;
    while (sent < text.size()) {
      ssize_t n = ::send(connection_fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      ASSERT_GT(n, 0);
      sent += static_cast<size_t>(n);
    }
  }
  void CloseConnection() {
    if (connection_fd_ >= 0) ::close(connection_fd_);
    connection_fd_ = -1;
  }
  // True once the client has closed its end, within `timeout`.
  bool SeesClientClose(std::chrono::milliseconds timeout) {
    pollfd p{connection_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    char byte;
    return ::recv(connection_fd_, &byte, 1, 0) == 0;
  }

 private:
  int listen_fd_ = -1;
  int connection_fd_ = -1;
  int64_t port_ = 0;
};

Offset LinesOffset(int64_t n) { return "{\"lines\":" + std::to_string(n) + "}"; }

std::shared_ptr<Source> Connect(const TestServer& server, std::map<std::string, OptionValue> options = {}) {
  options["port"] = server.port();
  auto source = MakeSource("socket", options);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  return source.ok() ? *source : nullptr;
}

// Makes the source connect (it does so at its first LatestOffset) and takes
// the connection on the server's side.
void ConnectAndAccept(Source& source, TestServer& server) {
  auto first = source.LatestOffset(std::nullopt, ReadLimit::kDefault);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  server.Accept();
}

// Polls LatestOffset until it reports `expected` lines, or the deadline.
bool AwaitLines(Source& source, const std::optional<Offset>& start, int64_t expected) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto latest = source.LatestOffset(start, ReadLimit::kDefault);
    if (!latest.ok()) {
      ADD_FAILURE() << latest.status().ToString();
      return false;
    }
    if (*latest == LinesOffset(expected)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

Lines ReadRows(Source& source, const std::optional<Offset>& start, const Offset& end) {
  auto batches = ReadRange(source, start, end);
  EXPECT_TRUE(batches.ok()) << batches.status().ToString();
  return batches.ok() ? ToJsonLines(*batches) : Lines{};
}

TEST(SocketSource, LinesArriveInOrderAcrossPackets) {
  TestServer server;
  auto source = Connect(server);  // host defaults to localhost
  ASSERT_TRUE(source);
  EXPECT_EQ(source->schema().ToString(), "value STRING");
  EXPECT_EQ(source->Description(), "TextSocket[localhost:" + std::to_string(server.port()) + ", not fault-tolerant]");
  ConnectAndAccept(*source, server);

  server.Send("hello\nwor");
  server.Send("ld\r\n\nthird\n");
  ASSERT_TRUE(AwaitLines(*source, std::nullopt, 4));
  EXPECT_EQ(ReadRows(*source, std::nullopt, LinesOffset(4)),
            (Lines{R"({"value":"hello"})", R"({"value":"world"})", R"({"value":""})", R"({"value":"third"})"}));

  // An unterminated last line counts once the server closes the connection.
  server.Send("tail");
  server.CloseConnection();
  ASSERT_TRUE(AwaitLines(*source, LinesOffset(4), 5));
  EXPECT_EQ(ReadRows(*source, LinesOffset(4), LinesOffset(5)), (Lines{R"({"value":"tail"})"}));
  auto idle = source->LatestOffset(LinesOffset(5), ReadLimit::kDefault);
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(*idle, LinesOffset(5)) << "a closed stream has nothing new";
}

TEST(SocketSource, MaxRecordsPerTriggerCapsEachBatch) {
  TestServer server;
  auto made = MakeSource("socket", {{"port", static_cast<int64_t>(server.port())}, {"max_records_per_trigger", int64_t{2}}});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto source = *made;
  ConnectAndAccept(*source, server);
  server.Send("a\nb\nc\nd\ne\n");
  ASSERT_TRUE(testing::WaitUntil([&] {  // all five have arrived
    auto all = source->LatestOffset(std::nullopt, ReadLimit::kAll);
    return all.ok() && *all == LinesOffset(5);
  }));
  EXPECT_EQ(*source->LatestOffset(std::nullopt, ReadLimit::kDefault), LinesOffset(2));
  EXPECT_EQ(*source->LatestOffset(LinesOffset(2), ReadLimit::kDefault), LinesOffset(4));
  EXPECT_EQ(*source->LatestOffset(LinesOffset(4), ReadLimit::kDefault), LinesOffset(5));
  EXPECT_EQ(*source->LatestOffset(std::nullopt, ReadLimit::kAll), LinesOffset(5));
  EXPECT_EQ(ReadRows(*source, LinesOffset(2), LinesOffset(4)), (Lines{R"({"value":"c"})", R"({"value":"d"})"}));
}

TEST(SocketSource, IncludeTimestampRecordsArrivalTime) {
  TestServer server;
  auto source = Connect(server, {{"host", std::string("127.0.0.1")}, {"include_timestamp", true}});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->schema().ToString(), "value STRING, timestamp TIMESTAMP");
  ConnectAndAccept(*source, server);
  const int64_t before = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  server.Send("a\nb\n");
  ASSERT_TRUE(AwaitLines(*source, std::nullopt, 2));
  const int64_t after = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  auto batches = ReadRange(*source, std::nullopt, LinesOffset(2));
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 1u);
  const RecordBatch& batch = *(*batches)[0];
  ASSERT_EQ(batch.num_rows(), 2);
  EXPECT_EQ(batch.column(0).string_at(0), "a");
  EXPECT_EQ(batch.column(0).string_at(1), "b");
  for (int64_t r = 0; r < 2; ++r) {
    EXPECT_GE(batch.column(1).int64_at(r), before);
    EXPECT_LE(batch.column(1).int64_at(r), after);
  }
}

TEST(SocketSource, CommitDiscardsLinesBeforeTheOffset) {
  TestServer server;
  auto source = Connect(server, {{"host", std::string("127.0.0.1")}});
  ASSERT_TRUE(source);
  ConnectAndAccept(*source, server);
  server.Send("one\ntwo\nthree\n");
  ASSERT_TRUE(AwaitLines(*source, std::nullopt, 3));
  ASSERT_TRUE(source->Commit(LinesOffset(2)).ok());
  auto gone = ReadRange(*source, std::nullopt, LinesOffset(2));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("not fault-tolerant"), std::string::npos) << gone.status().ToString();
  EXPECT_EQ(ReadRows(*source, LinesOffset(2), LinesOffset(3)), (Lines{R"({"value":"three"})"}));
  server.Send("four\n");
  ASSERT_TRUE(AwaitLines(*source, LinesOffset(3), 4));
  EXPECT_EQ(ReadRows(*source, LinesOffset(3), LinesOffset(4)), (Lines{R"({"value":"four"})"}));
}

TEST(SocketSource, ManyLinesAreEmittedInPreferredBatches) {
  TestServer server;
  auto source = Connect(server, {{"host", std::string("127.0.0.1")}});
  ASSERT_TRUE(source);
  ConnectAndAccept(*source, server);
  const int64_t lines = kPreferredBatchRows + 7;
  std::string text;
  for (int64_t i = 0; i < lines; ++i) text += "line " + std::to_string(i) + "\n";
  server.Send(text);
  ASSERT_TRUE(AwaitLines(*source, std::nullopt, lines));
  auto batches = ReadRange(*source, std::nullopt, LinesOffset(lines));
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_EQ((*batches)[0]->num_rows(), kPreferredBatchRows);
  EXPECT_EQ((*batches)[0]->column(0).string_at(0), "line 0");
  EXPECT_EQ((*batches)[1]->num_rows(), 7);
  EXPECT_EQ((*batches)[1]->column(0).string_at(6), "line " + std::to_string(lines - 1));
}

TEST(SocketSource, RestartedSourceNumbersLinesAfterTheGivenOffset) {
  TestServer server;
  {
    // A replayed batch of an earlier run: its lines are lost, it reads nothing.
    auto replaying = Connect(server, {{"host", std::string("127.0.0.1")}});
    ASSERT_TRUE(replaying);
    auto parts = replaying->PlanPartitions(std::nullopt, LinesOffset(5));
    ASSERT_TRUE(parts.ok());
    EXPECT_TRUE(parts->empty());
    auto idle = replaying->LatestOffset(LinesOffset(5), ReadLimit::kDefault);
    ASSERT_TRUE(idle.ok());
    EXPECT_EQ(*idle, LinesOffset(5));
    server.Accept();
    server.Send("early\n");
    ASSERT_TRUE(AwaitLines(*replaying, LinesOffset(5), 6));
    EXPECT_EQ(ReadRows(*replaying, LinesOffset(5), LinesOffset(6)), (Lines{R"({"value":"early"})"}));
  }
  auto resumed = Connect(server, {{"host", std::string("127.0.0.1")}});
  ASSERT_TRUE(resumed);
  auto idle = resumed->LatestOffset(LinesOffset(6), ReadLimit::kDefault);
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(*idle, LinesOffset(6));
  server.Accept();
  server.Send("x\n");
  ASSERT_TRUE(AwaitLines(*resumed, LinesOffset(6), 7));
  EXPECT_EQ(ReadRows(*resumed, LinesOffset(6), LinesOffset(7)), (Lines{R"({"value":"x"})"}));
}

TEST(SocketSource, StopClosesTheConnectionAndIsIdempotent) {
  TestServer server;
  auto source = Connect(server, {{"host", std::string("127.0.0.1")}});
  ASSERT_TRUE(source);
  ConnectAndAccept(*source, server);
  source->Stop();
  EXPECT_TRUE(server.SeesClientClose(std::chrono::seconds(10)));
  source->Stop();
}

TEST(SocketSource, ConnectsAtTheFirstLatestOffsetAndReportsRefusal) {
  TestServer server;
  const int64_t port = server.port();
  server.CloseListener();
  // Creating the source (as `sluice validate` does) opens no connection.
  auto source = MakeSource("socket", {{"host", std::string("127.0.0.1")}, {"port", port}});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto latest = (*source)->LatestOffset(std::nullopt, ReadLimit::kDefault);
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), StatusCode::kIOError);
  EXPECT_EQ(latest.status().message(), "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
  auto again = (*source)->LatestOffset(std::nullopt, ReadLimit::kDefault);
  EXPECT_EQ(again.status().message(), latest.status().message());
}

TEST(SocketSource, PortIsRequiredAndChecked) {
  auto missing = MakeSource("socket", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing required option 'port'"), std::string::npos);
  auto zero = MakeSource("socket", {{"port", int64_t{0}}});
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("port: must be between 1 and 65535, got 0"), std::string::npos)
      << zero.status().ToString();
}

}  // namespace
}  // namespace sluice
