// At-least-once commit positions (DESIGN §6), checked case by case and against a brute-force
// model over random operations.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "daemon/offset_tracker.h"

namespace triaged {
namespace {

constexpr int kSpans = 0;
constexpr int kFeedback = 1;

TEST(PartitionOffsets, NothingBeforeTheFirstMessage) {
  PartitionOffsets o;
  EXPECT_FALSE(o.Committable(kSpans).has_value());
  o.Consumed(kSpans, 5, {});
  EXPECT_EQ(o.Committable(kSpans), 6);
  EXPECT_FALSE(o.Committable(kFeedback).has_value());
}

TEST(PartitionOffsets, AnUndecidedTracePinsItsFirstEvent) {
  PartitionOffsets o;
  o.Consumed(kSpans, 10, {"a"});
  o.Consumed(kSpans, 11, {"b"});
  o.Consumed(kSpans, 12, {"a"});  // later events of `a` do not move its pin
  EXPECT_EQ(o.Committable(kSpans), 10);
  o.Decided("b");
  EXPECT_EQ(o.Committable(kSpans), 10);
  o.Decided("a");
  EXPECT_EQ(o.Committable(kSpans), 13);
  EXPECT_EQ(o.undecided(), 0u);
}

TEST(PartitionOffsets, PinsArePerInput) {
  PartitionOffsets o;
  o.Consumed(kSpans, 100, {"a"});
  o.Consumed(kFeedback, 7, {"b"});  // feedback-only trace
  o.Consumed(kFeedback, 8, {"a"});
  EXPECT_EQ(o.Committable(kSpans), 100);
  EXPECT_EQ(o.Committable(kFeedback), 7);
  o.Decided("b");
  EXPECT_EQ(o.Committable(kFeedback), 8);
  o.Decided("a");
  EXPECT_EQ(o.Committable(kSpans), 101);
  EXPECT_EQ(o.Committable(kFeedback), 9);
}

TEST(PartitionOffsets, RoutedItemsHoldUntilAcknowledged) {
  PartitionOffsets o;
  o.Consumed(kSpans, 0, {"a"});
  const uint64_t t1 = o.Hold("a");
  const uint64_t t2 = o.Hold("a");
  o.Decided("a");
  EXPECT_EQ(o.Committable(kSpans), 0);
  o.Release(t1, true);
  EXPECT_EQ(o.Committable(kSpans), 0);
  o.Release(t2, true);
  EXPECT_EQ(o.Committable(kSpans), 1);
  EXPECT_EQ(o.holds(), 0u);
}

TEST(PartitionOffsets, AFailedDeliveryNeverCommitsPastIt) {
  PartitionOffsets o;
  o.Consumed(kSpans, 0, {"a"});
  const uint64_t t = o.Hold("a");
  o.Decided("a");
  o.Consumed(kSpans, 1, {"b"});
  o.Decided("b");
  o.Release(t, false);
  EXPECT_EQ(o.Committable(kSpans), 0);
  EXPECT_EQ(o.failed(), 1u);
}

TEST(PartitionOffsets, LateEventsPinUntilReevaluatedAndAcknowledged) {
  PartitionOffsets o;
  o.Consumed(kSpans, 0, {"a"});
  o.Decided("a");
  EXPECT_EQ(o.Committable(kSpans), 1);
  o.Consumed(kFeedback, 40, {"a"});  // late feedback re-opens the question
  EXPECT_EQ(o.Committable(kFeedback), 40);
  const uint64_t t = o.Hold("a");
  o.Decided("a");
  EXPECT_EQ(o.Committable(kFeedback), 40);
  o.Release(t, true);
  EXPECT_EQ(o.Committable(kFeedback), 41);
}

TEST(PartitionOffsets, DeadLettersHoldTheirOffset) {
  PartitionOffsets o;
  o.Consumed(kSpans, 3, {});
  const uint64_t t = o.HoldOffset(kSpans, 3);
  o.Consumed(kSpans, 4, {});
  EXPECT_EQ(o.Committable(kSpans), 3);
  o.Release(t, true);
  EXPECT_EQ(o.Committable(kSpans), 5);
}

TEST(PartitionOffsets, ResetForgetsEverything) {
  PartitionOffsets o;
  o.Consumed(kSpans, 3, {"a"});
  o.Hold("a");
  o.Reset();
  EXPECT_FALSE(o.Committable(kSpans).has_value());
  EXPECT_EQ(o.undecided(), 0u);
  EXPECT_EQ(o.holds(), 0u);
}

// A brute-force reference: the committable offset is the smallest offset whose message is still
// needed (its trace undecided or unacknowledged, or its dead letter unacknowledged), else the
// next offset.
TEST(PartitionOffsets, MatchesABruteForceModel) {
  std::mt19937_64 rng(42);
  PartitionOffsets o;
  int64_t next[2] = {0, 0};
  std::map<std::string, std::multiset<std::pair<int, int64_t>>> events;  // since (re)open
  std::set<std::string> undecided;
  std::map<uint64_t, std::string> trace_holds;
  std::map<uint64_t, std::pair<int, int64_t>> offset_holds;
  std::map<std::string, int> holds;
  auto needed = [&](int input) {
    std::optional<int64_t> low;
    for (const auto& [id, evs] : events) {
      if (!undecided.count(id) && holds[id] == 0) continue;
      for (const auto& [in, off] : evs) {
        if (in == input && (!low || off < *low)) low = off;
      }
    }
    for (const auto& [ticket, pin] : offset_holds) {
      if (pin.first == input && (!low || pin.second < *low)) low = pin.second;
    }
    return low.value_or(next[input]);
  };
  for (int step = 0; step < 10000; ++step) {
    const std::string id = "t" + std::to_string(rng() % 40);
    const int input = static_cast<int>(rng() % 2);
    switch (rng() % 6) {
      case 0:
      case 1: {
        const int64_t off = next[input]++;
        if (rng() % 8 == 0) {
          o.Consumed(input, off, {});
          offset_holds[o.HoldOffset(input, off)] = {input, off};
        } else {
          o.Consumed(input, off, {id});
          if (!undecided.count(id) && holds[id] == 0) events[id].clear();
          events[id].insert({input, off});
          undecided.insert(id);
        }
        break;
      }
      case 2:
        o.Decided(id);
        undecided.erase(id);
        break;
      case 3:
        if (undecided.count(id)) {
          trace_holds[o.Hold(id)] = id;
          ++holds[id];
        }
        break;
      default:
        if (!trace_holds.empty() && rng() % 2 == 0) {
          auto it = trace_holds.begin();
          std::advance(it, static_cast<long>(rng() % trace_holds.size()));
          o.Release(it->first, true);
          --holds[it->second];
          trace_holds.erase(it);
        } else if (!offset_holds.empty()) {
          auto it = offset_holds.begin();
          o.Release(it->first, true);
          offset_holds.erase(it);
        }
    }
    for (int in : {0, 1}) {
      if (next[in] == 0) continue;
      ASSERT_EQ(o.Committable(in), needed(in)) << "step " << step << " input " << in;
    }
  }
}

TEST(PartitionOffsets, ScalesToMaxOpenTraces) {
  PartitionOffsets o;
  constexpr int kTraces = 200000;
  for (int i = 0; i < kTraces; ++i) o.Consumed(kSpans, i, {"t" + std::to_string(i)});
  EXPECT_EQ(o.undecided(), static_cast<size_t>(kTraces));
  for (int i = kTraces - 1; i >= 1; --i) o.Decided("t" + std::to_string(i));
  EXPECT_EQ(o.Committable(kSpans), 0);
  o.Decided("t0");
  EXPECT_EQ(o.Committable(kSpans), kTraces);
}

// OffsetPins against std::multiset: pins mostly in order (with repeats and now and then an
// earlier offset), erased at random, some erases of offsets not pinned.
TEST(OffsetPins, BehavesAsAMultiset) {
  for (int out_of_order_percent : {0, 5, 50}) {
    SCOPED_TRACE(out_of_order_percent);
    std::mt19937_64 rng(static_cast<uint64_t>(out_of_order_percent) + 3);
    OffsetPins pins;
    std::multiset<int64_t> model;
    std::vector<int64_t> inserted;
    int64_t next = 0;
    for (int step = 0; step < 50000; ++step) {
      if (rng() % 3 != 0) {
        int64_t offset = next;
        if (static_cast<int>(rng() % 100) < out_of_order_percent && next > 0) {
          offset = static_cast<int64_t>(rng() % static_cast<uint64_t>(next));
        } else if (rng() % 4 != 0) {
          ++next;  // else the same offset again (a trace pin and a dead letter of one message)
        }
        pins.insert(offset);
        model.insert(offset);
        inserted.push_back(offset);
      } else if (!inserted.empty()) {
        // An offset inserted before (maybe already erased) or one never inserted.
        const int64_t offset = rng() % 8 == 0 ? next + 1000 : inserted[rng() % inserted.size()];
        pins.erase(offset);
        if (auto it = model.find(offset); it != model.end()) model.erase(it);
      }
      ASSERT_EQ(pins.size(), model.size()) << "step " << step;
      ASSERT_EQ(pins.empty(), model.empty());
      if (!model.empty()) {
        ASSERT_EQ(pins.min(), *model.begin()) << "step " << step;
      }
    }
    while (!model.empty()) {
      pins.erase(*model.begin());
      model.erase(model.begin());
      ASSERT_EQ(pins.size(), model.size());
      if (!model.empty()) {
        ASSERT_EQ(pins.min(), *model.begin());
      }
    }
    EXPECT_TRUE(pins.empty());
  }
}

// One pin held while a million later ones come and go: the erased ones are not all kept.
TEST(OffsetPins, AnOldPinDoesNotKeepEveryErasedOneBehindIt) {
  OffsetPins pins;
  pins.insert(0);
  for (int64_t offset = 1; offset <= 1'000'000; ++offset) {
    pins.insert(offset);
    pins.erase(offset - 1 == 0 ? -1 : offset - 1);
  }
  EXPECT_EQ(pins.size(), 2u);
  EXPECT_EQ(pins.min(), 0);
  EXPECT_LT(pins.runs(), 200u);
}

}  // namespace
}  // namespace triaged
