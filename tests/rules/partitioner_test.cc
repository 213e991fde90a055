#include "rules/partitioner.h"

#include <gtest/gtest.h>

#include <string>

namespace triaged {
namespace {

// The values of Kafka's own UtilsTest.testMurmur2 (the Java client's partitioner).
TEST(Partitioner, Murmur2MatchesKafkaJava) {
  const std::pair<const char*, int32_t> cases[] = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (const auto& [key, expected] : cases) {
    EXPECT_EQ(static_cast<int32_t>(KafkaMurmur2(key)), expected) << key;
  }
}

}  // namespace
}  // namespace triaged
