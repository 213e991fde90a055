#include "daemon/worker_pool.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

namespace triaged {

int CoresAvailable() {
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  // cgroup v2: "max 100000" (no quota) or "QUOTA PERIOD" in microseconds.
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  std::string quota;
  int64_t period = 0;
  if (in >> quota >> period && quota != "max" && period > 0) {
    const int64_t q = std::atoll(quota.c_str());
    if (q > 0) cores = static_cast<int>(std::min<int64_t>(cores, (q + period - 1) / period));
  }
  return std::max(cores, 1);
}

int ThreadsFor(int configured) {
  // The Kafka clients' own threads (a fetcher and a sender per broker) keep a core busy: on 2
  // cores shared with them, a second engine thread made a drain slower (bench/RESULTS.md).
  return configured > 0 ? configured : std::max(CoresAvailable() - 1, 1);
}

WorkerPool::WorkerPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void WorkerPool::Run(size_t n, const std::function<void(size_t)>& task, bool wake) {
  if (n == 0) return;
  if (!wake || workers_.empty() || n == 1) {
    for (size_t i = 0; i < n; ++i) task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    task_ = &task;
    count_ = n;
    next_ = 0;
    finished_ = 0;
    ++round_;
  }
  start_.notify_all();
  Drain();
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return finished_ == count_; });
  task_ = nullptr;
}

void WorkerPool::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  while (task_ != nullptr && next_ < count_) {
    const size_t i = next_++;
    const std::function<void(size_t)>& task = *task_;
    lock.unlock();
    task(i);
    lock.lock();
    if (++finished_ == count_) done_.notify_one();
  }
}

void WorkerPool::Work() {
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_.wait(lock, [&] { return stop_ || round_ != seen; });
      if (stop_) return;
      seen = round_;
    }
    Drain();
  }
}

}  // namespace triaged
