// kafka-mock-cluster: runs librdkafka's in-process mock Kafka cluster as a
// standalone broker for tests, benchmarks and people. It serves real Kafka
// clients (kcat, librdkafka, sluice's plugins) over TCP on loopback for as long
// as this process lives.
//
//   kafka-mock-cluster [--brokers N] [--topic NAME:PARTITIONS]... [--until-stdin-closes]
//
// Prints exactly one line, `bootstrap.servers=<host:port,...>`, once the
// cluster and its topics exist, then waits for SIGINT or SIGTERM (or for stdin
// to close with --until-stdin-closes, so a test that dies never leaks a broker).
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct TopicRequest {
  std::string name;
  int partitions = 1;
};

struct Settings {
  int brokers = 3;
  std::vector<TopicRequest> topics;
  bool until_stdin_closes = false;
};

[[noreturn]] void Usage(const std::string& error) {
  if (!error.empty()) std::fprintf(stderr, "kafka-mock-cluster: %s\n", error.c_str());
  std::fprintf(stderr,
               "usage: kafka-mock-cluster [--brokers N] [--topic NAME:PARTITIONS]... [--until-stdin-closes]\n"
               "  Starts librdkafka's mock Kafka cluster (3 brokers by default), creates the topics,\n"
               "  prints `bootstrap.servers=<host:port,...>` and serves until SIGINT/SIGTERM.\n");
  std::exit(2);
}

bool ParsePositiveInt(const std::string& text, int* out) {
  if (text.empty() || text.size() > 6) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  *out = std::atoi(text.c_str());
  return *out > 0;
}

Settings ParseArguments(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next_value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--brokers") {
      std::string value = next_value();
      if (!ParsePositiveInt(value, &settings.brokers)) Usage("--brokers: '" + value + "' is not a positive number");
    } else if (arg == "--topic") {
      std::string value = next_value();
      TopicRequest topic;
      size_t colon = value.rfind(':');
      topic.name = value.substr(0, colon);
      if (colon != std::string::npos && !ParsePositiveInt(value.substr(colon + 1), &topic.partitions))
        Usage("--topic: '" + value + "' is not NAME:PARTITIONS with a positive partition count");
      if (topic.name.empty()) Usage("--topic: '" + value + "' has no topic name");
      settings.topics.push_back(topic);
    } else if (arg == "--until-stdin-closes") {
      settings.until_stdin_closes = true;
    } else if (arg == "-h" || arg == "--help") {
      Usage("");
    } else {
      Usage("unknown argument '" + arg + "'");
    }
  }
  return settings;
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings = ParseArguments(argc, argv);

  // Block the stop signals before librdkafka starts its threads, so they all
  // inherit the mask and only sigwait below ever receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // The mock cluster lives inside a client instance; this one does nothing else.
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof(error));
  rd_kafka_t* host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (host == nullptr) {
    std::fprintf(stderr, "kafka-mock-cluster: cannot create a librdkafka client: %s\n", error);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(host, settings.brokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "kafka-mock-cluster: cannot start a mock cluster of %d brokers\n", settings.brokers);
    return 1;
  }
  const int replication = settings.brokers < 3 ? settings.brokers : 3;
  for (const TopicRequest& topic : settings.topics) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, topic.name.c_str(), topic.partitions, replication);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "kafka-mock-cluster: cannot create topic '%s': %s\n", topic.name.c_str(),
                   rd_kafka_err2str(err));
      return 1;
    }
  }

  std::printf("bootstrap.servers=%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  std::fflush(stdout);

  if (settings.until_stdin_closes) {
    // Turns end of input into the same stop signal sigwait is waiting for.
    std::thread([] {
      char buffer[256];
      while (read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
      }
      kill(getpid(), SIGTERM);
    }).detach();
  }
  int received = 0;
  sigwait(&stop_signals, &received);

  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(host);
  return 0;
}
