// Where closed traces go once they leave memory (DESIGN §6 "Trace store"): a key-value store of
// trace records, each with the time after which late feedback no longer finds it. The engine
// only sees this interface; the daemon and the tools back it with RocksDB (store/), tests with
// a map.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace triaged {

class TraceStore {
 public:
  virtual ~TraceStore() = default;
  // Writes (or replaces) the record of `trace_id`, kept until `expires_ns`.
  virtual void Put(const std::string& trace_id, std::string_view record, int64_t expires_ns) = 0;
  // The record of `trace_id`, if the store holds one.
  virtual std::optional<std::string> Get(const std::string& trace_id) = 0;
  virtual void Delete(const std::string& trace_id) = 0;
  // Removes the records that expire at or before `now_ns` (at most `max`, earliest first) and
  // returns them as (trace id, record).
  virtual std::vector<std::pair<std::string, std::string>> TakeExpired(int64_t now_ns,
                                                                       size_t max) = 0;
  // The number of records held (an estimate is fine).
  virtual uint64_t size() = 0;
};

// A TraceStore in a map: for tests and replays that ask for no disk.
class MemoryTraceStore final : public TraceStore {
 public:
  void Put(const std::string& trace_id, std::string_view record, int64_t expires_ns) override {
    Delete(trace_id);
    records_[trace_id] = Record{std::string(record), expires_ns};
    expiry_.emplace(expires_ns, trace_id);
  }
  std::optional<std::string> Get(const std::string& trace_id) override {
    auto it = records_.find(trace_id);
    if (it == records_.end()) return std::nullopt;
    return it->second.record;
  }
  void Delete(const std::string& trace_id) override {
    auto it = records_.find(trace_id);
    if (it == records_.end()) return;
    auto [lo, hi] = expiry_.equal_range(it->second.expires_ns);
    for (auto e = lo; e != hi; ++e) {
      if (e->second == trace_id) {
        expiry_.erase(e);
        break;
      }
    }
    records_.erase(it);
  }
  std::vector<std::pair<std::string, std::string>> TakeExpired(int64_t now_ns,
                                                               size_t max) override {
    std::vector<std::pair<std::string, std::string>> out;
    while (!expiry_.empty() && expiry_.begin()->first <= now_ns && out.size() < max) {
      auto it = records_.find(expiry_.begin()->second);
      out.emplace_back(it->first, std::move(it->second.record));
      records_.erase(it);
      expiry_.erase(expiry_.begin());
    }
    return out;
  }
  uint64_t size() override { return records_.size(); }

 private:
  struct Record {
    std::string record;
    int64_t expires_ns = 0;
  };
  std::map<std::string, Record> records_;
  std::multimap<int64_t, std::string> expiry_;
};

}  // namespace triaged
