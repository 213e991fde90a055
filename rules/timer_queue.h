// The engine's timers: a min-queue of (at_ns, seq) that pops in exactly the order of a binary
// heap, for the shape its deadlines have. Nearly every deadline is "now + a fixed wait" (a
// span's decision wait, a closed trace's late window) and the clock only moves forward, so
// timers arrive in the order they fall due: those go to a FIFO, pushed and popped in O(1) and
// read sequentially. The rest (a root span's shorter grace, max_wait, a reload changing the
// windows) go to a heap, and the earlier of the two fronts is the top. A heap alone spent most of
// its time on the cache misses of sifting 100k timers down at each pop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <vector>

namespace triaged {

// T has `int64_t at_ns`, `uint64_t seq` (unique, increasing with each push) and `operator>`
// ordering by (at_ns, seq).
template <typename T>
class TimerQueue {
 public:
  bool empty() const { return fifo_.empty() && heap_.empty(); }
  size_t size() const { return fifo_.size() + heap_.size(); }

  void push(T timer) {
    if (fifo_.empty() || !(fifo_.back() > timer)) {
      fifo_.push_back(std::move(timer));
    } else {
      heap_.push(std::move(timer));
    }
  }
  const T& top() const { return FromFifo() ? fifo_.front() : heap_.top(); }
  void pop() {
    if (FromFifo()) {
      fifo_.pop_front();
    } else {
      heap_.pop();
    }
  }

 private:
  bool FromFifo() const { return heap_.empty() || (!fifo_.empty() && heap_.top() > fifo_.front()); }

  std::deque<T> fifo_;  // in (at_ns, seq) order
  std::priority_queue<T, std::vector<T>, std::greater<>> heap_;
};

}  // namespace triaged
