// A fixed pool of worker threads that runs the partitions of a batch.
//
// ParallelFor(n, fn) runs fn(0..n-1) across the workers and the calling thread
// and returns when all are done; the first non-OK Status is returned (the other
// tasks still finish, so nothing is left running against freed state).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "sluice/status.h"

namespace sluice {

class WorkerPool {
 public:
  // threads = 0 means one per core.
  explicit WorkerPool(int threads = 0);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }  // the caller helps

  Status ParallelFor(size_t n, const std::function<Status(size_t)>& fn);

 private:
  void WorkerLoop();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
};

}  // namespace sluice
