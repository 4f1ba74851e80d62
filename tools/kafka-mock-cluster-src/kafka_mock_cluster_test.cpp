// Tests of tools/kafka-mock-cluster as other processes use it: started as a
// subprocess, it prints its bootstrap servers, and kcat (a separate Kafka
// client) produces to and consumes from the topics it created.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

// The tool as a child process with a pipe on its stdin and stdout. Closing
// stdin (the destructor does) stops it when started with --until-stdin-closes.
class MockClusterProcess {
 public:
  explicit MockClusterProcess(const std::vector<std::string>& arguments) {
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(to_child[0], STDIN_FILENO);
      dup2(from_child[1], STDOUT_FILENO);
      std::vector<char*> argv{const_cast<char*>(KAFKA_MOCK_CLUSTER_BIN)};
      for (const auto& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    stdin_fd_ = to_child[1];
    stdout_ = fdopen(from_child[0], "r");
  }
  ~MockClusterProcess() {
    if (stdin_fd_ >= 0) close(stdin_fd_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    if (stdout_ != nullptr) fclose(stdout_);
  }

  // Blocks until the child prints a line (or exits): the tool's readiness signal.
  std::string ReadLine() {
    std::string line;
    for (int c; (c = fgetc(stdout_)) != EOF && c != '\n';) line.push_back(static_cast<char>(c));
    return line;
  }

  // Closes stdin and returns the exit status.
  int CloseStdinAndWait() {
    close(stdin_fd_);
    stdin_fd_ = -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  FILE* stdout_ = nullptr;
};

// Runs a shell command, feeding `input` to it, and returns its stdout.
std::string RunWithInput(const std::string& command, const std::string& input, int* exit_status) {
  std::string script = "printf '%s' '" + input + "' | " + command;
  FILE* p = popen(script.c_str(), "r");
  std::string out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), p)) > 0;) out.append(buffer, n);
  *exit_status = pclose(p);
  return out;
}

std::string BootstrapOf(const std::string& line) {
  const std::string prefix = "bootstrap.servers=";
  return line.rfind(prefix, 0) == 0 ? line.substr(prefix.size()) : "";
}

TEST(KafkaMockCluster, PrintsThreeBrokersAndServesKcat) {
  MockClusterProcess cluster({"--topic", "t:1", "--until-stdin-closes"});
  std::string line = cluster.ReadLine();
  std::string bootstrap = BootstrapOf(line);
  ASSERT_FALSE(bootstrap.empty()) << "first line: '" << line << "'";
  EXPECT_EQ(std::count(bootstrap.begin(), bootstrap.end(), ','), 2) << bootstrap;

  int status = 0;
  RunWithInput("kcat -b " + bootstrap + " -t t -P", "first\nsecond\nthird\n", &status);
  ASSERT_EQ(status, 0);
  // -e exits at the end of the partition: no waiting on time.
  std::string consumed = RunWithInput("kcat -b " + bootstrap + " -t t -C -e -q -o beginning", "", &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(consumed, "first\nsecond\nthird\n");

  EXPECT_EQ(cluster.CloseStdinAndWait(), 0) << "closing stdin stops the cluster cleanly";
}

TEST(KafkaMockCluster, CreatesTopicsWithTheirPartitionCounts) {
  MockClusterProcess cluster({"--brokers", "1", "--topic", "a:3", "--topic", "b:2", "--until-stdin-closes"});
  std::string bootstrap = BootstrapOf(cluster.ReadLine());
  ASSERT_FALSE(bootstrap.empty());
  EXPECT_EQ(bootstrap.find(','), std::string::npos) << "one broker: " << bootstrap;
  int status = 0;
  std::string metadata = RunWithInput("kcat -b " + bootstrap + " -L -J", "", &status);
  ASSERT_EQ(status, 0);
  // kcat -L -J lists each topic with its partitions.
  auto partitions_of = [&](const std::string& topic) {
    size_t at = metadata.find("\"topic\":\"" + topic + "\"");
    if (at == std::string::npos) return -1;
    size_t end = metadata.find("\"topic\":", at + 1);
    std::string section = metadata.substr(at, end == std::string::npos ? std::string::npos : end - at);
    int n = 0;
    for (size_t p = 0; (p = section.find("\"partition\":", p)) != std::string::npos; ++p) ++n;
    return n;
  };
  EXPECT_EQ(partitions_of("a"), 3) << metadata;
  EXPECT_EQ(partitions_of("b"), 2) << metadata;
}

TEST(KafkaMockCluster, StopsOnSigterm) {
  MockClusterProcess cluster({"--brokers", "1"});
  ASSERT_FALSE(BootstrapOf(cluster.ReadLine()).empty());
  kill(cluster.pid(), SIGTERM);
  int status = 0;
  waitpid(cluster.pid(), &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(KafkaMockCluster, RejectsABadTopicArgument) {
  int status = 0;
  RunWithInput(std::string(KAFKA_MOCK_CLUSTER_BIN) + " --topic t:zero 2>/dev/null", "", &status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
