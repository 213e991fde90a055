#include "daemon/trace_stores.h"

#include <chrono>

#include "daemon/log.h"
#include "rules/trace_record.h"

namespace triaged {

Result<RocksTraceStore*> TraceStores::Restore(int32_t n, KafkaClient& client, RestoreStats& stats) {
  const auto start = std::chrono::steady_clock::now();
  stats = RestoreStats{};
  auto it = open_.find(n);
  if (it == open_.end()) {
    TRIAGED_ASSIGN_OR_RETURN(std::unique_ptr<RocksTraceStore> store,
                             RocksTraceStore::Open(dir_ + "/" + std::to_string(n)));
    it = open_.emplace(n, std::move(store)).first;
  }
  RocksTraceStore& store = *it->second;
  TRIAGED_ASSIGN_OR_RETURN(auto marks, client.ChangelogWatermarks(topic_, n));
  // A clean close left the changelog position the store is current to; anything else (a
  // crash, a rewind, a store from before the topic was recreated) is rebuilt.
  int64_t from = store.changelog_offset();
  if (from < marks.first || from > marks.second) {
    store.Clear();
    from = marks.first;
  } else {
    stats.from_local = true;
  }
  // Dirty until the next clean close: a crash from here on leaves a store to rebuild.
  store.set_changelog_offset(-1);
  uint64_t unreadable = 0;
  Result<uint64_t> read = client.ReadChangelog(
      topic_, n, from, [&](int64_t, std::string_view key, std::optional<std::string_view> value) {
        const std::string id(key);
        if (!value) {
          store.Delete(id);
          return;
        }
        Result<int64_t> expires = TraceRecordExpiry(*value);
        if (!expires.ok()) {
          ++unreadable;
          return;
        }
        store.Put(id, *value, expires.value());
      });
  if (!read.ok()) return read.error();
  if (std::optional<Error> e = store.error()) return *e;
  if (unreadable > 0) {
    log::Warn("changelog records that are not trace records were skipped",
              {{"topic", topic_}, {"partition", n}, {"records", unreadable}});
  }
  stats.records = read.value();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return &store;
}

void TraceStores::Close(int32_t n, KafkaClient& client) {
  auto it = open_.find(n);
  if (it == open_.end()) return;
  Result<std::pair<int64_t, int64_t>> marks = client.ChangelogWatermarks(topic_, n);
  if (marks.ok() && !it->second->error()) it->second->set_changelog_offset(marks.value().second);
  open_.erase(it);
}

RocksTraceStore* TraceStores::Find(int32_t n) {
  auto it = open_.find(n);
  return it == open_.end() ? nullptr : it->second.get();
}

}  // namespace triaged
