#include "common/worker_pool.h"

#include <atomic>
#include <exception>

namespace sluice {

WorkerPool::WorkerPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads - 1; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void WorkerPool::WorkerLoop() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

Status WorkerPool::ParallelFor(size_t n, const std::function<Status(size_t)>& fn) {
  if (n == 0) return Status::OK();
  if (n == 1 || workers_.empty()) {
    Status first;
    for (size_t i = 0; i < n; ++i) {
      Status st = fn(i);
      if (!st.ok() && first.ok()) first = st;
    }
    return first;
  }
  // Shared by the helpers; tasks pull indices so uneven partitions balance.
  struct Shared {
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
    std::mutex mu;
    std::condition_variable cv;
    Status first_error;
  };
  auto shared = std::make_shared<Shared>();
  auto run = [shared, n, &fn] {
    size_t finished = 0;
    for (size_t i; (i = shared->next.fetch_add(1)) < n;) {
      Status st;
      try {
        st = fn(i);
      } catch (const std::exception& e) {
        st = Status::Internal(std::string("task threw: ") + e.what());
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(shared->mu);
        if (shared->first_error.ok()) shared->first_error = st;
      }
      ++finished;
    }
    if (finished && shared->done.fetch_add(finished) + finished == n) {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->cv.notify_all();
    }
  };
  size_t helpers = std::min(workers_.size(), n - 1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t h = 0; h < helpers; ++h) queue_.emplace_back(run);
  }
  cv_.notify_all();
  run();
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->done.load() == n; });
  // `fn` is referenced by helpers still unwinding their loop; they only touch
  // `shared` after their last fn call, which the shared_ptr keeps alive.
  return shared->first_error;
}

}  // namespace sluice
