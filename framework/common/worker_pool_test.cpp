#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace sluice {
namespace {

TEST(WorkerPool, RunsEveryIndexExactlyOnce) {
  WorkerPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  ASSERT_TRUE(pool.ParallelFor(hits.size(), [&](size_t i) {
                    ++hits[i];
                    return Status::OK();
                  }).ok());
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(WorkerPool, UsesSeveralThreads) {
  WorkerPool pool(2);
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::atomic<int> arrived{0};
  // Each of the two tasks waits until both started: only possible on two threads.
  ASSERT_TRUE(pool.ParallelFor(2, [&](size_t) {
                    {
                      std::lock_guard<std::mutex> lock(mu);
                      ids.insert(std::this_thread::get_id());
                    }
                    ++arrived;
                    while (arrived.load() < 2) std::this_thread::yield();
                    return Status::OK();
                  }).ok());
  EXPECT_EQ(ids.size(), 2u);
}

TEST(WorkerPool, ReturnsAnErrorAfterAllTasksFinish) {
  WorkerPool pool(3);
  std::atomic<int> ran{0};
  Status st = pool.ParallelFor(50, [&](size_t i) {
    ++ran;
    return i == 17 ? Status::IOError("task 17 failed") : Status::OK();
  });
  EXPECT_EQ(st.message(), "task 17 failed");
  EXPECT_EQ(ran.load(), 50);
}

TEST(WorkerPool, TurnsAThrowingTaskIntoAStatus) {
  WorkerPool pool(2);
  Status st = pool.ParallelFor(4, [&](size_t i) -> Status {
    if (i == 2) throw std::runtime_error("bad task");
    return Status::OK();
  });
  EXPECT_EQ(st.message(), "task threw: bad task");
}

TEST(WorkerPool, SequentialWithOneThread) {
  WorkerPool pool(1);
  EXPECT_EQ(pool.size(), 1);
  std::vector<size_t> order;
  ASSERT_TRUE(pool.ParallelFor(5, [&](size_t i) {
                    order.push_back(i);
                    return Status::OK();
                  }).ok());
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace sluice
