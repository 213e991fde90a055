#include "rules/timer_queue.h"

#include <gtest/gtest.h>

#include <queue>
#include <random>
#include <vector>

namespace triaged {
namespace {

struct T {
  int64_t at_ns;
  uint64_t seq;
  bool operator>(const T& o) const { return at_ns != o.at_ns ? at_ns > o.at_ns : seq > o.seq; }
};

// Pushes and pops in the pattern of `mostly_forward` (deadlines near a clock that moves on, now
// and then an earlier one) into a TimerQueue and a binary heap: the same timers come out in the
// same order.
void ExpectSameOrderAsAHeap(uint64_t seed, int backward_percent) {
  std::mt19937_64 rng(seed);
  TimerQueue<T> queue;
  std::priority_queue<T, std::vector<T>, std::greater<>> heap;
  int64_t now = 0;
  uint64_t seq = 0;
  size_t popped = 0, from_heap_side = 0;
  for (int step = 0; step < 20000; ++step) {
    now += static_cast<int64_t>(rng() % 3);
    const int pushes = static_cast<int>(rng() % 4);
    for (int i = 0; i < pushes; ++i) {
      int64_t at = now + 1000;  // the common case: a fixed wait from now, ties included
      if (static_cast<int>(rng() % 100) < backward_percent) {
        at = now + static_cast<int64_t>(rng() % 1000);  // a shorter wait, or the same instant
        ++from_heap_side;
      }
      queue.push(T{at, seq});
      heap.push(T{at, seq});
      ++seq;
    }
    while (!heap.empty() && heap.top().at_ns <= now) {
      ASSERT_FALSE(queue.empty());
      ASSERT_EQ(queue.size(), heap.size());
      EXPECT_EQ(queue.top().at_ns, heap.top().at_ns) << "step " << step;
      ASSERT_EQ(queue.top().seq, heap.top().seq) << "step " << step;
      queue.pop();
      heap.pop();
      ++popped;
    }
    ASSERT_EQ(queue.empty() || queue.top().at_ns > now, true) << "step " << step;
  }
  while (!heap.empty()) {
    ASSERT_EQ(queue.top().seq, heap.top().seq);
    queue.pop();
    heap.pop();
    ++popped;
  }
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(popped, seq);
  if (backward_percent > 0) {
    EXPECT_GT(from_heap_side, 0u);
  }
}

TEST(TimerQueue, PopsInTheOrderOfAHeapWhenDeadlinesOnlyMoveForward) {
  ExpectSameOrderAsAHeap(1, 0);
}

TEST(TimerQueue, PopsInTheOrderOfAHeapWithEarlierDeadlinesMixedIn) {
  for (int percent : {1, 10, 50, 100}) {
    SCOPED_TRACE(percent);
    ExpectSameOrderAsAHeap(static_cast<uint64_t>(percent), percent);
  }
}

TEST(TimerQueue, BreaksTiesByPushOrderAcrossBothSides) {
  TimerQueue<T> queue;
  queue.push(T{10, 0});  // FIFO
  queue.push(T{20, 1});  // FIFO
  queue.push(T{10, 2});  // earlier than the FIFO's back: heap
  queue.push(T{20, 3});  // FIFO
  queue.push(T{5, 4});   // heap
  std::vector<uint64_t> order;
  while (!queue.empty()) {
    order.push_back(queue.top().seq);
    queue.pop();
  }
  EXPECT_EQ(order, (std::vector<uint64_t>{4, 0, 2, 1, 3}));
}

}  // namespace
}  // namespace triaged
