// The on-disk trace store (DESIGN §6 "Trace store"): closed traces past the hot window, in a
// compressed RocksDB database of one directory, with the changelog position it is current to,
// so RAM does not grow with `late_feedback_window`.
//
// Keys: `t/<trace_id>` → expires_ns (8 bytes) + record; `x/<expires_ns (8 bytes)><trace_id>`
// → "" (the expiry index, so TakeExpired is one ordered scan); `m/changelog_offset` → 8 bytes.
// The 8-byte times are big-endian with the sign bit flipped, so byte order is time order for
// every int64. Each operation is one WriteBatch: a record and its index entry (and the
// changelog position, in the variants that take one) change together or not at all.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rules/result.h"
#include "rules/trace_store.h"

namespace rocksdb {
class DB;
}

namespace triaged {

class RocksTraceStore final : public TraceStore {
 public:
  // Opens (creating it and its parents if need be) the store in `dir`. Fails, naming `dir`, if
  // the directory cannot be made or the database cannot be opened — among others when another
  // RocksTraceStore (of this process or another) has it open.
  static Result<std::unique_ptr<RocksTraceStore>> Open(const std::string& dir);
  ~RocksTraceStore() override;
  RocksTraceStore(const RocksTraceStore&) = delete;
  RocksTraceStore& operator=(const RocksTraceStore&) = delete;

  void Put(const std::string& trace_id, std::string_view record, int64_t expires_ns) override;
  // Put, and the changelog position it brings the store to, atomically.
  void Put(const std::string& trace_id, std::string_view record, int64_t expires_ns,
           int64_t changelog_offset);
  std::optional<std::string> Get(const std::string& trace_id) override;
  void Delete(const std::string& trace_id) override;
  // Delete, and the changelog position it brings the store to, atomically.
  void Delete(const std::string& trace_id, int64_t changelog_offset);
  std::vector<std::pair<std::string, std::string>> TakeExpired(int64_t now_ns, size_t max) override;
  // Exact: counted from the expiry index at Open, kept in memory since.
  uint64_t size() override;

  // The changelog position the store is current to (the offset of the next record to apply),
  // persisted with the writes; -1 if unknown (a new or cleared store).
  int64_t changelog_offset();
  void set_changelog_offset(int64_t offset);
  // Drops every record and forgets the changelog position, for a store that is not current and
  // is rebuilt from the changelog.
  void Clear();
  // SST files plus live write-ahead log, in bytes.
  uint64_t disk_bytes();
  // What the database holds in memory: memtables, table readers and the block cache (where
  // the indexes and filters live) — bounded by the options, not by the number of records.
  uint64_t memory_bytes();
  // Compacts the whole database now (so disk_bytes reflects the final compression, and the
  // tombstones of taken records are gone); for benches and after bulk deletes.
  void Compact();

  const std::string& dir() const { return dir_; }
  // What the records are compressed with: "ZSTD", "LZ4 (ZSTD at the bottommost level)", ...
  const std::string& compression() const { return compression_; }
  // The first read or write that failed since Open (what and where), if any: the interface
  // has no error channel on each call, so the owner checks this (and reports not ready).
  std::optional<Error> error() const;

 private:
  RocksTraceStore(std::string dir, std::unique_ptr<rocksdb::DB> db, std::string compression);
  void PutLocked(const std::string& trace_id, std::string_view record, int64_t expires_ns,
                 std::optional<int64_t> changelog_offset);
  void DeleteLocked(const std::string& trace_id, std::optional<int64_t> changelog_offset);
  // The stored expiry of `trace_id` (nullopt if absent); false on a read error.
  // With `record`, also the record itself.
  bool ReadExpiry(const std::string& trace_id, std::optional<int64_t>* expires_ns,
                  std::string* record = nullptr);
  void Fail(const std::string& what, const std::string& status);

  const std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  const std::string compression_;
  mutable std::mutex mu_;
  uint64_t count_ = 0;
  int64_t changelog_offset_ = -1;
  // No expiry index entry sorts before this key: TakeExpired starts its scan here rather than
  // wading through the tombstones of the entries it already took.
  std::string expiry_scan_from_;
  std::optional<Error> error_;
};

}  // namespace triaged
