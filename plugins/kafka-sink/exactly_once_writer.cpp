// Exactly-once writes to Kafka: one transaction per batch, recognised on
// restart through a marker record written in the same transaction.
//
// Per batch N:
//   [before-begin]  begin_transaction
//                   produce every row, [mid-produce] after half of them
//                   produce the marker {"queryId":Q,"sink":S,"batchId":N} to the marker topic
//                   flush; a failed delivery aborts the transaction
//   [before-commit] commit_transaction
//                   cache "committed N" in the checkpoint directory
//   [after-commit]  return OK: only now does the engine write commits/N
// ([name] is the crash point "kafka-sink:name".)
//
// Recovery, before the first batch of a sink instance:
//   1. init_transactions with transactional.id "sluice-<query>-<sink>": fences
//      every older producer of this query and sink (a zombie still writing),
//      and on a real broker completes or aborts the transaction it left open.
//      Only after it returns is the previous attempt's fate settled, so the
//      markers are read after it, never before.
//   2. A probe: begin, produce {"probe":<nonce>} to the marker topic, abort.
//   3. Read the whole marker topic with isolation.level=read_committed up to
//      the end it has now. The highest marker of this query and sink is the
//      highest committed batch H; AddBatch(N) with N <= H is a replay and is
//      skipped.
//
// Why the markers are exact on a real broker: the marker of N is in N's
// transaction, so read_committed shows it if and only if N's rows are
// committed. A crash before the commit leaves the transaction open; step 1
// aborts it and the marker stays hidden, so N is written again. A crash
// after the commit (before the engine's commit log) leaves the marker
// visible, so the replay of N is skipped. The checkpoint cache plays no part.
//
// Why markers below the highest are committed on any broker: batch N+1 is
// only begun after AddBatch(N) returned OK, i.e. after N's commit returned
// (the engine never starts N+1 before commits/N, and a failed N fails the
// query). So a marker of a higher batch proves every lower one committed,
// and only the highest marker H can belong to a transaction that never
// committed.
//
// A broker that does not filter (the librdkafka mock cluster shows
// read_committed consumers aborted and open transactions): the probe of step
// 2 then comes back, and the sink knows it cannot trust H by itself. It
// applies a second rule: H counts unless the checkpoint cache says that an
// attempt of H began ("attempting H", written before begin) and no commit of
// H was recorded ("committed H", written after commit returned). The only
// case this gets wrong is a crash after commit_transaction returned and
// before the "committed" cache write: the batch is then written twice on such
// a broker. Without a checkpoint directory, H counts on such a broker, so an
// open transaction's marker would make the sink skip its batch. Neither can
// happen on a real broker, where the probe is hidden and step 3 alone
// decides. Aborting does not help here: an abort is not durable across
// kill -9, and an aborted transaction's marker is exactly what the mock shows.
//
// The "committed" cache also raises H when the marker topic lost records
// (retention, a deleted topic): a value written after a commit returned can
// only under-state what Kafka committed, never over-state it.
//
// Errors: an abortable error aborts the transaction and fails the batch (the
// engine fails the query; a restart writes the batch again). Fenced or fatal
// errors make the writer dead: every later call fails with the same error,
// which names the transactional id.

#include "exactly_once_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <random>

#include "sluice/crash_point.h"
#include "sluice/durable_file.h"
#include "sluice/value_format.h"

namespace sluice::kafka_sink {
namespace {

// The batch id Fail reports for errors of recovery.
constexpr int64_t kRecovering = -1;

// How often a retriable failure of one transactional call is retried.
constexpr int kRetriableAttempts = 5;

std::string Quoted(std::string_view text) {
  std::string out;
  AppendJsonString(out, text);
  return out;
}

std::string MarkerPrefix(const std::string& query_id, const std::string& sink_name) {
  return "{\"queryId\":" + Quoted(query_id) + ",\"sink\":" + Quoted(sink_name) + ",\"batchId\":";
}

std::optional<int64_t> ParseInteger(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string RandomNonce() {
  std::random_device device;
  std::mt19937_64 generator((static_cast<uint64_t>(device()) << 32) ^ device() ^
                            static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                            static_cast<uint64_t>(::getpid()));
  char text[40];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(generator()),
                static_cast<unsigned long long>(generator()));
  return text;
}

Status ErrnoStatus(const std::string& what) { return Status::IOError(what + ": " + std::strerror(errno)); }

// The integer after "<name>": in a flat JSON text, nullopt when absent or null.
std::optional<int64_t> IntegerMember(std::string_view json, std::string_view name) {
  const std::string needle = "\"" + std::string(name) + "\":";
  const size_t at = json.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  size_t begin = at + needle.size(), end = begin;
  while (end < json.size() && (json[end] == '-' || (json[end] >= '0' && json[end] <= '9'))) ++end;
  return ParseInteger(json.substr(begin, end - begin));
}

}  // namespace

std::string MarkerKey(const std::string& query_id, const std::string& sink_name) {
  return query_id + "/" + sink_name;
}

std::string MarkerValue(const std::string& query_id, const std::string& sink_name, int64_t batch_id) {
  return MarkerPrefix(query_id, sink_name) + std::to_string(batch_id) + "}";
}

std::optional<int64_t> ParseMarkerValue(std::string_view value, const std::string& query_id,
                                        const std::string& sink_name) {
  const std::string prefix = MarkerPrefix(query_id, sink_name);
  if (!value.starts_with(prefix) || !value.ends_with("}")) return std::nullopt;
  return ParseInteger(value.substr(prefix.size(), value.size() - prefix.size() - 1));
}

// ---------------------------------------------------------------------------

CommitCache::CommitCache(std::string dir, std::string transactional_id)
    : dir_(std::move(dir)), transactional_id_(std::move(transactional_id)) {}

std::string CommitCache::path() const { return dir_.empty() ? "" : dir_ + "/kafka-sink-commits.json"; }

Result<CachedCommitState> CommitCache::Load() const {
  CachedCommitState state;
  if (dir_.empty()) return state;
  int fd = ::open(path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return state;
    return ErrnoStatus("kafka sink: cannot open '" + path() + "'");
  }
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st = ErrnoStatus("kafka sink: cannot read '" + path() + "'");
      ::close(fd);
      return st;
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  // A cache of another transactional id (the sink was renamed) says nothing
  // about this one.
  if (text.find("\"transactionalId\":" + Quoted(transactional_id_) + ",") == std::string::npos) return state;
  state.committed_batch_id = IntegerMember(text, "committedBatchId");
  state.attempting_batch_id = IntegerMember(text, "attemptingBatchId");
  return state;
}

Status CommitCache::Store(const CachedCommitState& state) const {
  if (dir_.empty()) return Status::OK();
  auto number = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : std::string("null"); };
  const std::string text = "{\"transactionalId\":" + Quoted(transactional_id_) +
                           ",\"committedBatchId\":" + number(state.committed_batch_id) +
                           ",\"attemptingBatchId\":" + number(state.attempting_batch_id) + "}\n";
  SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(dir_).WithContext("kafka sink"));
  return WriteFileAtomically(path(), text).WithContext("kafka sink");
}

// ---------------------------------------------------------------------------

ExactlyOnceWriter::ExactlyOnceWriter(KafkaProducerClient& client, ExactlyOnceIdentity identity, CommitCache cache)
    : client_(client), identity_(std::move(identity)), cache_(std::move(cache)) {}

Status ExactlyOnceWriter::Fail(int64_t batch_id, const std::string& during, const KafkaOutcome& outcome) {
  // Recovery runs before any batch is written: it passes kRecovering.
  const std::string subject = batch_id == kRecovering ? "recovery" : "batch " + std::to_string(batch_id);
  const std::string where = "kafka sink: " + subject + ": " + during + ": ";
  switch (outcome.kind) {
    case KafkaErrorKind::kFenced:
      state_ = State::kDead;
      dead_status_ = Status::Aborted(where + "the producer with transactional.id '" + identity_.transactional_id +
                                     "' was fenced by a newer producer with the same id (is another run of this "
                                     "query writing?): " + outcome.message);
      return dead_status_;
    case KafkaErrorKind::kFatal:
      state_ = State::kDead;
      dead_status_ = Status::IOError(where + "fatal error of the producer with transactional.id '" +
                                     identity_.transactional_id + "': " + outcome.message);
      return dead_status_;
    default:
      return Status::IOError(where + outcome.message);
  }
}

Status ExactlyOnceWriter::AbortAfter(int64_t batch_id, const KafkaOutcome& cause) {
  if (cause.kind == KafkaErrorKind::kFenced || cause.kind == KafkaErrorKind::kFatal)
    return Fail(batch_id, "transaction failed", cause);
  KafkaOutcome aborted = client_.AbortTransaction();
  for (int attempt = 1; aborted.kind == KafkaErrorKind::kRetriable && attempt < kRetriableAttempts; ++attempt)
    aborted = client_.AbortTransaction();
  if (!aborted.ok()) {
    // The transaction is in an unknown state: only a new producer (a restart,
    // whose init_transactions aborts it) can go on.
    if (aborted.kind != KafkaErrorKind::kFenced) aborted.kind = KafkaErrorKind::kFatal;
    return Fail(batch_id, "could not abort the transaction after \"" + cause.message + "\"", aborted);
  }
  return Status::IOError("kafka sink: batch " + std::to_string(batch_id) + ": transaction of transactional.id '" +
                         identity_.transactional_id + "' aborted: " + cause.message +
                         "; nothing of the batch is committed, and it is written again when the query restarts");
}

OutgoingRecord ExactlyOnceWriter::MarkerTopicRecord(std::string_view key, std::string_view value) const {
  OutgoingRecord record;
  record.topic = identity_.marker_topic;
  record.key = key;
  record.value = value;
  return record;
}

Status ExactlyOnceWriter::ProbeAbortFiltering(std::string& probe_nonce) {
  probe_nonce = RandomNonce();
  const std::string key = "probe/" + MarkerKey(identity_.query_id, identity_.sink_name);
  const std::string value = "{\"probe\":\"" + probe_nonce + "\",\"queryId\":" + Quoted(identity_.query_id) +
                            ",\"sink\":" + Quoted(identity_.sink_name) + "}";
  KafkaOutcome outcome = client_.BeginTransaction();
  if (!outcome.ok()) return Fail(kRecovering, "probe transaction", outcome);
  outcome = client_.Produce(MarkerTopicRecord(key, value));
  if (outcome.ok()) outcome = client_.Flush();
  KafkaOutcome aborted = client_.AbortTransaction();
  if (!outcome.ok()) return Fail(kRecovering, "probe transaction", outcome);
  if (!aborted.ok()) return Fail(kRecovering, "aborting the probe transaction", aborted);
  return Status::OK();
}

Status ExactlyOnceWriter::Recover() {
  KafkaOutcome outcome = client_.InitTransactions();
  for (int attempt = 1; outcome.kind == KafkaErrorKind::kRetriable && attempt < kRetriableAttempts; ++attempt)
    outcome = client_.InitTransactions();
  if (!outcome.ok())
    return Fail(kRecovering, "init_transactions for transactional.id '" + identity_.transactional_id + "'", outcome);
  outcome = client_.EnsureTopic(identity_.marker_topic);
  if (!outcome.ok()) return Fail(kRecovering, "marker topic '" + identity_.marker_topic + "'", outcome);

  std::string probe_nonce;
  SLUICE_RETURN_IF_ERROR(ProbeAbortFiltering(probe_nonce));

  std::vector<ConsumedRecord> records;
  outcome = client_.ReadCommitted(identity_.marker_topic, records);
  if (!outcome.ok())
    return Fail(kRecovering, "reading the marker topic '" + identity_.marker_topic + "' with read_committed", outcome);
  std::optional<int64_t> highest, below_highest;
  bool probe_visible = false;
  for (const ConsumedRecord& record : records) {
    if (record.value.find(probe_nonce) != std::string::npos) probe_visible = true;
    auto batch_id = ParseMarkerValue(record.value, identity_.query_id, identity_.sink_name);
    if (!batch_id) continue;
    if (!highest || *batch_id > *highest) {
      if (highest) below_highest = highest;
      highest = batch_id;
    } else if (*batch_id < *highest && (!below_highest || *batch_id > *below_highest)) {
      below_highest = batch_id;
    }
  }
  broker_hides_aborted_ = !probe_visible;

  SLUICE_ASSIGN_OR_RETURN(CachedCommitState cached, cache_.Load());
  committed_through_ = highest;
  if (!broker_hides_aborted_ && highest && cached.attempting_batch_id == highest &&
      (!cached.committed_batch_id || *cached.committed_batch_id < *highest)) {
    // This broker shows uncommitted records and the cache says the attempt
    // of `highest` never returned from its commit: see the top of this file.
    committed_through_ = below_highest;
  }
  if (cached.committed_batch_id && (!committed_through_ || *cached.committed_batch_id > *committed_through_))
    committed_through_ = cached.committed_batch_id;
  state_ = State::kReady;
  return Status::OK();
}

Status ExactlyOnceWriter::Produce(int64_t batch_id, BatchRecords& records) {
  const int64_t count = records.size();
  OutgoingRecord record;
  for (int64_t index = 0; index < count; ++index) {
    if (index == count / 2) CrashPoint("kafka-sink:mid-produce");
    Status encoded = records.Get(index, record);
    if (!encoded.ok()) return AbortAfter(batch_id, KafkaOutcome::Error(KafkaErrorKind::kAbortable, encoded.message()));
    KafkaOutcome outcome = client_.Produce(record);
    if (!outcome.ok()) return AbortAfter(batch_id, outcome);
  }
  const std::string key = MarkerKey(identity_.query_id, identity_.sink_name);
  const std::string value = MarkerValue(identity_.query_id, identity_.sink_name, batch_id);
  KafkaOutcome outcome = client_.Produce(MarkerTopicRecord(key, value));
  if (!outcome.ok()) return AbortAfter(batch_id, outcome);
  // Flushing before the commit reports a failed delivery with its topic and
  // partition rather than as a bare commit failure.
  outcome = client_.Flush();
  if (!outcome.ok()) return AbortAfter(batch_id, outcome);
  return Status::OK();
}

Status ExactlyOnceWriter::Commit(int64_t batch_id) {
  KafkaOutcome outcome = client_.CommitTransaction();
  // librdkafka allows a retriable commit failure to be retried as is.
  for (int attempt = 1; outcome.kind == KafkaErrorKind::kRetriable && attempt < kRetriableAttempts; ++attempt)
    outcome = client_.CommitTransaction();
  if (outcome.ok()) return Status::OK();
  if (outcome.kind == KafkaErrorKind::kAbortable) return AbortAfter(batch_id, outcome);
  // Retries exhausted or an unknown failure: whether the commit happened is
  // unknown, so this producer must not go on; a restart's recovery finds out.
  if (outcome.kind != KafkaErrorKind::kFenced) outcome.kind = KafkaErrorKind::kFatal;
  return Fail(batch_id, "commit_transaction (outcome unknown; a restart finds out from the marker topic)", outcome);
}

Status ExactlyOnceWriter::WriteBatch(int64_t batch_id, BatchRecords& records) {
  if (state_ == State::kDead) return dead_status_;
  if (state_ == State::kUninitialised) SLUICE_RETURN_IF_ERROR(Recover());
  // A replay of a committed batch carries the same rows: nothing to write.
  if (committed_through_ && batch_id <= *committed_through_) return Status::OK();

  CrashPoint("kafka-sink:before-begin");
  if (!broker_hides_aborted_) {
    // Only a broker that shows uncommitted markers needs to know which
    // attempt began (see the top of this file); on Kafka this write is skipped.
    SLUICE_RETURN_IF_ERROR(cache_.Store({.committed_batch_id = committed_through_, .attempting_batch_id = batch_id}));
  }
  KafkaOutcome outcome = client_.BeginTransaction();
  if (!outcome.ok()) return Fail(batch_id, "begin_transaction", outcome);
  SLUICE_RETURN_IF_ERROR(Produce(batch_id, records));
  CrashPoint("kafka-sink:before-commit");
  SLUICE_RETURN_IF_ERROR(Commit(batch_id));
  committed_through_ = batch_id;
  SLUICE_RETURN_IF_ERROR(cache_.Store({.committed_batch_id = batch_id, .attempting_batch_id = std::nullopt}));
  CrashPoint("kafka-sink:after-commit");
  return Status::OK();
}

}  // namespace sluice::kafka_sink
