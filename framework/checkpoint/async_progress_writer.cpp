#include "checkpoint/async_progress_writer.h"

#include <chrono>

namespace sluice {

AsyncProgressWriter::AsyncProgressWriter(Checkpoint& checkpoint, int64_t interval_ms, int64_t min_batches_to_retain)
    : checkpoint_(checkpoint), interval_ms_(interval_ms), min_batches_to_retain_(min_batches_to_retain),
      thread_([this] { Loop(); }) {}

AsyncProgressWriter::~AsyncProgressWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status AsyncProgressWriter::Submit(int64_t batch_id, OffsetSeq offsets, CommitMetadata commit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_.ok()) return error_;
  pending_ = Entry{batch_id, std::move(offsets), commit};
  cv_.notify_all();
  return Status::OK();
}

Status AsyncProgressWriter::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  flush_requested_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return (!pending_ && !writing_) || !error_.ok(); });
  flush_requested_ = false;
  return error_;
}

int64_t AsyncProgressWriter::entries_written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return written_;
}

Status AsyncProgressWriter::Write(const Entry& e) {
  SLUICE_RETURN_IF_ERROR(checkpoint_.offsets().Add(e.batch_id, e.offsets));
  SLUICE_RETURN_IF_ERROR(checkpoint_.commits().Add(e.batch_id, e.commit));
  int64_t keep_from = e.batch_id - min_batches_to_retain_ + 1;
  if (keep_from > 0) {
    SLUICE_RETURN_IF_ERROR(checkpoint_.offsets().PurgeBefore(keep_from));
    SLUICE_RETURN_IF_ERROR(checkpoint_.commits().PurgeBefore(keep_from));
  }
  return Status::OK();
}

void AsyncProgressWriter::Loop() {
  auto last_write = std::chrono::steady_clock::now() - std::chrono::milliseconds(interval_ms_);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // Write when something is pending and the interval passed, or on flush
    // or stop; otherwise sleep until one of those.
    auto ready = [&] {
      return stopping_ || (pending_ && (flush_requested_ ||
                                        std::chrono::steady_clock::now() >= last_write + std::chrono::milliseconds(interval_ms_)));
    };
    if (pending_) cv_.wait_until(lock, last_write + std::chrono::milliseconds(interval_ms_), ready);
    else cv_.wait(lock, ready);
    if (!pending_ || !error_.ok()) {
      pending_.reset();
      cv_.notify_all();
      if (stopping_) return;
      continue;
    }
    if (!ready()) continue;
    Entry e = std::move(*pending_);
    pending_.reset();
    writing_ = true;
    lock.unlock();
    Status st = Write(e);
    lock.lock();
    writing_ = false;
    last_write = std::chrono::steady_clock::now();
    if (st.ok()) ++written_;
    else error_ = st.WithContext("asynchronous progress tracking, batch " + std::to_string(e.batch_id));
    cv_.notify_all();
  }
}

}  // namespace sluice
