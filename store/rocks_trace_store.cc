#include "store/rocks_trace_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>  // GetSupportedCompressions
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

namespace triaged {
namespace {

constexpr std::string_view kRecordPrefix = "t/";
constexpr std::string_view kExpiryPrefix = "x/";
// The first key after each prefix ('/' + 1), the exclusive end of its range.
constexpr std::string_view kRecordEnd = "t0";
constexpr std::string_view kExpiryEnd = "x0";
constexpr std::string_view kChangelogOffsetKey = "m/changelog_offset";
constexpr size_t kTimeBytes = 8;

// Memory is bounded by these, not by the number of records (indexes and filters live in the
// block cache too).
constexpr size_t kBlockCacheBytes = 8 << 20;
constexpr size_t kWriteBufferBytes = 8 << 20;
constexpr int kWriteBuffers = 2;
constexpr uint64_t kMaxWalBytes = 16 << 20;
constexpr int kMaxOpenFiles = 256;
// Records are ~1-10 KB of JSON: blocks of several records compress far better than 4 KB ones.
constexpr size_t kBlockBytes = 16 << 10;

// Big-endian with the sign bit flipped: byte order is numeric order over all of int64.
std::string EncodeInt64(int64_t v) {
  uint64_t u = static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
  std::string out(kTimeBytes, '\0');
  for (size_t i = 0; i < kTimeBytes; ++i) {
    out[kTimeBytes - 1 - i] = static_cast<char>(u & 0xff);
    u >>= 8;
  }
  return out;
}

int64_t DecodeInt64(const char* p) {
  uint64_t u = 0;
  for (size_t i = 0; i < kTimeBytes; ++i) u = (u << 8) | static_cast<unsigned char>(p[i]);
  return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
}

std::string RecordKey(std::string_view trace_id) {
  std::string key(kRecordPrefix);
  key.append(trace_id);
  return key;
}

std::string ExpiryKey(int64_t expires_ns, std::string_view trace_id) {
  std::string key(kExpiryPrefix);
  key += EncodeInt64(expires_ns);
  key.append(trace_id);
  return key;
}

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

bool Supported(const std::vector<rocksdb::CompressionType>& types, rocksdb::CompressionType t) {
  return std::find(types.begin(), types.end(), t) != types.end();
}

// LZ4 (fast) where data is rewritten soon, ZSTD at the bottommost level, where most records
// end up and stay for the feedback window.
std::string ChooseCompression(rocksdb::Options* o) {
  const auto types = rocksdb::GetSupportedCompressions();
  const bool zstd = Supported(types, rocksdb::kZSTD);
  const bool lz4 = Supported(types, rocksdb::kLZ4Compression);
  if (zstd) {
    o->bottommost_compression = rocksdb::kZSTD;
    o->bottommost_compression_opts.enabled = true;
    // Level 1 and no trained dictionary: compaction rewrites every record a few times, and
    // the dictionary's training cost more CPU than the bytes it saved.
    o->bottommost_compression_opts.level = 1;
  }
  if (lz4) {
    o->compression = rocksdb::kLZ4Compression;
    return zstd ? "LZ4 (ZSTD at the bottommost level)" : "LZ4";
  }
  if (zstd) {
    o->compression = rocksdb::kZSTD;
    return "ZSTD";
  }
  if (Supported(types, rocksdb::kSnappyCompression)) {
    o->compression = rocksdb::kSnappyCompression;
    return "Snappy";
  }
  o->compression = rocksdb::kNoCompression;
  return "none";
}

}  // namespace

Result<std::unique_ptr<RocksTraceStore>> RocksTraceStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return MakeError("trace_store",
                     "trace store " + dir + ": cannot create the directory: " + ec.message());
  }

  rocksdb::Options o;
  o.create_if_missing = true;
  o.max_open_files = kMaxOpenFiles;
  o.write_buffer_size = kWriteBufferBytes;
  o.max_write_buffer_number = kWriteBuffers;
  o.max_total_wal_size = kMaxWalBytes;
  o.max_background_jobs = 2;
  o.level_compaction_dynamic_level_bytes = true;
  o.info_log_level = rocksdb::WARN_LEVEL;
  o.keep_log_file_num = 2;
  o.max_log_file_size = 1 << 20;
  // Taken records leave runs of tombstones in the expiry index: compact the files they pile
  // up in.
  o.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(1024, 512));
  const std::string compression = ChooseCompression(&o);

  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  t.block_size = kBlockBytes;
  t.format_version = 5;
  // Late feedback often asks for traces the store never held.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, &raw);
  if (!s.ok()) {
    return MakeError("trace_store", "trace store " + dir + ": cannot open: " + s.ToString());
  }
  std::unique_ptr<rocksdb::DB> db(raw);

  // Exact size from the expiry index: its keys are small and its values empty, so this reads
  // a sliver of what the records take.
  uint64_t count = 0;
  {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    const rocksdb::Slice upper = ToSlice(kExpiryEnd);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
    for (it->Seek(ToSlice(kExpiryPrefix)); it->Valid(); it->Next()) ++count;
    if (!it->status().ok()) {
      return MakeError("trace_store", "trace store " + dir + ": cannot read the expiry index: " +
                                          it->status().ToString());
    }
  }
  int64_t offset = -1;
  std::string value;
  s = db->Get(rocksdb::ReadOptions(), ToSlice(kChangelogOffsetKey), &value);
  if (s.ok() && value.size() == kTimeBytes) {
    offset = DecodeInt64(value.data());
  } else if (s.ok()) {
    return MakeError("trace_store", "trace store " + dir + ": " + std::string(kChangelogOffsetKey) +
                                        " holds " + std::to_string(value.size()) + " bytes, not 8");
  } else if (!s.IsNotFound()) {
    return MakeError("trace_store", "trace store " + dir + ": cannot read " +
                                        std::string(kChangelogOffsetKey) + ": " + s.ToString());
  }

  std::unique_ptr<RocksTraceStore> store(new RocksTraceStore(dir, std::move(db), compression));
  store->count_ = count;
  store->changelog_offset_ = offset;
  return store;
}

RocksTraceStore::RocksTraceStore(std::string dir, std::unique_ptr<rocksdb::DB> db,
                                 std::string compression)
    : dir_(std::move(dir)),
      db_(std::move(db)),
      compression_(std::move(compression)),
      expiry_scan_from_(kExpiryPrefix) {}

RocksTraceStore::~RocksTraceStore() {
  if (db_ == nullptr) return;
  // Close waits for background flushes and compactions and releases the directory's LOCK; its
  // status has nowhere to go from a destructor, and the WAL holds what a failed close loses.
  db_->Close().PermitUncheckedError();
}

void RocksTraceStore::Fail(const std::string& what, const std::string& status) {
  if (error_) return;
  error_ = MakeError("trace_store", "trace store " + dir_ + ": " + what + ": " + status);
}

std::optional<Error> RocksTraceStore::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

bool RocksTraceStore::ReadExpiry(const std::string& trace_id, std::optional<int64_t>* expires_ns,
                                 std::string* record) {
  rocksdb::PinnableSlice value;
  const std::string key = RecordKey(trace_id);
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), key, &value);
  if (s.IsNotFound()) {
    expires_ns->reset();
    return true;
  }
  if (!s.ok()) {
    Fail("cannot read " + key, s.ToString());
    return false;
  }
  if (value.size() < kTimeBytes) {
    Fail("cannot read " + key, "a record of " + std::to_string(value.size()) + " bytes");
    return false;
  }
  *expires_ns = DecodeInt64(value.data());
  if (record != nullptr) record->assign(value.data() + kTimeBytes, value.size() - kTimeBytes);
  return true;
}

void RocksTraceStore::Put(const std::string& trace_id, std::string_view record,
                          int64_t expires_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  PutLocked(trace_id, record, expires_ns, std::nullopt);
}

void RocksTraceStore::Put(const std::string& trace_id, std::string_view record, int64_t expires_ns,
                          int64_t changelog_offset) {
  std::lock_guard<std::mutex> lock(mu_);
  PutLocked(trace_id, record, expires_ns, changelog_offset);
}

void RocksTraceStore::PutLocked(const std::string& trace_id, std::string_view record,
                                int64_t expires_ns, std::optional<int64_t> changelog_offset) {
  std::optional<int64_t> old;
  if (!ReadExpiry(trace_id, &old)) return;
  rocksdb::WriteBatch batch;
  if (old) batch.Delete(ExpiryKey(*old, trace_id));
  std::string value = EncodeInt64(expires_ns);
  value.append(record);
  batch.Put(RecordKey(trace_id), value);
  const std::string expiry_key = ExpiryKey(expires_ns, trace_id);
  batch.Put(expiry_key, rocksdb::Slice());
  if (changelog_offset) batch.Put(ToSlice(kChangelogOffsetKey), EncodeInt64(*changelog_offset));
  // No sync: what the last writes before a crash lose is re-applied from the changelog.
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) {
    Fail("cannot write " + RecordKey(trace_id), s.ToString());
    return;
  }
  if (!old) ++count_;
  if (expiry_key < expiry_scan_from_) expiry_scan_from_ = expiry_key;
  if (changelog_offset) changelog_offset_ = *changelog_offset;
}

std::optional<std::string> RocksTraceStore::Get(const std::string& trace_id) {
  rocksdb::PinnableSlice value;
  const std::string key = RecordKey(trace_id);
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), key, &value);
  if (s.IsNotFound()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.ok()) {
    Fail("cannot read " + key, s.ToString());
    return std::nullopt;
  }
  if (value.size() < kTimeBytes) {
    Fail("cannot read " + key, "a record of " + std::to_string(value.size()) + " bytes");
    return std::nullopt;
  }
  return std::string(value.data() + kTimeBytes, value.size() - kTimeBytes);
}

void RocksTraceStore::Delete(const std::string& trace_id) {
  std::lock_guard<std::mutex> lock(mu_);
  DeleteLocked(trace_id, std::nullopt);
}

void RocksTraceStore::Delete(const std::string& trace_id, int64_t changelog_offset) {
  std::lock_guard<std::mutex> lock(mu_);
  DeleteLocked(trace_id, changelog_offset);
}

void RocksTraceStore::DeleteLocked(const std::string& trace_id,
                                   std::optional<int64_t> changelog_offset) {
  std::optional<int64_t> old;
  if (!ReadExpiry(trace_id, &old)) return;
  if (!old && !changelog_offset) return;
  rocksdb::WriteBatch batch;
  if (old) {
    batch.Delete(RecordKey(trace_id));
    batch.Delete(ExpiryKey(*old, trace_id));
  }
  if (changelog_offset) batch.Put(ToSlice(kChangelogOffsetKey), EncodeInt64(*changelog_offset));
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) {
    Fail("cannot delete " + RecordKey(trace_id), s.ToString());
    return;
  }
  if (old) --count_;
  if (changelog_offset) changelog_offset_ = *changelog_offset;
}

std::vector<std::pair<std::string, std::string>> RocksTraceStore::TakeExpired(int64_t now_ns,
                                                                              size_t max) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  if (max == 0) return out;
  rocksdb::ReadOptions ro;
  const rocksdb::Slice lower = expiry_scan_from_;
  const rocksdb::Slice upper = ToSlice(kExpiryEnd);
  ro.iterate_lower_bound = &lower;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  rocksdb::WriteBatch batch;
  std::string last;
  uint64_t taken = 0;
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() < kExpiryPrefix.size() + kTimeBytes) {
      // Not one of ours: drop it rather than stop every later scan on it.
      batch.Delete(key);
      last = key.ToString();
      continue;
    }
    const int64_t expires_ns = DecodeInt64(key.data() + kExpiryPrefix.size());
    if (expires_ns > now_ns || out.size() >= max) break;
    std::string trace_id(key.data() + kExpiryPrefix.size() + kTimeBytes,
                         key.size() - kExpiryPrefix.size() - kTimeBytes);
    std::optional<int64_t> stored;
    std::string record;
    if (!ReadExpiry(trace_id, &stored, &record)) return {};
    // An index entry whose record has moved on (or gone) is stale: it goes, the record stays.
    if (stored && *stored == expires_ns) {
      batch.Delete(RecordKey(trace_id));
      out.emplace_back(std::move(trace_id), std::move(record));
      ++taken;
    }
    batch.Delete(key);
    last = key.ToString();
  }
  if (!it->status().ok()) {
    Fail("cannot scan the expiry index", it->status().ToString());
    return {};
  }
  it.reset();  // before expiry_scan_from_, which holds its lower bound, changes
  if (batch.Count() == 0) return out;
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) {
    Fail("cannot delete expired records", s.ToString());
    return {};
  }
  count_ -= std::min(count_, taken);
  // Every entry up to `last` is gone: the next scan starts just after it.
  expiry_scan_from_ = last;
  expiry_scan_from_.push_back('\0');
  return out;
}

uint64_t RocksTraceStore::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

int64_t RocksTraceStore::changelog_offset() {
  std::lock_guard<std::mutex> lock(mu_);
  return changelog_offset_;
}

void RocksTraceStore::set_changelog_offset(int64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  rocksdb::Status s =
      db_->Put(rocksdb::WriteOptions(), ToSlice(kChangelogOffsetKey), EncodeInt64(offset));
  if (!s.ok()) {
    Fail("cannot write " + std::string(kChangelogOffsetKey), s.ToString());
    return;
  }
  changelog_offset_ = offset;
}

void RocksTraceStore::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  rocksdb::WriteBatch batch;
  batch.DeleteRange(ToSlice(kRecordPrefix), ToSlice(kRecordEnd));
  batch.DeleteRange(ToSlice(kExpiryPrefix), ToSlice(kExpiryEnd));
  batch.Delete(ToSlice(kChangelogOffsetKey));
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) {
    Fail("cannot clear", s.ToString());
    return;
  }
  count_ = 0;
  changelog_offset_ = -1;
  expiry_scan_from_ = std::string(kExpiryPrefix);
  // The records' bytes go now, not whenever compaction reaches them.
  s = db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr);
  if (!s.ok()) Fail("cannot compact after clearing", s.ToString());
}

void RocksTraceStore::Compact() {
  std::lock_guard<std::mutex> lock(mu_);
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  rocksdb::Status s = db_->CompactRange(co, nullptr, nullptr);
  if (!s.ok()) Fail("cannot compact", s.ToString());
}

uint64_t RocksTraceStore::disk_bytes() {
  uint64_t sst = 0;
  db_->GetIntProperty("rocksdb.total-sst-files-size", &sst);
  uint64_t wal = 0;
  rocksdb::VectorLogPtr files;
  if (db_->GetSortedWalFiles(files).ok()) {
    for (const auto& f : files) {
      if (f->Type() == rocksdb::kAliveLogFile) wal += f->SizeFileBytes();
    }
  }
  return sst + wal;
}

uint64_t RocksTraceStore::memory_bytes() {
  uint64_t total = 0;
  for (const char* property : {"rocksdb.cur-size-all-mem-tables",
                               "rocksdb.estimate-table-readers-mem", "rocksdb.block-cache-usage"}) {
    uint64_t v = 0;
    if (db_->GetIntProperty(property, &v)) total += v;
  }
  return total;
}

}  // namespace triaged
