// The trace store of each partition this process owns (DESIGN §6 "Trace store"): a RocksDB
// directory `<trace.store.path>/<group_id>/<partition>`, backed by partition p of the compacted
// changelog topic `<group_id>.traces`. A new owner restores a partition's store before it routes:
// from the local store when that was closed cleanly (then only the changelog records written
// since are applied), else by rebuilding it from the whole changelog — a store left by a crash
// may hold decisions whose routed items never reached the broker.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "daemon/kafka.h"
#include "rules/result.h"
#include "store/rocks_trace_store.h"

namespace triaged {

struct RestoreStats {
  bool from_local = false;  // the local store was current: only the changelog's tail was read
  uint64_t records = 0;     // changelog records applied
  double seconds = 0;
};

class TraceStores {
 public:
  // `dir`: `<trace.store.path>/<group_id>`; `topic`: the changelog.
  TraceStores(std::string dir, std::string topic)
      : dir_(std::move(dir)), topic_(std::move(topic)) {}

  const std::string& topic() const { return topic_; }

  // Opens partition `n`'s store if it is not open and brings it up to the changelog. A store
  // that was not closed cleanly since it was last restored (a crash, a rewind, a rejoin) is
  // rebuilt from the changelog.
  Result<RocksTraceStore*> Restore(int32_t n, KafkaClient& client, RestoreStats& stats);
  // Closes partition `n`'s store cleanly: everything it holds is in the changelog (the caller
  // flushed and committed first), so the next owner on this host may start from it.
  void Close(int32_t n, KafkaClient& client);
  RocksTraceStore* Find(int32_t n);
  const std::map<int32_t, std::unique_ptr<RocksTraceStore>>& open() const { return open_; }

 private:
  std::string dir_, topic_;
  std::map<int32_t, std::unique_ptr<RocksTraceStore>> open_;
};

}  // namespace triaged
