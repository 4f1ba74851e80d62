// kafka-eos-check: the random kill -9 test of the kafka sink's exactly_once
// guarantee, run against a Kafka cluster the user names. It creates uniquely
// named input, output and marker topics, produces numbered records, runs a
// Kafka -> Kafka sluice pipeline with guarantee = "exactly_once", kills it
// with SIGKILL at random instants (adding input before each restart), runs it
// to the end, then reads the output with isolation.level=read_committed and
// prints
//   expected E, seen S, missing M, duplicated D
// exiting 0 only when M = D = 0. Usage: see Usage() below or --help.
//
// On a real broker the read_committed consumer alone decides what is seen:
// aborted and abandoned transactions are hidden by the broker, so this is the
// proof for users. librdkafka's mock cluster does not hide them; with
// --broker-shows-aborted-transactions the tool then counts only records of
// attempts the sink's commit file shows committed (the correction of
// tests/kafka_pipeline_test.cpp, explained at FilterToCommittedAttempts).
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr int kTimeoutMs = 30000;

struct Settings {
  std::string bootstrap_servers;
  int kills = 30;
  int records = 10000;
  unsigned seed = 0;
  bool seed_given = false;
  int partitions = 3;
  int replication_factor = -1;  // the broker's default
  int max_kill_delay_ms = 1000;
  int max_offsets_per_trigger = 100;
  bool create_topics_with_admin = true;
  bool broker_shows_aborted = false;
  std::string sluice_bin, plugin_dir, work_dir;
  std::vector<std::pair<std::string, std::string>> properties;  // --property
};

[[noreturn]] void Usage(const std::string& error) {
  if (!error.empty()) std::fprintf(stderr, "kafka-eos-check: %s\n", error.c_str());
  std::fprintf(error.empty() ? stdout : stderr, R"(usage: kafka-eos-check --bootstrap-servers HOST:PORT [options]

Checks sluice's exactly-once Kafka sink against a cluster: creates fresh
topics sluice-eos-check-<time>-<pid>-{input,output,markers}, produces
--records numbered records in chunks, runs a Kafka -> Kafka pipeline with
guarantee = "exactly_once" and kills it with SIGKILL at random instants
--kills times (restarting each time, a new chunk of input before each
restart), runs it to the end, then reads the output topic with
isolation.level=read_committed and prints
    expected E, seen S, missing M, duplicated D
Exit status 0 only when M = D = 0; 1 when records are missing or duplicated;
2 for a bad command line; 3 when the cluster or a run fails. The topics are
left in place for inspection (delete them with your usual tools).

  --kills N                  kill -9 this many runs (default 30)
  --records N                numbered input records in all (default 10000)
  --seed S                   seed of the kill instants and chunk sizes (default: from the clock; printed)
  --partitions N             partitions of the input and output topics (default 3)
  --replication-factor N     of the new topics (default -1: the broker's default)
  --max-kill-delay-ms N      a kill lands uniformly in [0, N] ms after a start (default 1000)
  --max-offsets-per-trigger N  batch size of the pipeline (default 100)
  --create-topics admin|auto  admin (default): CreateTopics, falling back to
                             auto-creation when the broker does not answer it;
                             auto: only the broker's auto-creation (librdkafka's
                             mock cluster, which lacks CreateTopics; its topics
                             get its default partition count)
  --property KEY=VALUE       a librdkafka property for every client, the
                             pipeline's source and sink included (security.protocol,
                             sasl.*, ssl.*); repeatable
  --sluice PATH              the sluice binary (default: this build's framework/sluice)
  --plugin-dir DIR           sluice plugins (default: this build's plugins/)
  --work-dir DIR             pipeline, checkpoint and logs (default: a new directory under $TMPDIR, kept)
  --broker-shows-aborted-transactions
      For librdkafka's mock cluster only. A real broker hides records of
      aborted and abandoned transactions from read_committed consumers; the
      mock shows them, so a killed run's uncommitted records would count as
      duplicates. With this flag the tool counts only the records of attempts
      that the sink's commit file (<checkpoint>/sinks/out/kafka-sink-commits.json,
      read after each run) shows committed, as the suite's tests do. The
      result then proves the engine and the sink's recovery, not the broker.
      Without the flag on such a broker, only "missing 0" means anything; the
      tool detects such a broker (an aborted probe transaction stays visible)
      and says so.
)");
  std::exit(error.empty() ? 0 : 2);
}

int PositiveInt(const std::string& flag, const std::string& text, bool allow_zero = false) {
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < (allow_zero ? 0 : 1) || value > 100000000)
    Usage(flag + ": '" + text + "' is not a " + (allow_zero ? "non-negative" : "positive") + " number");
  return static_cast<int>(value);
}

Settings ParseArguments(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--bootstrap-servers") s.bootstrap_servers = value();
    else if (arg == "--kills") s.kills = PositiveInt(arg, value(), true);
    else if (arg == "--records") s.records = PositiveInt(arg, value());
    else if (arg == "--seed") s.seed = static_cast<unsigned>(PositiveInt(arg, value(), true)), s.seed_given = true;
    else if (arg == "--partitions") s.partitions = PositiveInt(arg, value());
    else if (arg == "--replication-factor") {
      const std::string text = value();
      s.replication_factor = text == "-1" ? -1 : PositiveInt(arg, text);
    } else if (arg == "--max-kill-delay-ms") s.max_kill_delay_ms = PositiveInt(arg, value());
    else if (arg == "--max-offsets-per-trigger") s.max_offsets_per_trigger = PositiveInt(arg, value());
    else if (arg == "--property") {
      const std::string text = value();
      const size_t eq = text.find('=');
      if (eq == std::string::npos || eq == 0) Usage("--property: '" + text + "' is not KEY=VALUE");
      s.properties.emplace_back(text.substr(0, eq), text.substr(eq + 1));
    } else if (arg == "--sluice") s.sluice_bin = value();
    else if (arg == "--plugin-dir") s.plugin_dir = value();
    else if (arg == "--work-dir") s.work_dir = value();
    else if (arg == "--broker-shows-aborted-transactions") s.broker_shows_aborted = true;
    else if (arg == "--create-topics") {
      const std::string how = value();
      if (how != "admin" && how != "auto") Usage("--create-topics: '" + how + "' is neither admin nor auto");
      s.create_topics_with_admin = how == "admin";
    }
    else if (arg == "-h" || arg == "--help") Usage("");
    else Usage("unknown argument '" + arg + "'");
  }
  if (s.bootstrap_servers.empty()) Usage("--bootstrap-servers is required");
  if (!s.seed_given)
    s.seed = static_cast<unsigned>(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
  // This binary lives in <build>/tools/kafka-eos-check-src/.
  const fs::path build = fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path();
  if (s.sluice_bin.empty()) s.sluice_bin = (build / "framework/sluice").string();
  if (s.plugin_dir.empty()) s.plugin_dir = (build / "plugins").string();
  return s;
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "kafka-eos-check: %s\n", message.c_str());
  std::exit(3);
}

// ---- Kafka clients ------------------------------------------------------------

using Properties = std::vector<std::pair<std::string, std::string>>;

void DeliveryReport(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  if (message->err) *static_cast<std::string*>(opaque) = rd_kafka_err2str(message->err);
}

// A client with the user's properties and `extra`; a producer given
// `delivery_error` stores there the error of any failed delivery.
rd_kafka_t* NewClient(rd_kafka_type_t type, const Settings& s, const Properties& extra,
                      std::string* delivery_error = nullptr) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Properties all = {{"bootstrap.servers", s.bootstrap_servers}, {"log_level", "3"}};
  all.insert(all.end(), s.properties.begin(), s.properties.end());
  all.insert(all.end(), extra.begin(), extra.end());
  for (const auto& [key, value] : all)
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof error) != RD_KAFKA_CONF_OK)
      Fail("property " + key + ": " + error);
  if (delivery_error) {
    rd_kafka_conf_set_dr_msg_cb(conf, DeliveryReport);
    rd_kafka_conf_set_opaque(conf, delivery_error);
  }
  rd_kafka_t* client = rd_kafka_new(type, conf, error, sizeof error);
  if (!client) Fail(std::string("cannot create a Kafka client: ") + error);
  return client;
}

// Partitions of `topic`, once the broker reports it (a producer's metadata
// request also makes a broker with auto-creation create it); 0 on timeout.
int PartitionCount(rd_kafka_t* client, const std::string& topic) {
  rd_kafka_topic_t* handle = rd_kafka_topic_new(client, topic.c_str(), nullptr);
  int partitions = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  while (partitions == 0 && std::chrono::steady_clock::now() < deadline) {
    const rd_kafka_metadata_t* metadata = nullptr;
    if (rd_kafka_metadata(client, 0, handle, &metadata, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        partitions = metadata->topics[0].partition_cnt;
      rd_kafka_metadata_destroy(metadata);
    }
    if (partitions == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  rd_kafka_topic_destroy(handle);
  return partitions;
}

// Creates the topics with CreateTopics, or with `use_admin` false (or when
// the broker does not answer CreateTopics, as librdkafka's mock cluster)
// relies on the broker's auto-creation. Returns each topic's partition count
// as the broker reports it.
std::vector<int> CreateTopics(const Settings& s, const std::vector<std::pair<std::string, int>>& topics,
                              bool use_admin) {
  rd_kafka_t* admin = NewClient(RD_KAFKA_PRODUCER, s, {});
  if (use_admin) {
    std::vector<rd_kafka_NewTopic_t*> requests;
    char error[512];
    for (const auto& [name, partitions] : topics) {
      rd_kafka_NewTopic_t* topic =
          rd_kafka_NewTopic_new(name.c_str(), partitions, s.replication_factor, error, sizeof error);
      if (!topic) Fail("topic " + name + ": " + error);
      requests.push_back(topic);
    }
    rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(admin, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(options, 10000, error, sizeof error);
    rd_kafka_AdminOptions_set_operation_timeout(options, 10000, error, sizeof error);
    rd_kafka_queue_t* queue = rd_kafka_queue_new(admin);
    rd_kafka_CreateTopics(admin, requests.data(), requests.size(), options, queue);
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 20000);
    if (!event) {
      std::fprintf(stderr, "kafka-eos-check: CreateTopics got no answer; relying on auto-creation\n");
    } else if (rd_kafka_event_error(event)) {
      std::fprintf(stderr, "kafka-eos-check: CreateTopics failed (%s); relying on auto-creation\n",
                   rd_kafka_event_error_string(event));
    } else {
      size_t count = 0;
      const rd_kafka_topic_result_t** results =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
      for (size_t i = 0; i < count; ++i)
        if (rd_kafka_topic_result_error(results[i]))
          Fail(std::string("cannot create topic ") + rd_kafka_topic_result_name(results[i]) + ": " +
               rd_kafka_topic_result_error_string(results[i]));
    }
    if (event) rd_kafka_event_destroy(event);
    for (auto* topic : requests) rd_kafka_NewTopic_destroy(topic);
    rd_kafka_queue_destroy(queue);
    rd_kafka_AdminOptions_destroy(options);
  }
  std::vector<int> partition_counts;
  for (const auto& [name, wanted] : topics) {
    const int partitions = PartitionCount(admin, name);
    if (partitions == 0) Fail("topic " + name + " does not exist and the broker did not create it");
    partition_counts.push_back(partitions);
  }
  rd_kafka_destroy(admin);
  return partition_counts;
}

void CheckError(rd_kafka_error_t* error, const std::string& what) {
  if (!error) return;
  const std::string message = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  Fail(what + ": " + message);
}

struct ConsumedRecord {
  int partition;
  int64_t offset;
  std::string value;
};

// Every record of `topic` (partitions 0..partitions-1) visible to a consumer
// with `isolation_level`, read from the beginning to the end.
std::vector<ConsumedRecord> ReadTopic(const Settings& s, const std::string& topic, int partitions,
                                      const std::string& isolation_level) {
  rd_kafka_t* consumer = NewClient(RD_KAFKA_CONSUMER, s,
                                   {{"group.id", "sluice-eos-check-reader"}, {"enable.auto.commit", "false"},
                                    {"enable.partition.eof", "true"}, {"isolation.level", isolation_level}});
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(assignment, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  if (rd_kafka_assign(consumer, assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) Fail("cannot assign " + topic);
  rd_kafka_topic_partition_list_destroy(assignment);
  std::vector<ConsumedRecord> records;
  std::vector<bool> at_end(static_cast<size_t>(partitions), false);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs * 4);
  while (std::count(at_end.begin(), at_end.end(), true) < partitions) {
    if (std::chrono::steady_clock::now() > deadline) Fail("reading " + topic + " timed out");
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer, 500);
    if (!message) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end[static_cast<size_t>(message->partition)] = true;
    } else if (message->err) {
      Fail("reading " + topic + ": " + rd_kafka_message_errstr(message));
    } else {
      // A late record after EOF: that partition is not at its end after all.
      at_end[static_cast<size_t>(message->partition)] = false;
      records.push_back({message->partition, message->offset,
                         std::string(static_cast<const char*>(message->payload), message->len)});
    }
    rd_kafka_message_destroy(message);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return records;
}

// The end offset (high watermark) of each partition of `topic`.
std::vector<int64_t> EndOffsets(rd_kafka_t* client, const std::string& topic, int partitions) {
  std::vector<int64_t> ends;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    const rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(client, topic.c_str(), p, &low, &high, kTimeoutMs);
    if (err) Fail("end offset of " + topic + " [" + std::to_string(p) + "]: " + rd_kafka_err2str(err));
    ends.push_back(high);
  }
  return ends;
}

// Produces records number [first, first + count), keys "k<n>", values "r<n>".
void ProduceNumbers(rd_kafka_t* producer, const std::string& topic, int first, int count, std::string& delivery_error) {
  for (int n = first; n < first + count; ++n) {
    char value[24], key[24];
    std::snprintf(value, sizeof value, "r%09d", n);
    std::snprintf(key, sizeof key, "k%d", n);
    while (true) {
      const rd_kafka_resp_err_t err = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key, std::strlen(key)),
          RD_KAFKA_V_VALUE(value, std::strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(producer, 100);
        continue;
      }
      if (err) Fail("producing to " + topic + ": " + rd_kafka_err2str(err));
      break;
    }
  }
  if (rd_kafka_flush(producer, kTimeoutMs * 4) != RD_KAFKA_RESP_ERR_NO_ERROR) Fail("flushing input timed out");
  if (!delivery_error.empty()) Fail("input delivery failed: " + delivery_error);
}

// Whether a read_committed consumer sees a record of an aborted transaction:
// true on librdkafka's mock cluster, false on Kafka.
bool BrokerShowsAbortedTransactions(const Settings& s, const std::string& topic, int partitions,
                                    const std::string& transactional_id) {
  rd_kafka_t* producer = NewClient(RD_KAFKA_PRODUCER, s, {{"transactional.id", transactional_id}});
  CheckError(rd_kafka_init_transactions(producer, kTimeoutMs), "probe init_transactions");
  CheckError(rd_kafka_begin_transaction(producer), "probe begin_transaction");
  const std::string value = "{\"probe\":\"kafka-eos-check\"}";
  if (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
    Fail("probe produce failed");
  rd_kafka_flush(producer, kTimeoutMs);
  CheckError(rd_kafka_abort_transaction(producer, kTimeoutMs), "probe abort_transaction");
  rd_kafka_destroy(producer);
  for (const auto& record : ReadTopic(s, topic, partitions, "read_committed"))
    if (record.value == value) return true;
  return false;
}

// ---- the pipeline runs -----------------------------------------------------------

std::string ReadWholeFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// One `sluice run`: where the output and marker topics ended after it, and
// the batch the sink's commit file recorded as committed.
struct RunOutcome {
  int exit_code = 0;
  std::vector<int64_t> output_ends;
  std::optional<int64_t> sink_committed_through;
};

std::string PipelineToml(const Settings& s, const std::string& input, const std::string& output,
                         const std::string& markers) {
  std::string client_properties = "\"kafka.bootstrap.servers\" = \"" + s.bootstrap_servers + "\"\n";
  for (const auto& [key, value] : s.properties) client_properties += "\"kafka." + key + "\" = \"" + value + "\"\n";
  return "# Written by kafka-eos-check.\n[pipeline]\nname = \"kafka-eos-check\"\ntrigger = \"available_now\"\n"
         "checkpoint = \"checkpoint\"\n# every batch's offsets stay readable for the mock correction\n"
         "min_batches_to_retain = 1000000\n\n"
         "[sources.numbers]\ntype = \"kafka\"\n" + client_properties + "subscribe = \"" + input + "\"\n"
         "startingOffsets = \"earliest\"\nmaxOffsetsPerTrigger = " + std::to_string(s.max_offsets_per_trigger) + "\n\n"
         "[[steps]]\nname = \"tagged\"\ninput = \"numbers\"\n"
         "select = [\"CAST(key AS STRING) AS key\", \"concat(CAST(value AS STRING), ' ', CAST(partition AS STRING), "
         "':', CAST(offset AS STRING)) AS value\"]\n\n"
         "[sinks.out]\ntype = \"kafka\"\ninput = \"tagged\"\n" + client_properties + "topic = \"" + output + "\"\n"
         "guarantee = \"exactly_once\"\nexactly_once_marker_topic = \"" + markers + "\"\n";
}

pid_t StartSluice(const Settings& s, const fs::path& pipeline, const fs::path& log) {
  std::fflush(nullptr);  // or the child's freopen writes our buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!std::freopen(log.c_str(), "a", stderr)) ::_exit(126);
    if (!std::freopen("/dev/null", "w", stdout)) ::_exit(126);
    ::execl(s.sluice_bin.c_str(), "sluice", "--plugin-dir", s.plugin_dir.c_str(), "--log-level", "warn", "run",
            pipeline.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (pid < 0) Fail("fork failed");
  return pid;
}

int WaitFor(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::optional<int64_t> SinkCommittedThrough(const fs::path& commit_file) {
  static const std::regex committed(R"re("committedBatchId":(-?\d+))re");
  std::smatch match;
  const std::string text = ReadWholeFile(commit_file);
  if (std::regex_search(text, match, committed)) return std::stoll(match[1]);
  return std::nullopt;
}

// Per batch, the end offset (exclusive) of each input partition, from the
// checkpoint's offset log.
std::map<int64_t, std::map<int, int64_t>> BatchEnds(const fs::path& offsets_dir) {
  static const std::regex partition_end(R"re("(\d+)":(\d+))re");
  std::map<int64_t, std::map<int, int64_t>> ends;
  for (const auto& entry : fs::directory_iterator(offsets_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::istringstream lines(ReadWholeFile(entry.path()));
    std::string line, offsets_line;
    for (int i = 0; i < 3 && std::getline(lines, line); ++i) offsets_line = line;
    for (std::sregex_iterator it(offsets_line.begin(), offsets_line.end(), partition_end), end; it != end; ++it)
      ends[std::stoll(name)][std::stoi((*it)[1])] = std::stoll((*it)[2]);
  }
  return ends;
}

// The mock correction. Every run of sluice runs alone, so the output records
// at offsets [end after run k-1, end after run k) of a partition are run k's.
// Each record names its input partition and offset, which the offset log maps
// to a batch. Run k's attempt of batch b committed iff b <= the
// "committedBatchId" of the sink's commit file read right after run k: the
// sink writes it only after commit_transaction returned, and records
// "attempting b" before it begins b's transaction. The rule is the sink's own
// on such a broker (plugins/kafka-sink/exactly_once_writer.cpp) and shares its
// blind spot: a kill after the broker committed and before the file was
// written counts as not committed, and the sink then writes the batch again.
std::vector<ConsumedRecord> FilterToCommittedAttempts(const std::vector<ConsumedRecord>& records,
                                                      const std::vector<RunOutcome>& runs,
                                                      const std::map<int64_t, std::map<int, int64_t>>& batch_ends) {
  std::vector<ConsumedRecord> kept;
  for (const ConsumedRecord& record : records) {
    size_t run = 0;
    while (run < runs.size() && record.offset >= runs[run].output_ends[static_cast<size_t>(record.partition)]) ++run;
    int input_partition = 0;
    long long input_offset = 0;
    if (run == runs.size() ||
        std::sscanf(record.value.c_str(), "r%*d %d:%lld", &input_partition, &input_offset) != 2) {
      kept.push_back(record);  // not attributable: counted, so it shows as a surprise
      continue;
    }
    std::optional<int64_t> batch;
    for (const auto& [id, ends] : batch_ends)
      if (auto it = ends.find(input_partition); it != ends.end() && input_offset < it->second) {
        batch = id;
        break;
      }
    const auto& committed = runs[run].sink_committed_through;
    if (!batch || (committed && *batch <= *committed)) kept.push_back(record);
  }
  return kept;
}

}  // namespace

int main(int argc, char** argv) {
  const Settings s = ParseArguments(argc, argv);
  if (!fs::exists(s.sluice_bin)) Fail("no sluice binary at " + s.sluice_bin + " (--sluice PATH)");

  const std::string prefix = "sluice-eos-check-" +
                             std::to_string(std::chrono::system_clock::now().time_since_epoch().count() / 1000000) +
                             "-" + std::to_string(::getpid());
  const std::string input = prefix + "-input", output = prefix + "-output", markers = prefix + "-markers";
  fs::path work = s.work_dir;
  if (work.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    work = fs::path(tmp && *tmp ? tmp : "/tmp") / prefix;
  }
  fs::create_directories(work);
  const fs::path pipeline = work / "eos-check.toml", log = work / "runs.log";
  const fs::path commit_file = work / "checkpoint/sinks/out/kafka-sink-commits.json";

  std::printf("kafka-eos-check: seed %u, %d kills, %d records, topics %s-{input,output,markers}, work dir %s\n",
              s.seed, s.kills, s.records, prefix.c_str(), work.c_str());
  std::fflush(stdout);
  const std::vector<int> partition_counts =
      CreateTopics(s, {{input, s.partitions}, {output, s.partitions}, {markers, 1}}, s.create_topics_with_admin);
  const int output_partitions = partition_counts[1], marker_partitions = partition_counts[2];
  const bool shows_aborted = BrokerShowsAbortedTransactions(s, markers, marker_partitions, prefix + "-probe");
  std::printf("broker hides aborted transactions from read_committed consumers: %s\n", shows_aborted ? "no" : "yes");
  if (shows_aborted && !s.broker_shows_aborted)
    std::fprintf(stderr,
                 "kafka-eos-check: this broker (librdkafka's mock cluster?) shows aborted transactions to "
                 "read_committed consumers: killed runs' uncommitted records will count as duplicated and only "
                 "'missing 0' is meaningful; rerun with --broker-shows-aborted-transactions to count only attempts "
                 "the sink's commit file shows committed\n");
  if (!shows_aborted && s.broker_shows_aborted)
    std::fprintf(stderr, "kafka-eos-check: this broker hides aborted transactions; "
                         "--broker-shows-aborted-transactions is not needed and is ignored\n");
  const bool correct = shows_aborted && s.broker_shows_aborted;

  std::ofstream(pipeline) << PipelineToml(s, input, output, markers);

  std::string delivery_error;
  rd_kafka_t* producer = NewClient(RD_KAFKA_PRODUCER, s, {{"enable.idempotence", "true"}}, &delivery_error);

  std::mt19937 rng(s.seed);
  std::uniform_int_distribution<int> kill_delay_us(0, s.max_kill_delay_ms * 1000);
  const int chunks = s.kills + 1;
  int produced = 0, kills = 0, finished_early = 0, kills_mid_batch = 0;
  std::vector<RunOutcome> runs;
  auto latest_entry = [&](const char* log_dir) {
    long latest = -1;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(work / "checkpoint" / log_dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) latest = std::max(latest, std::stol(name));
    }
    return latest;
  };
  auto record_run = [&](int exit_code) {
    RunOutcome run;
    run.exit_code = exit_code;
    run.output_ends = EndOffsets(producer, output, output_partitions);
    run.sink_committed_through = SinkCommittedThrough(commit_file);
    runs.push_back(run);
  };
  // Until --kills runs were killed: a chunk of input of random size around
  // records / (kills + 1), a start and a kill at a random instant (a run may
  // finish first). Then the rest of the input and a run to the end.
  while (kills < s.kills) {
    const int average = std::max(1, s.records / chunks);
    const int count = std::min(s.records - produced,
                               std::uniform_int_distribution<int>(average / 2, average * 3 / 2)(rng));
    if (count > 0) ProduceNumbers(producer, input, produced, count, delivery_error);
    produced += count;
    const pid_t pid = StartSluice(s, pipeline, log);
    // The randomised kill instant.
    std::this_thread::sleep_for(std::chrono::microseconds(kill_delay_us(rng)));
    ::kill(pid, SIGKILL);
    const int exit_code = WaitFor(pid);
    record_run(exit_code);
    if (exit_code == 128 + SIGKILL) {
      ++kills;
      if (latest_entry("offsets") > latest_entry("commits")) ++kills_mid_batch;
    } else if (exit_code == 0) {
      ++finished_early;
    } else {
      Fail("run " + std::to_string(runs.size()) + " ended with " + std::to_string(exit_code) + "; see " + log.string());
    }
  }
  if (produced < s.records) ProduceNumbers(producer, input, produced, s.records - produced, delivery_error);
  produced = s.records;
  const int final_exit_code = WaitFor(StartSluice(s, pipeline, log));
  record_run(final_exit_code);
  if (final_exit_code != 0) Fail("the final run ended with " + std::to_string(final_exit_code) + "; see " + log.string());
  rd_kafka_destroy(producer);
  std::printf("%d kills (%d inside a batch), %d runs finished before their kill, %zu runs, %ld batches\n", kills,
              kills_mid_batch, finished_early, runs.size(), latest_entry("offsets") + 1);

  std::vector<ConsumedRecord> seen = ReadTopic(s, output, output_partitions, "read_committed");
  if (correct) {
    const size_t raw = seen.size();
    seen = FilterToCommittedAttempts(seen, runs, BatchEnds(work / "checkpoint/offsets"));
    std::printf("mock correction: %zu of %zu records read belong to attempts that never committed\n",
                raw - seen.size(), raw);
  }
  std::vector<int> copies(static_cast<size_t>(s.records), 0);
  int64_t unexpected = 0;
  for (const ConsumedRecord& record : seen) {
    int number = -1;
    if (std::sscanf(record.value.c_str(), "r%d ", &number) == 1 && number >= 0 && number < s.records)
      ++copies[static_cast<size_t>(number)];
    else
      ++unexpected;
  }
  int64_t missing = 0, duplicated = unexpected;
  for (int count : copies) {
    missing += count == 0;
    duplicated += count > 1 ? count - 1 : 0;
  }
  std::printf("expected %d, seen %zu, missing %lld, duplicated %lld\n", s.records, seen.size(),
              static_cast<long long>(missing), static_cast<long long>(duplicated));
  return missing == 0 && duplicated == 0 ? 0 : 1;
}
