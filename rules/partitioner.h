// The partition a trace lives on when the daemon places it (DESIGN §1.4): Kafka's murmur2
// partitioner over the lowercase trace id — the Java client's default for keyed records and
// librdkafka's `murmur2_random`, so producers that use either agree with the daemon.
#pragma once

#include <cstdint>
#include <string_view>

namespace triaged {

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2, seed 0x9747b28c) of `key`.
uint32_t KafkaMurmur2(std::string_view key);

// The partition of `key` among `partitions` (> 0): (murmur2(key) & 0x7fffffff) % partitions.
int32_t Murmur2Partition(std::string_view key, int32_t partitions);

}  // namespace triaged
