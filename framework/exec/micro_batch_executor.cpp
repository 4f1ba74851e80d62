#include "exec/micro_batch_executor.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <chrono>

#include "checkpoint/durable_file.h"
#include "common/ids.h"
#include "common/logging.h"
#include "sluice/crash_point.h"
#include "sluice/value_format.h"

namespace sluice {

namespace {

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Delivers one partition's rows, through the steps fused into the read, into
// per-node vectors of its own, and applies the source's on_error policy to
// malformed records.
class PartitionReadContext final : public ReadContext {
 public:
  struct Counters {
    std::atomic<int64_t> bad{0}, dropped{0}, dead_lettered{0};
  };
  // `nodes` the query's nodes; `plan` the executor's fused plan (its `keep`
  // and `fused_consumers`); `source_nodes` the nodes of this source.
  PartitionReadContext(const QuerySource& source, int64_t batch_id, DeadLetterWriter* dead_letter,
                       Counters* counters, const std::vector<QueryNode>& nodes, const std::vector<bool>& keep,
                       const std::vector<std::vector<size_t>>& fused_consumers, const std::vector<size_t>& source_nodes,
                       const expr::EvalContext& eval)
      : source_(source),
        batch_id_(batch_id),
        dead_letter_(dead_letter),
        counters_(counters),
        nodes_(nodes),
        keep_(keep),
        fused_consumers_(fused_consumers),
        source_nodes_(source_nodes),
        eval_(eval) {
    outputs.resize(nodes.size());
  }

  Status Emit(RecordBatchPtr batch) override {
    if (!batch) return Status::Internal("source '" + source_.spec.name + "' emitted a null batch");
    if (!(*batch->schema() == *source_.schema))
      return Status::Internal("source '" + source_.spec.name + "' emitted a batch with schema (" +
                              batch->schema()->ToString() + ") instead of its declared (" +
                              source_.schema->ToString() + ")");
    if (batch->num_rows() == 0) return Status::OK();
    rows += batch->num_rows();
    for (size_t n : source_nodes_) SLUICE_RETURN_IF_ERROR(Deliver(n, batch));
    return Status::OK();
  }

  Status BadRecord(std::string_view raw, std::string_view position, std::string_view error) override {
    ++counters_->bad;
    switch (source_.spec.on_error) {
      case OnError::kFail:
        return Status::ParseError("source '" + source_.spec.name + "': malformed record at " + std::string(position) +
                                  ": " + std::string(error) +
                                  " (on_error = \"fail\"; set on_error = \"drop\" or \"dead_letter\" to keep going)");
      case OnError::kDrop:
        ++counters_->dropped;
        return Status::OK();
      case OnError::kDeadLetter:
        ++counters_->dead_lettered;
        return dead_letter_->Write(source_.spec.name, batch_id_, position, error, raw);
    }
    return Status::OK();
  }

  bool StopRequested() const override { return false; }  // a batch, once started, runs to its end

  int64_t rows = 0;                                  // every row the source emitted
  std::vector<std::vector<RecordBatchPtr>> outputs;  // per node, only where keep[node]
  Status step_error;                                 // a fused step's failure, named after it

 private:
  // Node n's batch: kept if anything after the read needs it, and passed on
  // to the fused steps that read it, at once, while it is still in cache.
  Status Deliver(size_t n, const RecordBatchPtr& batch) {
    if (keep_[n]) outputs[n].push_back(batch);
    for (size_t m : fused_consumers_[n]) {
      const QueryNode& step = nodes_[m];
      auto out = step.predicate ? step.predicate->Filter(batch, eval_) : step.projection->Apply(*batch, eval_);
      if (!out.ok()) {
        step_error = out.status().WithContext("step '" + step.name + "'");
        return Status::Aborted("step '" + step.name + "' failed");
      }
      if (*out && (*out)->num_rows() > 0) SLUICE_RETURN_IF_ERROR(Deliver(m, *out));
    }
    return Status::OK();
  }

  const QuerySource& source_;
  int64_t batch_id_;
  DeadLetterWriter* dead_letter_;
  Counters* counters_;
  const std::vector<QueryNode>& nodes_;
  const std::vector<bool>& keep_;
  const std::vector<std::vector<size_t>>& fused_consumers_;
  const std::vector<size_t>& source_nodes_;
  const expr::EvalContext& eval_;
};

}  // namespace

struct MicroBatchExecutor::BatchStats {
  struct EventTime {
    int64_t count = 0, min_us = 0, max_us = 0;
    double sum_us = 0;
  };
  std::vector<EventTime> event_time;  // per watermark node
  std::vector<StateOperatorProgress> state_operators;
  std::vector<int64_t> source_rows;
  std::vector<std::unique_ptr<PartitionReadContext::Counters>> counters;
  std::vector<int64_t> sink_rows;
  std::vector<bool> fused_steps;  // per node: ran during the read
};

MicroBatchExecutor::MicroBatchExecutor(Query& query, ExecutorOptions options)
    : query_(query), options_(std::move(options)), pool_(query.spec.threads) {
  committed_.resize(query_.sources.size());
  fused_plan_ = BuildFusedPlan(true);
  unfused_plan_ = BuildFusedPlan(false);
  operator_watermarks_ms_.assign(static_cast<size_t>(query_.num_watermarks), -1);
  for (const auto& s : query_.sources)
    dead_letters_.push_back(s.spec.on_error == OnError::kDeadLetter ? std::make_unique<DeadLetterWriter>(s.dead_letter_path)
                                                                    : nullptr);
}

MicroBatchExecutor::~MicroBatchExecutor() {
  StopAll();
  if (!state_scratch_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(state_scratch_dir_, ec);
  }
}

void MicroBatchExecutor::RequestStop() {
  stop_ = true;
  std::lock_guard<std::mutex> lock(wait_mu_);
  wait_cv_.notify_all();
}

void MicroBatchExecutor::WaitFor(int64_t micros) {
  if (micros <= 0) return;
  std::unique_lock<std::mutex> lock(wait_mu_);
  wait_cv_.wait_for(lock, std::chrono::microseconds(micros), [&] { return stop_.load(); });
}

void MicroBatchExecutor::StopAll() {
  if (query_.state_provider) {
    Status st = query_.state_provider->Close();
    if (!st.ok()) LogWarn("state store did not close cleanly: " + st.message());
  }
  for (auto& s : query_.sources)
    if (s.source) s.source->Stop();
  for (auto& s : query_.sinks)
    if (s.sink) {
      Status st = s.sink->Stop();
      if (!st.ok()) LogWarn("sink '" + s.spec.name + "' did not stop cleanly: " + st.message());
    }
}

Status MicroBatchExecutor::Recover() {
  const PipelineSpec& spec = query_.spec;
  QueryShape shape;
  shape.pipeline_name = spec.name;
  for (const auto& s : query_.sources) shape.sources.push_back({s.spec.name, s.spec.type, ""});
  for (const auto& s : query_.sinks) {
    std::string path;
    if (auto it = s.spec.options.find("path"); it != s.spec.options.end())
      if (auto* p = std::get_if<std::string>(&it->second.value)) path = ResolvePath(spec.directory, *p);
    shape.sinks.push_back({s.spec.name, s.spec.type, path});
  }
  for (const auto& n : query_.nodes)
    if (n.stateful)  // partitions are part of the shape: keys hash to partitions
      shape.stateful_operators.push_back(
          {n.stateful->id(), n.stateful->kind() + " over " + std::to_string(spec.shuffle_partitions) + " partitions", ""});
  if (query_.state_provider) shape.state_provider = spec.state_provider;
  SLUICE_ASSIGN_OR_RETURN(checkpoint_, Checkpoint::Open(spec.checkpoint, shape, query_.query_id));
  for (const auto& s : query_.sources)
    if (!s.checkpoint_dir.empty()) SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(s.checkpoint_dir));
  for (const auto& s : query_.sinks)
    if (!s.checkpoint_dir.empty()) SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(s.checkpoint_dir));
  SLUICE_ASSIGN_OR_RETURN(auto latest, checkpoint_->offsets().Latest());
  if (!latest) return Status::OK();  // a new query
  const int64_t n = *latest;
  const size_t sources = query_.sources.size();
  // The newest committed batch; every later batch in the offset log is redone,
  // in order, with its logged range, timestamp and watermark. (With
  // asynchronous state checkpointing up to two batches can be uncommitted.)
  int64_t committed = n;
  while (committed >= 0 && !checkpoint_->commits().Exists(committed)) --committed;
  if (committed < n - 2)
    return Status::Corruption("checkpoint " + spec.checkpoint + " has offsets/" + std::to_string(n) +
                              " but its newest commit entry is " +
                              (committed < 0 ? std::string("missing") : "commits/" + std::to_string(committed)) +
                              ": more than two batches without commits; the checkpoint is corrupt: restore it from a "
                              "backup or start a new checkpoint");
  std::vector<std::optional<Offset>> start(sources);
  int64_t late_ms = 0;
  if (committed >= 0) {
    SLUICE_ASSIGN_OR_RETURN(CommitMetadata commit, checkpoint_->commits().Get(committed));
    SLUICE_ASSIGN_OR_RETURN(OffsetSeq done, checkpoint_->offsets().Get(committed, sources));
    start = done.offsets;
    late_ms = done.metadata.batch_watermark_ms;
    // The next batch's late-row watermark is the committed batch's; its
    // eviction watermark is what that batch computed (the loop shifts them).
    batch_watermark_ms_ = done.metadata.batch_watermark_ms;
    global_watermark_ms_ = commit.next_batch_watermark_ms;
  }
  committed_ = start;
  for (size_t i = 0; i < sources; ++i)
    if (committed_[i]) SLUICE_RETURN_IF_ERROR(query_.sources[i].source->Commit(*committed_[i]));
  next_batch_id_ = committed + 1;
  for (int64_t b = committed + 1; b <= n; ++b) {
    SLUICE_ASSIGN_OR_RETURN(OffsetSeq end, checkpoint_->offsets().Get(b, sources));
    PendingBatch pending{b, std::vector<SourceRange>(sources), end.metadata.batch_timestamp_ms, late_ms,
                         end.metadata.batch_watermark_ms};
    for (size_t i = 0; i < sources; ++i) pending.ranges[i] = {start[i], end.offsets[i]};
    pending_.push_back(std::move(pending));
    start = end.offsets;
    late_ms = end.metadata.batch_watermark_ms;
    // A redo runs with the watermark its first attempt logged.
    global_watermark_ms_ = end.metadata.batch_watermark_ms;
  }
  // Operators restart from the global value, as Spark's tracker does.
  for (auto& w : operator_watermarks_ms_) w = global_watermark_ms_;
  if (pending_.empty())
    LogInfo("resuming query '" + spec.name + "' after committed batch " + std::to_string(committed));
  else
    LogInfo("query '" + spec.name + "' recovering: " + std::to_string(pending_.size()) + " batch" +
            (pending_.size() == 1 ? "" : "es") + " from " + std::to_string(committed + 1) +
            " were planned but not committed; running them again with the same offsets");
  return Status::OK();
}

Status MicroBatchExecutor::Run() {
  const PipelineSpec& spec = query_.spec;
  std::string progress_file = options_.progress_file.empty() ? spec.progress_file : options_.progress_file;
  if (progress_file.empty() && !spec.checkpoint.empty()) progress_file = spec.checkpoint + "/progress.jsonl";
  SLUICE_RETURN_IF_ERROR(progress_.Open(progress_file));

  if (!spec.checkpoint.empty()) SLUICE_RETURN_IF_ERROR(Recover());
  if (checkpoint_)
    for (const auto& s : query_.sinks)
      if (s.spec.async_progress) {
        async_progress_ = std::make_unique<AsyncProgressWriter>(*checkpoint_, s.spec.async_progress_interval_ms,
                                                                spec.min_batches_to_retain);
        break;
      }
  if (spec.checkpoint.empty() && query_.state_provider) {
    // Without a checkpoint, state still needs a home for this run (Spark uses
    // a temporary checkpoint too); it is deleted when the query ends.
    char tmpl[] = "/tmp/sluice-state-XXXXXX";
    if (!mkdtemp(tmpl)) return Status::IOError(std::string("cannot create a temporary state directory: ") + std::strerror(errno));
    state_scratch_dir_ = tmpl;
  }
  const std::string query_id = checkpoint_ ? checkpoint_->query_id() : query_.query_id;
  const std::string run_id = NewUuid();
  const TriggerKind trigger = spec.trigger.kind;
  const ReadLimit limit = trigger == TriggerKind::kOnce ? ReadLimit::kAll : ReadLimit::kDefault;
  LogInfo("starting query '" + spec.name + "' id=" + query_id + " runId=" + run_id);

  if (trigger == TriggerKind::kAvailableNow)
    for (auto& s : query_.sources)
      SLUICE_RETURN_IF_ERROR(s.source->PrepareForAvailableNow().WithContext("source '" + s.spec.name + "'"));

  int64_t previous_trigger_start = 0;
  Status result;
  while (!stop_) {
    const int64_t trigger_start = SteadyMicros();
    int64_t trigger_wall = NowMicros();
    const int64_t batch_id = next_batch_id_;
    const bool replay = !pending_.empty();

    // Plan: how far may each source go? A replayed batch reuses its logged plan.
    std::vector<SourceRange> ranges(query_.sources.size());
    bool any_data = false;
    if (replay) {
      const PendingBatch& p = pending_.front();
      ranges = p.ranges;
      trigger_wall = p.timestamp_ms * 1000;
      previous_batch_watermark_ms_ = p.late_watermark_ms;
      batch_watermark_ms_ = p.batch_watermark_ms;
      pending_.pop_front();
      any_data = true;
    } else {
      for (size_t i = 0; i < query_.sources.size(); ++i) {
        auto latest = query_.sources[i].source->LatestOffset(committed_[i], limit);
        if (!latest.ok()) {
          result = latest.status().WithContext("source '" + query_.sources[i].spec.name + "'");
          break;
        }
        ranges[i].start = committed_[i];
        ranges[i].end = *latest;
        any_data |= ranges[i].has_data();
      }
      if (!result.ok()) break;
    }
    const int64_t latest_offset_micros = SteadyMicros() - trigger_start;

    // Spark's no-data batch: when the watermark moved past what the last batch
    // evicted with, one more batch runs without input so stateful operators
    // emit and evict what the new watermark finalises.
    const bool no_data_batch = !any_data && !replay && trigger != TriggerKind::kOnce && batches_run_ > 0 &&
                               global_watermark_ms_ > batch_watermark_ms_ && HasWatermarkEvictingOperator();
    if (no_data_batch) {
      for (size_t i = 0; i < ranges.size(); ++i) ranges[i] = {committed_[i], committed_[i]};
    }
    if (!any_data && !no_data_batch) {
      if (trigger == TriggerKind::kOnce || trigger == TriggerKind::kAvailableNow) break;
      int64_t wait = trigger == TriggerKind::kProcessingTime ? spec.trigger.interval_micros : spec.idle_poll_micros;
      WaitFor(wait - (SteadyMicros() - trigger_start));
      continue;
    }

    if (!replay) {
      previous_batch_watermark_ms_ = batch_watermark_ms_;
      batch_watermark_ms_ = global_watermark_ms_;
    }
    // Write-ahead: the range is durable before any of it is processed
    // (unless progress is tracked asynchronously, at-least-once).
    std::optional<int64_t> wal_commit_micros;
    if (checkpoint_ && !replay && !async_progress_) {
      const int64_t wal_start = SteadyMicros();
      CrashPoint("executor:before-offset-write");
      OffsetSeq seq;
      seq.metadata.batch_watermark_ms = batch_watermark_ms_;
      seq.metadata.batch_timestamp_ms = trigger_wall / 1000;
      trigger_wall = seq.metadata.batch_timestamp_ms * 1000;  // what a replay will see
      for (const auto& r : ranges) seq.offsets.push_back(r.has_data() ? r.end : r.start);
      result = checkpoint_->offsets().Add(batch_id, seq);
      if (!result.ok()) break;
      CrashPoint("offset-log:after-write");
      wal_commit_micros = SteadyMicros() - wal_start;
    }

    BatchStats stats;
    eval_ctx_.batch_timestamp_micros = trigger_wall;
    const int64_t run_start = SteadyMicros();
    result = RunBatch(batch_id, ranges, stats);
    const int64_t add_batch_micros = SteadyMicros() - run_start;
    if (!result.ok()) {
      result = result.WithContext("batch " + std::to_string(batch_id));
      break;
    }
    CrashPoint("executor:after-sinks");
    UpdateWatermark(stats);
    const int64_t commit_start = SteadyMicros();
    {
      CommittableBatch done{batch_id, global_watermark_ms_, {}, {}};
      for (size_t i = 0; i < query_.sources.size(); ++i) {
        done.source_ends.push_back(ranges[i].has_data() ? ranges[i].end : std::nullopt);
        // The next batch starts where this one ended, committed or not yet.
        if (ranges[i].has_data()) committed_[i] = ranges[i].end;
        done.planned_ends.push_back(committed_[i]);
      }
      // With asynchronous state checkpoints, batch N is committed once its
      // state is durable, which the next batch waits for anyway; otherwise now.
      if (checkpoint_ && query_.state_provider && query_.state_provider->asynchronous()) {
        if (deferred_commit_) result = CommitBatch(*deferred_commit_);
        deferred_commit_ = std::move(done);
      } else {
        result = CommitBatch(done);
      }
      if (!result.ok()) break;
    }
    const int64_t commit_micros = SteadyMicros() - commit_start;
    if (checkpoint_ && !async_progress_) {
      // Keep the last min_batches_to_retain entries, as Spark does.
      int64_t keep_from = batch_id - spec.min_batches_to_retain + 1;
      if (keep_from > 0) {
        Status purged = checkpoint_->offsets().PurgeBefore(keep_from);
        if (purged.ok()) purged = checkpoint_->commits().PurgeBefore(keep_from);
        if (!purged.ok()) LogWarn("cannot purge old checkpoint entries: " + purged.message());
      }
    }
    ++batches_run_;

    const int64_t trigger_micros = SteadyMicros() - trigger_start;
    ProgressEvent ev;
    ev.id = query_id;
    ev.run_id = run_id;
    ev.name = spec.name;
    ev.timestamp = FormatIsoMillis(trigger_wall);
    ev.batch_id = batch_id;
    ev.latest_offset_ms = latest_offset_micros / 1000;
    ev.add_batch_ms = add_batch_micros / 1000;
    if (wal_commit_micros) ev.wal_commit_ms = *wal_commit_micros / 1000;
    if (checkpoint_) ev.commit_offsets_ms = commit_micros / 1000;
    ev.trigger_execution_ms = trigger_micros / 1000;
    const double since_last_secs =
        previous_trigger_start ? static_cast<double>(trigger_start - previous_trigger_start) / 1e6 : 0;
    const double processing_secs = static_cast<double>(trigger_micros) / 1e6;
    for (size_t i = 0; i < query_.sources.size(); ++i) {
      SourceProgress sp;
      sp.description = query_.sources[i].source->Description();
      sp.metrics = query_.sources[i].source->Metrics();
      sp.start_offset = ranges[i].start;
      sp.end_offset = ranges[i].has_data() ? ranges[i].end : ranges[i].start;
      sp.latest_offset = ranges[i].end ? ranges[i].end : ranges[i].start;
      sp.num_input_rows = stats.source_rows[i];
      sp.num_bad_records = stats.counters[i]->bad;
      sp.num_dropped_records = stats.counters[i]->dropped;
      sp.num_dead_letter_records = stats.counters[i]->dead_lettered;
      sp.input_rows_per_second = since_last_secs > 0 ? static_cast<double>(sp.num_input_rows) / since_last_secs : 0;
      sp.processed_rows_per_second = processing_secs > 0 ? static_cast<double>(sp.num_input_rows) / processing_secs : 0;
      ev.num_input_rows += sp.num_input_rows;
      ev.sources.push_back(std::move(sp));
    }
    ev.input_rows_per_second = since_last_secs > 0 ? static_cast<double>(ev.num_input_rows) / since_last_secs : 0;
    ev.processed_rows_per_second = processing_secs > 0 ? static_cast<double>(ev.num_input_rows) / processing_secs : 0;
    for (size_t i = 0; i < query_.sinks.size(); ++i)
      ev.sinks.push_back({query_.sinks[i].spec.name, query_.sinks[i].sink->Description(), stats.sink_rows[i]});
    ev.state_operators = stats.state_operators;
    if (query_.num_watermarks > 0) {
      ev.has_event_time = true;
      ev.watermark = FormatIsoMillis(batch_watermark_ms_ * 1000);
      BatchStats::EventTime all;
      for (const auto& e : stats.event_time) {
        if (e.count == 0) continue;
        all.min_us = all.count ? std::min(all.min_us, e.min_us) : e.min_us;
        all.max_us = all.count ? std::max(all.max_us, e.max_us) : e.max_us;
        all.count += e.count;
        all.sum_us += e.sum_us;
      }
      if (all.count) {
        ev.event_time_min = FormatIsoMillis(all.min_us);
        ev.event_time_max = FormatIsoMillis(all.max_us);
        ev.event_time_avg = FormatIsoMillis(static_cast<int64_t>(all.sum_us / static_cast<double>(all.count)));
      }
    }
    Status reported = progress_.Report(ev);
    if (!reported.ok()) LogWarn(reported.message());
    if (options_.on_progress) options_.on_progress(ev);

    previous_trigger_start = trigger_start;
    next_batch_id_ = batch_id + 1;
    if (trigger == TriggerKind::kOnce && !replay) break;
    if (trigger == TriggerKind::kProcessingTime)
      WaitFor(spec.trigger.interval_micros - (SteadyMicros() - trigger_start));
  }
  if (deferred_commit_ && result.ok()) result = CommitBatch(*deferred_commit_);
  deferred_commit_.reset();
  if (async_progress_) {
    Status flushed = async_progress_->Flush();
    if (result.ok()) result = flushed;
  }
  if (stop_ && result.ok())
    LogInfo("query '" + spec.name + "' stopped on request after " + std::to_string(batches_run_) + " batches");
  StopAll();
  return result;
}

Status MicroBatchExecutor::ReadSources(int64_t batch_id, const std::vector<SourceRange>& ranges, BatchStats& stats,
                                       std::vector<std::vector<RecordBatchPtr>>& node_outputs) {
  struct Task {
    size_t source;
    std::string partition;
    std::unique_ptr<PartitionReadContext> ctx;
  };
  std::vector<Task> tasks;
  for (size_t i = 0; i < query_.sources.size(); ++i) {
    stats.counters.push_back(std::make_unique<PartitionReadContext::Counters>());
    if (!ranges[i].has_data()) continue;
    auto parts = query_.sources[i].source->PlanPartitions(ranges[i].start, *ranges[i].end);
    if (!parts.ok()) return parts.status().WithContext("source '" + query_.sources[i].spec.name + "'");
    for (auto& p : *parts) tasks.push_back({i, std::move(p), nullptr});
  }
  // Fused steps run inside the read tasks, so they only keep every worker
  // busy when there are at least as many tasks as workers; with fewer, the
  // steps run after the read, spread over all of its batches.
  const FusedPlan& plan = tasks.size() >= static_cast<size_t>(pool_.size()) ? fused_plan_ : unfused_plan_;
  stats.fused_steps = plan.fused;
  for (auto& t : tasks)
    t.ctx = std::make_unique<PartitionReadContext>(query_.sources[t.source], batch_id, dead_letters_[t.source].get(),
                                                   stats.counters[t.source].get(), query_.nodes, plan.keep,
                                                   plan.fused_consumers, plan.source_nodes[t.source], eval_ctx_);
  Status read = pool_.ParallelFor(tasks.size(), [&](size_t k) {
    Task& t = tasks[k];
    return query_.sources[t.source].source->ReadPartition(t.partition, *t.ctx).WithContext(
        "source '" + query_.sources[t.source].spec.name + "'");
  });
  // A fused step's error is the step's, not the source's that was reading.
  for (auto& t : tasks)
    if (!t.ctx->step_error.ok()) return t.ctx->step_error;
  SLUICE_RETURN_IF_ERROR(read);
  stats.source_rows.assign(query_.sources.size(), 0);
  // Partitions in plan order: output order is deterministic whatever the thread timing.
  for (auto& t : tasks) {
    stats.source_rows[t.source] += t.ctx->rows;
    for (size_t n = 0; n < query_.nodes.size(); ++n)
      for (auto& b : t.ctx->outputs[n]) node_outputs[n].push_back(std::move(b));
  }
  return Status::OK();
}

// A where or select step whose input is a source without a watermark, or
// another such step, can run on the reading thread as each record batch
// arrives (a narrow dependency, in Spark's terms: Spark pipelines such steps
// into the read task the same way). Each batch then goes through the steps
// while it is in cache, and a batch that nothing after the read needs (the
// source's rows when only a fused step reads them) is freed at once instead
// of being held until the whole micro-batch was read.
MicroBatchExecutor::FusedPlan MicroBatchExecutor::BuildFusedPlan(bool fuse) const {
  const auto& nodes = query_.nodes;
  FusedPlan plan;
  plan.fused.assign(nodes.size(), false);
  plan.keep.assign(nodes.size(), false);
  plan.fused_consumers.assign(nodes.size(), {});
  plan.source_nodes.assign(query_.sources.size(), {});
  for (size_t n = 0; n < nodes.size(); ++n)
    if (nodes[n].source >= 0) plan.source_nodes[static_cast<size_t>(nodes[n].source)].push_back(n);
  for (size_t n = 0; n < nodes.size() && fuse; ++n) {  // inputs come before their users
    const QueryNode& node = nodes[n];
    if (node.source >= 0 || node.watermark || node.aggregate || node.stateful) continue;
    if (!node.predicate && !node.projection) continue;
    const auto input = static_cast<size_t>(node.input);
    const QueryNode& in = nodes[input];
    if (in.source >= 0 ? !in.watermark : plan.fused[input]) {
      plan.fused[n] = true;
      plan.fused_consumers[input].push_back(n);
    }
  }
  for (size_t n = 0; n < nodes.size(); ++n)
    if (nodes[n].source < 0 && !plan.fused[n] && nodes[n].input >= 0) plan.keep[static_cast<size_t>(nodes[n].input)] = true;
  for (const QuerySink& sink : query_.sinks) plan.keep[static_cast<size_t>(sink.input)] = true;
  return plan;
}

Status MicroBatchExecutor::CommitBatch(const CommittableBatch& batch) {
  if (async_progress_) {
    OffsetSeq seq;
    seq.metadata.batch_watermark_ms = batch_watermark_ms_;
    seq.metadata.batch_timestamp_ms = eval_ctx_.batch_timestamp_micros / 1000;
    for (size_t i = 0; i < query_.sources.size(); ++i) seq.offsets.push_back(batch.planned_ends[i]);
    SLUICE_RETURN_IF_ERROR(async_progress_->Submit(batch.batch_id, std::move(seq), CommitMetadata{batch.next_watermark_ms}));
  } else if (checkpoint_) {
    if (query_.state_provider && query_.state_provider->asynchronous()) {
      for (const auto& n : query_.nodes) {
        if (!n.stateful) continue;
        for (int p = 0; p < query_.spec.shuffle_partitions; ++p)
          SLUICE_RETURN_IF_ERROR(query_.state_provider
                                     ->AwaitDurable(StateStoreId{query_.spec.checkpoint + "/state", n.stateful->id(), p},
                                                    batch.batch_id + 1)
                                     .WithContext("state checkpoint of batch " + std::to_string(batch.batch_id) +
                                                  ", step '" + n.stateful->id() + "' partition " + std::to_string(p)));
      }
    }
    SLUICE_RETURN_IF_ERROR(checkpoint_->commits().Add(batch.batch_id, CommitMetadata{batch.next_watermark_ms}));
    CrashPoint("commit-log:after-write");
  }
  // Every sink has the batch: sources may forget what it read.
  for (size_t i = 0; i < query_.sources.size(); ++i) {
    if (!batch.source_ends[i]) continue;
    Status st = query_.sources[i].source->Commit(*batch.source_ends[i]);
    if (!st.ok()) LogWarn("source '" + query_.sources[i].spec.name + "' commit failed: " + st.message());
  }
  return Status::OK();
}

void MicroBatchExecutor::UpdateWatermark(const BatchStats& stats) {
  if (operator_watermarks_ms_.empty()) return;
  for (size_t i = 0; i < operator_watermarks_ms_.size(); ++i) {
    const auto& e = stats.event_time[i];
    if (e.count == 0) continue;
    // Event time in microseconds, watermark in milliseconds (floorDiv, as Spark).
    int64_t max_ms = e.max_us >= 0 ? e.max_us / 1000 : -((-e.max_us + 999) / 1000);
    int64_t candidate = max_ms - query_.nodes[WatermarkNode(i)].watermark->delay_us / 1000;
    if (operator_watermarks_ms_[i] < 0 || candidate > operator_watermarks_ms_[i]) operator_watermarks_ms_[i] = candidate;
  }
  int64_t global = -1;
  for (int64_t w : operator_watermarks_ms_) {
    int64_t v = w < 0 ? 0 : w;  // an input that never had data counts as 0
    if (global < 0) global = v;
    else global = query_.spec.watermark_policy_max ? std::max(global, v) : std::min(global, v);
  }
  if (global > global_watermark_ms_) global_watermark_ms_ = global;
}

bool MicroBatchExecutor::HasWatermarkEvictingOperator() const {
  if (query_.num_watermarks == 0) return false;
  for (const auto& n : query_.nodes)
    if (n.stateful && n.stateful->evicts_by_watermark() &&
        (n.stateful->kind() == "deduplicate" || query_.spec.output_mode != OutputMode::kComplete))
      return true;
  return false;
}

size_t MicroBatchExecutor::WatermarkNode(size_t index) const {
  for (size_t n = 0; n < query_.nodes.size(); ++n)
    if (query_.nodes[n].watermark_index == static_cast<int>(index)) return n;
  return 0;
}

Status MicroBatchExecutor::RunStep(const QueryNode& node, const std::vector<RecordBatchPtr>& input,
                                   std::vector<RecordBatchPtr>& out, BatchStats& stats) {
  if (node.watermark) {
    // with_watermark passes rows through and notes their event times; every
    // row counts, late or not (Spark's EventTimeStats).
    auto& e = stats.event_time[static_cast<size_t>(node.watermark_index)];
    int col = node.schema->IndexOf(node.watermark->column);
    for (const auto& b : input) {
      const Column& c = b->column(col);
      for (int64_t r = 0; r < b->num_rows(); ++r) {
        if (c.is_null(r)) continue;
        int64_t t = c.int64_at(r);
        e.min_us = e.count ? std::min(e.min_us, t) : t;
        e.max_us = e.count ? std::max(e.max_us, t) : t;
        e.sum_us += static_cast<double>(t);
        ++e.count;
      }
    }
    if (node.source < 0) out = input;
    return Status::OK();
  }
  if (node.stateful) {
    StatefulBatchContext ctx;
    ctx.batch_id = next_batch_id_;
    ctx.has_watermark = query_.num_watermarks > 0;
    ctx.late_watermark_us = previous_batch_watermark_ms_ * 1000;
    ctx.eviction_watermark_us = batch_watermark_ms_ * 1000;
    ctx.mode = query_.spec.output_mode;
    ctx.provider = query_.state_provider.get();
    ctx.state_root = query_.spec.checkpoint.empty() ? state_scratch_dir_ : query_.spec.checkpoint + "/state";
    ctx.min_batches_to_retain = query_.spec.min_batches_to_retain;
    ctx.pool = &pool_;
    ctx.eval = eval_ctx_;
    StateOperatorProgress progress;
    SLUICE_RETURN_IF_ERROR(node.stateful->Process(input, ctx, &out, &progress));
    stats.state_operators.push_back(progress);
    return Status::OK();
  }
  if (node.aggregate) {
    // Partial aggregates over contiguous runs of batches in parallel, merged
    // in run order, so groups keep their order of first appearance.
    const size_t chunks = std::max<size_t>(1, std::min(input.size(), static_cast<size_t>(pool_.size())));
    std::vector<std::unique_ptr<AggregateState>> partials(chunks);
    SLUICE_RETURN_IF_ERROR(pool_.ParallelFor(chunks, [&](size_t c) {
      partials[c] = node.aggregate->NewState();
      for (size_t b = c * input.size() / chunks; b < (c + 1) * input.size() / chunks; ++b)
        SLUICE_RETURN_IF_ERROR(node.aggregate->Consume(*partials[c], *input[b], eval_ctx_));
      return Status::OK();
    }));
    for (size_t c = 1; c < chunks; ++c) node.aggregate->Merge(*partials[0], *partials[c]);
    out = node.aggregate->Finish(*partials[0]);
    return Status::OK();
  }
  std::vector<RecordBatchPtr> results(input.size());
  SLUICE_RETURN_IF_ERROR(pool_.ParallelFor(input.size(), [&](size_t b) -> Status {
    if (node.predicate) {
      SLUICE_ASSIGN_OR_RETURN(results[b], node.predicate->Filter(input[b], eval_ctx_));
    } else {
      SLUICE_ASSIGN_OR_RETURN(results[b], node.projection->Apply(*input[b], eval_ctx_));
    }
    return Status::OK();
  }));
  for (auto& r : results)
    if (r && r->num_rows() > 0) out.push_back(std::move(r));
  return Status::OK();
}

Status MicroBatchExecutor::RunBatch(int64_t batch_id, const std::vector<SourceRange>& ranges, BatchStats& stats) {
  std::vector<std::vector<RecordBatchPtr>> node_outputs(query_.nodes.size());
  stats.event_time.assign(static_cast<size_t>(query_.num_watermarks), {});
  stats.fused_steps.assign(query_.nodes.size(), false);
  SLUICE_RETURN_IF_ERROR(ReadSources(batch_id, ranges, stats, node_outputs));
  for (size_t n = 0; n < query_.nodes.size(); ++n) {
    const QueryNode& node = query_.nodes[n];
    if (node.source >= 0) {
      if (node.watermark) SLUICE_RETURN_IF_ERROR(RunStep(node, node_outputs[n], node_outputs[n], stats));
      continue;
    }
    if (stats.fused_steps[n]) continue;  // ran during the read
    SLUICE_RETURN_IF_ERROR(RunStep(node, node_outputs[static_cast<size_t>(node.input)], node_outputs[n], stats)
                               .WithContext("step '" + node.name + "'"));
  }
  // Bad records must be durable before the output that skipped them is.
  for (auto& dl : dead_letters_)
    if (dl) SLUICE_RETURN_IF_ERROR(dl->Sync());
  stats.sink_rows.assign(query_.sinks.size(), 0);
  for (size_t s = 0; s < query_.sinks.size(); ++s) {
    const QuerySink& sink = query_.sinks[s];
    BatchData data;
    data.batch_id = batch_id;
    data.schema = query_.nodes[static_cast<size_t>(sink.input)].schema;
    data.batches = node_outputs[static_cast<size_t>(sink.input)];
    stats.sink_rows[s] = data.num_rows();
    SLUICE_RETURN_IF_ERROR(sink.sink->AddBatch(data).WithContext("sink '" + sink.spec.name + "'"));
  }
  return Status::OK();
}

}  // namespace sluice
