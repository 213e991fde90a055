#include "daemon/dead_letter_log.h"

#include <gtest/gtest.h>

#include <chrono>

namespace triaged {
namespace {

using std::chrono::seconds;

TEST(DeadLetterLogTest, TheFirstAtOnceThenOneSummaryPerInterval) {
  ManualClock clock;
  DeadLetterLog log(seconds(10));
  EXPECT_TRUE(log.Add(clock.Steady(), "invalid_json"));
  for (int i = 0; i < 30; ++i) EXPECT_FALSE(log.Add(clock.Steady(), "invalid_json"));
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(log.Add(clock.Steady(), "trace_too_large"));
  clock.Advance(seconds(9));
  EXPECT_FALSE(log.Due(clock.Steady()));
  EXPECT_FALSE(log.Add(clock.Steady(), "invalid_json"));  // still within the interval
  clock.Advance(seconds(1));
  std::optional<DeadLetterLog::Summary> due = log.Due(clock.Steady());
  ASSERT_TRUE(due);
  EXPECT_EQ(due->count, 38u);
  EXPECT_EQ(due->ReasonsJson(), R"({"invalid_json":31,"trace_too_large":7})");
  EXPECT_FALSE(log.Due(clock.Steady()));  // taken

  // One more within the next interval waits for it, even with nothing else held.
  clock.Advance(seconds(1));
  EXPECT_FALSE(log.Add(clock.Steady(), "invalid_json"));
  clock.Advance(seconds(8));
  EXPECT_FALSE(log.Due(clock.Steady()));
  clock.Advance(seconds(1));
  due = log.Due(clock.Steady());
  ASSERT_TRUE(due);
  EXPECT_EQ(due->count, 1u);

  // A quiet interval later, the next one is logged at once again.
  clock.Advance(seconds(10));
  EXPECT_FALSE(log.Due(clock.Steady()));
  EXPECT_TRUE(log.Add(clock.Steady(), "invalid_json"));
  EXPECT_FALSE(log.Add(clock.Steady(), "invalid_json"));
  due = log.TakeHeld();  // at shutdown: due or not
  ASSERT_TRUE(due);
  EXPECT_EQ(due->count, 1u);
  EXPECT_FALSE(log.TakeHeld());
}

}  // namespace
}  // namespace triaged
