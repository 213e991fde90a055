// How consumed input offsets become committed (DESIGN §6 Delivery), in one of two ways:
// at-least-once commits the consumer's offsets once the routed items before them are
// acknowledged; exactly-once commits routed items, dead letters, decision records and the
// input offsets in one Kafka transaction (KIP-447), and on failure aborts (or replaces a fenced
// producer) so the pipeline can rewind to the committed offsets.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "config/config.h"
#include "daemon/kafka.h"
#include "daemon/partitions.h"

namespace triaged {

class Committer {
 public:
  virtual ~Committer() = default;

  // Before producing a routed item or a dead letter: false = not now (a failed transaction is
  // waiting for Reset(); what would be produced is decided again after the rewind).
  virtual bool BeforeProduce() = 0;
  // A message could not be handed to the producer, or was not delivered.
  virtual void ProduceFailed() = 0;
  // Commits what is safe: `only` these partitions when given (a revocation); `sync` waits for
  // the broker's answer (revocation, shutdown), at most `timeout` per call to the broker.
  // True when everything that was safe is committed (or there was nothing to commit).
  virtual bool Commit(bool sync, const std::set<int32_t>* only = nullptr,
                      milliseconds timeout = std::chrono::seconds(60)) = 0;
  // Why a rewind to the committed offsets is needed (empty: none).
  virtual const std::string& rewind_reason() const = 0;
  // Makes the producer usable again after a failure (abort, or a new producer), and clears the
  // rewind reason; false when no producer could be made.
  virtual bool Reset() = 0;
};

// Counts a failed transaction call (triaged_produce_errors_total).
using ErrorCounter = std::function<void()>;

std::unique_ptr<Committer> NewAtLeastOnceCommitter(KafkaClient& client, PartitionTable& partitions,
                                                   const InputsConfig& inputs);
std::unique_ptr<Committer> NewTransactionalCommitter(KafkaClient& client,
                                                     PartitionTable& partitions,
                                                     const InputsConfig& inputs,
                                                     ErrorCounter count_error);

}  // namespace triaged
