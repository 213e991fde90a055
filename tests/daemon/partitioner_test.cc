#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <string>

#include "rules/partitioner.h"

namespace triaged {
namespace {

// librdkafka's murmur2_random partitioner places every trace id where the daemon does.
TEST(Partitioner, PartitionMatchesLibrdkafkaMurmur2) {
  for (int32_t partitions : {1, 3, 4, 6, 12, 100}) {
    for (int i = 0; i < 2000; ++i) {
      char id[33];
      std::snprintf(id, sizeof id, "%016x%016x", i * 2654435761u, i * 40503u + 7u);
      const std::string key(id);
      const int32_t theirs = rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(),
                                                              partitions, nullptr, nullptr);
      ASSERT_EQ(Murmur2Partition(key, partitions), theirs) << key << " of " << partitions;
    }
  }
}

}  // namespace
}  // namespace triaged
