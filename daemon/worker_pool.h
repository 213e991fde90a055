// The threads the partitions' engines run on (`threads:`, DESIGN §6): a fork-join pool. The
// main loop hands it one task per partition with work and waits for all of them; each task
// touches only its own partition's engine and outbox, so nothing is locked while they run, and
// everything after (producing, offsets, metrics) stays on the main thread, in message order.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace triaged {

// The cores this process may use: its CPU affinity, bounded by a cgroup v2 CPU quota
// (`cpu.max`, rounded up), as container runtimes set them. At least 1.
int CoresAvailable();
// `threads:` as configured; 0: one fewer than CoresAvailable() (a core for the Kafka clients'
// threads), at least 1.
int ThreadsFor(int configured);

class WorkerPool {
 public:
  // `threads` includes the caller's: 1 = no worker thread, every task runs in Run's caller.
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(0) ... task(n - 1), spread over the workers and the calling thread, and returns
  // once every one has returned. Tasks must not throw. `wake` false: every task runs in the
  // caller (waking the workers costs more than a little work saves).
  void Run(size_t n, const std::function<void(size_t)>& task, bool wake = true);

 private:
  void Work();
  // Takes tasks of the current round until none is left.
  void Drain();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_, done_;
  const std::function<void(size_t)>* task_ = nullptr;
  size_t count_ = 0, next_ = 0, finished_ = 0;
  uint64_t round_ = 0;
  bool stop_ = false;
};

}  // namespace triaged
