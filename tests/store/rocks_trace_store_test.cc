#include "store/rocks_trace_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "rules/trace_store.h"

namespace triaged {
namespace {

// The trace ids of what TakeExpired returned.
std::vector<std::string> Ids(const std::vector<std::pair<std::string, std::string>>& taken) {
  std::vector<std::string> ids;
  for (const auto& [id, record] : taken) ids.push_back(id);
  return ids;
}

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::UnorderedElementsAre;

// A fresh directory under $TMPDIR, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/rocks_trace_store_test.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << pattern;
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<RocksTraceStore> OpenOrDie(const std::string& dir) {
  auto store = RocksTraceStore::Open(dir);
  if (!store.ok()) {
    ADD_FAILURE() << store.error().message;
    return nullptr;
  }
  return std::move(*store);
}

// ---- The TraceStore contract, against both implementations ---------------------------------

struct MemoryFactory {
  std::unique_ptr<TraceStore> Make() { return std::make_unique<MemoryTraceStore>(); }
};

struct RocksFactory {
  TempDir dir;
  std::unique_ptr<TraceStore> Make() { return OpenOrDie(dir.path() + "/store"); }
};

template <typename Factory>
class TraceStoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = factory_.Make();
    ASSERT_NE(store_, nullptr);
  }
  Factory factory_;
  std::unique_ptr<TraceStore> store_;
};

class FactoryNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, MemoryFactory>) return "memory";
    return "rocksdb";
  }
};

using Factories = ::testing::Types<MemoryFactory, RocksFactory>;
TYPED_TEST_SUITE(TraceStoreContractTest, Factories, FactoryNames);

TYPED_TEST(TraceStoreContractTest, PutGetReplaceDelete) {
  TraceStore& s = *this->store_;
  EXPECT_EQ(s.Get("a"), std::nullopt);
  s.Put("a", "record a", 100);
  s.Put("b", "record b", 200);
  EXPECT_THAT(s.Get("a"), Optional(std::string("record a")));
  EXPECT_THAT(s.Get("b"), Optional(std::string("record b")));
  EXPECT_EQ(s.size(), 2u);

  s.Put("a", "record a, again", 150);
  EXPECT_THAT(s.Get("a"), Optional(std::string("record a, again")));
  EXPECT_EQ(s.size(), 2u);

  s.Delete("a");
  EXPECT_EQ(s.Get("a"), std::nullopt);
  EXPECT_THAT(s.Get("b"), Optional(std::string("record b")));
  EXPECT_EQ(s.size(), 1u);
  s.Delete("a");  // absent: nothing happens
  s.Delete("never");
  EXPECT_EQ(s.size(), 1u);
}

TYPED_TEST(TraceStoreContractTest, RecordsAreBytes) {
  TraceStore& s = *this->store_;
  const std::string binary("\0\x01\xff{\"k\":\"v\"}\0", 13);
  const std::string id("id\0with nul", 11);
  s.Put(id, binary, 5);
  s.Put("empty", "", 5);
  EXPECT_THAT(s.Get(id), Optional(binary));
  EXPECT_THAT(s.Get("empty"), Optional(std::string()));
  EXPECT_EQ(s.Get(std::string("id")), std::nullopt);
  EXPECT_THAT(s.TakeExpired(5, 10),
              UnorderedElementsAre(std::pair<std::string, std::string>(id, binary),
                                   std::pair<std::string, std::string>("empty", "")));
}

TYPED_TEST(TraceStoreContractTest, TakeExpiredEarliestFirstUpToNowInclusive) {
  TraceStore& s = *this->store_;
  s.Put("c", "c", 300);
  s.Put("a", "a", 100);
  s.Put("d", "d", 400);
  s.Put("b", "b", 200);
  EXPECT_THAT(Ids(s.TakeExpired(99, 10)), IsEmpty());
  EXPECT_THAT(Ids(s.TakeExpired(300, 10)), ElementsAre("a", "b", "c"));
  EXPECT_EQ(s.Get("a"), std::nullopt);
  EXPECT_EQ(s.Get("c"), std::nullopt);
  EXPECT_THAT(s.Get("d"), Optional(std::string("d")));
  EXPECT_EQ(s.size(), 1u);
  EXPECT_THAT(Ids(s.TakeExpired(300, 10)), IsEmpty());
  EXPECT_THAT(Ids(s.TakeExpired(400, 10)), ElementsAre("d"));
  EXPECT_EQ(s.size(), 0u);
}

TYPED_TEST(TraceStoreContractTest, TakeExpiredAtMostMax) {
  TraceStore& s = *this->store_;
  for (int i = 0; i < 5; ++i) s.Put("t" + std::to_string(i), "r", 10 * (5 - i));
  EXPECT_THAT(Ids(s.TakeExpired(1000, 0)), IsEmpty());
  EXPECT_THAT(Ids(s.TakeExpired(1000, 2)), ElementsAre("t4", "t3"));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_THAT(Ids(s.TakeExpired(1000, 2)), ElementsAre("t2", "t1"));
  EXPECT_THAT(Ids(s.TakeExpired(1000, 2)), ElementsAre("t0"));
  EXPECT_THAT(Ids(s.TakeExpired(1000, 2)), IsEmpty());
}

TYPED_TEST(TraceStoreContractTest, ReplacedRecordsOldExpiryDoesNotFire) {
  TraceStore& s = *this->store_;
  s.Put("a", "first", 10);
  s.Put("a", "second", 100);
  EXPECT_THAT(Ids(s.TakeExpired(50, 10)), IsEmpty());
  EXPECT_THAT(s.Get("a"), Optional(std::string("second")));
  EXPECT_EQ(s.size(), 1u);
  // Moved earlier too.
  s.Put("a", "third", 20);
  EXPECT_THAT(Ids(s.TakeExpired(50, 10)), ElementsAre("a"));
  EXPECT_THAT(Ids(s.TakeExpired(1000, 10)), IsEmpty());
  EXPECT_EQ(s.size(), 0u);
}

TYPED_TEST(TraceStoreContractTest, DeletedRecordNeverExpires) {
  TraceStore& s = *this->store_;
  s.Put("a", "a", 10);
  s.Put("b", "b", 20);
  s.Delete("a");
  EXPECT_THAT(Ids(s.TakeExpired(100, 10)), ElementsAre("b"));
}

TYPED_TEST(TraceStoreContractTest, EarlierRecordAfterATakeStillExpires) {
  TraceStore& s = *this->store_;
  s.Put("a", "a", 10);
  s.Put("b", "b", 20);
  EXPECT_THAT(Ids(s.TakeExpired(10, 10)), ElementsAre("a"));
  // Expires before what was already taken.
  s.Put("c", "c", 5);
  EXPECT_THAT(Ids(s.TakeExpired(30, 10)), ElementsAre("c", "b"));
}

TYPED_TEST(TraceStoreContractTest, NegativeAndExtremeTimesKeepTheirOrder) {
  TraceStore& s = *this->store_;
  s.Put("max", "r", INT64_MAX);
  s.Put("pos", "r", 3);
  s.Put("neg", "r", -5);
  s.Put("min", "r", INT64_MIN);
  s.Put("zero", "r", 0);
  EXPECT_THAT(Ids(s.TakeExpired(0, 10)), ElementsAre("min", "neg", "zero"));
  EXPECT_THAT(Ids(s.TakeExpired(INT64_MAX, 10)), ElementsAre("pos", "max"));
}

// ---- RocksDB only ------------------------------------------------------------------------

TEST(RocksTraceStoreTest, OpenCreatesParentDirectories) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/a/b/c";
  auto store = OpenOrDie(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  EXPECT_EQ(store->dir(), dir);
  EXPECT_EQ(store->size(), 0u);
  EXPECT_EQ(store->changelog_offset(), -1);
  EXPECT_EQ(store->error(), std::nullopt);
}

TEST(RocksTraceStoreTest, OpenFailsNamingTheDirectory) {
  TempDir tmp;
  const std::string file = tmp.path() + "/file";
  std::ofstream(file) << "not a directory";
  auto store = RocksTraceStore::Open(file + "/store");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().reason, "trace_store");
  EXPECT_THAT(store.error().message, ::testing::HasSubstr(file + "/store"));
  EXPECT_THAT(store.error().message, ::testing::HasSubstr("cannot create the directory"));
}

TEST(RocksTraceStoreTest, SecondOpenOfTheSameDirectoryFails) {
  TempDir tmp;
  auto first = OpenOrDie(tmp.path());
  ASSERT_NE(first, nullptr);
  auto second = RocksTraceStore::Open(tmp.path());
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.error().message, ::testing::HasSubstr("trace store " + tmp.path()));
  EXPECT_THAT(second.error().message, ::testing::HasSubstr("LOCK"));
  // Closing the first releases it.
  first.reset();
  EXPECT_NE(OpenOrDie(tmp.path()), nullptr);
}

TEST(RocksTraceStoreTest, RecordsExpiryAndSizeSurviveReopen) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.path());
    ASSERT_NE(s, nullptr);
    s->Put("a", "record a", 100);
    s->Put("b", "record b", 200);
    s->Put("c", "record c", 300);
    s->Put("b", "record b2", 50);
    s->Delete("c");
  }
  auto s = OpenOrDie(tmp.path());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->size(), 2u);
  EXPECT_THAT(s->Get("b"), Optional(std::string("record b2")));
  EXPECT_EQ(s->Get("c"), std::nullopt);
  EXPECT_THAT(Ids(s->TakeExpired(150, 10)), ElementsAre("b", "a"));
  EXPECT_EQ(s->size(), 0u);
}

TEST(RocksTraceStoreTest, ChangelogOffsetPersistsAcrossReopen) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.path());
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->changelog_offset(), -1);
    s->set_changelog_offset(41);
    EXPECT_EQ(s->changelog_offset(), 41);
  }
  {
    auto s = OpenOrDie(tmp.path());
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->changelog_offset(), 41);
    s->set_changelog_offset(-1);
  }
  auto s = OpenOrDie(tmp.path());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->changelog_offset(), -1);
}

TEST(RocksTraceStoreTest, ChangelogOffsetIsWrittenWithTheRecord) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.path());
    ASSERT_NE(s, nullptr);
    s->Put("a", "record a", 100, 7);
    EXPECT_EQ(s->changelog_offset(), 7);
    s->Put("b", "record b", 100);  // no offset: leaves it alone
    EXPECT_EQ(s->changelog_offset(), 7);
    s->Put("c", "record c", 100, 9);
    s->Delete("c", 10);
    EXPECT_EQ(s->changelog_offset(), 10);
    s->Delete("absent", 12);  // a tombstone for a record never stored still moves it
    EXPECT_EQ(s->changelog_offset(), 12);
    s->Delete("b");
    EXPECT_EQ(s->changelog_offset(), 12);
  }
  auto s = OpenOrDie(tmp.path());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->changelog_offset(), 12);
  EXPECT_THAT(s->Get("a"), Optional(std::string("record a")));
  EXPECT_EQ(s->Get("b"), std::nullopt);
  EXPECT_EQ(s->Get("c"), std::nullopt);
  EXPECT_EQ(s->size(), 1u);
}

TEST(RocksTraceStoreTest, ClearDropsEverythingAndForgetsTheOffset) {
  TempDir tmp;
  {
    auto s = OpenOrDie(tmp.path());
    ASSERT_NE(s, nullptr);
    for (int i = 0; i < 1000; ++i) s->Put("t" + std::to_string(i), std::string(500, 'x'), i, i);
    EXPECT_EQ(s->size(), 1000u);
    s->Clear();
    EXPECT_EQ(s->size(), 0u);
    EXPECT_EQ(s->changelog_offset(), -1);
    EXPECT_EQ(s->Get("t5"), std::nullopt);
    EXPECT_THAT(Ids(s->TakeExpired(INT64_MAX, 10)), IsEmpty());
    // Usable afterwards, and a rebuilt record expires as any other.
    s->Put("t5", "again", 3, 0);
    EXPECT_EQ(s->size(), 1u);
  }
  auto s = OpenOrDie(tmp.path());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->size(), 1u);
  EXPECT_EQ(s->changelog_offset(), 0);
  EXPECT_EQ(s->Get("t6"), std::nullopt);
  EXPECT_THAT(Ids(s->TakeExpired(INT64_MAX, 10)), ElementsAre("t5"));
  EXPECT_EQ(s->error(), std::nullopt);
}

TEST(RocksTraceStoreTest, CompressesTheRecords) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.path());
  ASSERT_NE(s, nullptr);
  EXPECT_THAT(s->compression(),
              ::testing::AnyOf("LZ4 (ZSTD at the bottommost level)", "ZSTD", "LZ4"));
}

// ~2 KB of JSON shaped like a closed LLM trace: random ids and numbers, a shared system
// prompt, a per-trace user text from a vocabulary, span names and attributes from small sets.
std::string TraceRecord(std::mt19937_64& rng, const std::string& trace_id) {
  static const char* kWords[] = {
      "the",     "order",   "refund",   "account", "password", "shipping", "invoice", "please",
      "cannot",  "login",   "help",     "billing", "address",  "change",   "cancel",  "item",
      "arrived", "damaged", "tracking", "number",  "support",  "agent",    "why",     "when",
      "my",      "is",      "not",      "working", "error",    "payment",  "card",    "declined"};
  static const char* kSpans[] = {"retrieve", "rerank", "llm.chat", "tool.search", "guardrail"};
  auto hex = [&](int n) {
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < n; ++i) out += kHex[rng() % 16];
    return out;
  };
  std::string user;
  for (int i = 0; i < 50; ++i) {
    user += kWords[rng() % (sizeof(kWords) / sizeof(kWords[0]))];
    user += ' ';
  }
  const uint64_t start = 1700000000000000000ull + rng() % 1000000000000ull;
  std::string r = "{\"trace_id\":\"" + trace_id + "\",\"service\":\"support-bot\",\"spans\":[";
  for (int i = 0; i < 5; ++i) {
    if (i > 0) r += ',';
    r += "{\"span_id\":\"" + hex(16) + "\",\"name\":\"" + kSpans[rng() % 5] +
         "\",\"start_ns\":" + std::to_string(start + rng() % 1000000000) +
         ",\"end_ns\":" + std::to_string(start + 1000000000 + rng() % 1000000000) +
         ",\"attributes\":{\"llm.model\":\"gpt-4o-mini\",\"llm.tokens.prompt\":" +
         std::to_string(rng() % 4000) +
         ",\"llm.tokens.completion\":" + std::to_string(rng() % 800) + ",\"status\":\"ok\"}}";
  }
  r += "],\"input\":{\"system\":\"You are a helpful support assistant for an online shop. "
       "Answer politely, cite the order number, never reveal internal notes, escalate refunds "
       "above 100 EUR to a human agent.\",\"user\":\"" +
       user + "\"},\"output\":\"" + user.substr(0, 160) +
       "\",\"annotations\":[{\"name\":\"user_rating\",\"value\":" + std::to_string(rng() % 5) +
       ",\"source\":\"human\"}]}";
  return r;
}

TEST(RocksTraceStoreTest, FortyThousandTwoKilobyteRecordsCompress) {
  TempDir tmp;
  auto s = OpenOrDie(tmp.path());
  ASSERT_NE(s, nullptr);
  std::mt19937_64 rng(42);
  constexpr int kRecords = 40000;
  uint64_t raw = 0;
  std::vector<std::string> samples;
  for (int i = 0; i < kRecords; ++i) {
    char id[33];
    std::snprintf(id, sizeof id, "%032x", static_cast<unsigned>(i * 2654435761u));
    std::string record = TraceRecord(rng, id);
    raw += record.size();
    if (i % 10007 == 0) samples.push_back(std::string(id) + '\n' + record);
    s->Put(id, record, int64_t{1000} + i % 977, i);
  }
  EXPECT_EQ(s->size(), static_cast<uint64_t>(kRecords));
  const double mean = static_cast<double>(raw) / kRecords;
  EXPECT_GT(mean, 1800);
  EXPECT_LT(mean, 2600);
  // Bounded by the options (8 MiB block cache, 2 x 4 MiB memtables), whatever the count.
  const uint64_t memory = s->memory_bytes();
  EXPECT_LT(memory, uint64_t{24} << 20);
  const uint64_t written = s->disk_bytes();
  EXPECT_LT(static_cast<double>(written), 0.6 * static_cast<double>(raw))
      << written << " bytes on disk for " << raw << " raw";
  s->Compact();
  const uint64_t compacted = s->disk_bytes();
  EXPECT_LT(static_cast<double>(compacted), 0.6 * static_cast<double>(raw));
  std::printf(
      "%s: %d records, %.0f raw bytes each; on disk %.0f bytes each as written, %.0f "
      "after a full compaction; %.1f MiB in memory\n",
      s->compression().c_str(), kRecords, mean, static_cast<double>(written) / kRecords,
      static_cast<double>(compacted) / kRecords, static_cast<double>(memory) / (1 << 20));
  for (const auto& sample : samples) {
    const size_t nl = sample.find('\n');
    EXPECT_THAT(s->Get(sample.substr(0, nl)), Optional(sample.substr(nl + 1)));
  }
  EXPECT_EQ(s->changelog_offset(), kRecords - 1);
  EXPECT_EQ(s->TakeExpired(1000, static_cast<size_t>(kRecords)).size(),
            static_cast<size_t>((kRecords + 976) / 977));
  EXPECT_EQ(s->error(), std::nullopt);
}

}  // namespace
}  // namespace triaged
