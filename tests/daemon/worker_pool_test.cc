// The fork-join pool the partitions' engines run on: every task runs once per round, on more
// than one thread when there are workers, and Run returns only after all have.
#include "daemon/worker_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace triaged {
namespace {

TEST(WorkerPoolTest, EveryTaskRunsOnceARoundAndRunWaitsForAll) {
  WorkerPool pool(3);
  EXPECT_EQ(pool.threads(), 3);
  for (int round = 0; round < 200; ++round) {
    const size_t n = 1 + static_cast<size_t>(round % 17);
    std::vector<std::atomic<int>> ran(n);
    pool.Run(n, [&](size_t i) { ran[i].fetch_add(1); });
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(ran[i].load(), 1) << "round " << round << " task " << i;
  }
}

TEST(WorkerPoolTest, TasksRunOnSeveralThreads) {
  WorkerPool pool(4);
  std::mutex mu;
  std::set<std::thread::id> seen;
  // Each task waits until a second thread has joined it, so one thread cannot take them all.
  std::atomic<int> started{0};
  pool.Run(4, [&](size_t) {
    started.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (started.load() < 2 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(std::this_thread::get_id());
  });
  EXPECT_GE(seen.size(), 2u);
}

TEST(WorkerPoolTest, OneThreadRunsEveryTaskInTheCaller) {
  WorkerPool pool(1);
  EXPECT_EQ(pool.threads(), 1);
  std::vector<std::thread::id> ids;
  pool.Run(5, [&](size_t) { ids.push_back(std::this_thread::get_id()); });
  ASSERT_EQ(ids.size(), 5u);
  for (const std::thread::id& id : ids) EXPECT_EQ(id, std::this_thread::get_id());
}

TEST(WorkerPoolTest, WithoutWakingEveryTaskRunsInTheCaller) {
  WorkerPool pool(4);
  std::vector<std::thread::id> ids;
  pool.Run(
      6, [&](size_t) { ids.push_back(std::this_thread::get_id()); }, /*wake=*/false);
  ASSERT_EQ(ids.size(), 6u);
  for (const std::thread::id& id : ids) EXPECT_EQ(id, std::this_thread::get_id());
}

TEST(WorkerPoolTest, ThreadsZeroLeavesACoreForTheKafkaClients) {
  EXPECT_GE(CoresAvailable(), 1);
  EXPECT_LE(CoresAvailable(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  EXPECT_EQ(ThreadsFor(0), std::max(CoresAvailable() - 1, 1));
  EXPECT_EQ(ThreadsFor(3), 3);
}

}  // namespace
}  // namespace triaged
