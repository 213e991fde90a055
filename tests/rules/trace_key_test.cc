#include "rules/trace_key.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <unordered_set>
#include <utility>
#include <vector>

namespace triaged {
namespace {

TEST(TraceKey, PacksLowercaseHexAndGivesTheIdBack) {
  const std::string id = "4bf92f3577b34da6a3ce929d0e0e4736";
  TraceKey key(id);
  EXPECT_TRUE(key.packed());
  EXPECT_EQ(key.str(), id);
  EXPECT_EQ(key, TraceKey(std::string(id)));
  EXPECT_NE(key, TraceKey("4bf92f3577b34da6a3ce929d0e0e4737"));
  // Only the second half differs, or only the first.
  EXPECT_NE(key, TraceKey("4bf92f3577b34da7a3ce929d0e0e4736"));
}

// Every byte at every place of a 32-digit id: packed exactly when it is a lowercase hex digit,
// and the id always comes back as it was.
TEST(TraceKey, PacksEveryLowercaseDigitAtEveryPlaceAndNothingElse) {
  const std::string base = "0123456789abcdef0f1e2d3c4b5a6978";
  for (size_t at = 0; at < base.size(); ++at) {
    for (int byte = 0; byte < 256; ++byte) {
      std::string id = base;
      id[at] = static_cast<char>(byte);
      const bool digit = (byte >= '0' && byte <= '9') || (byte >= 'a' && byte <= 'f');
      const TraceKey key(id);
      ASSERT_EQ(key.packed(), digit) << "byte " << byte << " at " << at;
      ASSERT_EQ(key.str(), id) << "byte " << byte << " at " << at;
    }
  }
}

TEST(TraceKey, KeepsEveryOtherIdAsText) {
  for (const std::string& id :
       {std::string(), std::string("t-1"), std::string("4BF92F3577B34DA6A3CE929D0E0E4736"),
        std::string("4bf92f3577b34da6a3ce929d0e0e473"),    // 31 digits
        std::string("4bf92f3577b34da6a3ce929d0e0e47360"),  // 33 digits
        std::string("4bf92f3577b34da6a3ce929d0e0e473g"),
        std::string("0f8fad5b-d9cb-469f-a165-70867728950e"), std::string("a\0b", 3)}) {
    TraceKey key(id);
    EXPECT_FALSE(key.packed()) << id;
    EXPECT_EQ(key.str(), id);
  }
  // An uppercase id is another id than its lowercase form (ids are compared as given).
  EXPECT_NE(TraceKey("4BF92F3577B34DA6A3CE929D0E0E4736"),
            TraceKey("4bf92f3577b34da6a3ce929d0e0e4736"));
}

TEST(TraceKey, EqualityHashAndOrderAgreeWithTheText) {
  std::mt19937_64 rng(7);
  std::vector<std::string> ids;
  for (int i = 0; i < 2000; ++i) {
    char buf[33];
    snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
             static_cast<unsigned long long>(rng() % 4));  // many share a half
    ids.push_back(i % 5 == 0 ? std::string("id-") + buf : std::string(buf));
  }
  std::set<std::string> texts(ids.begin(), ids.end());
  std::set<TraceKey> keys(ids.begin(), ids.end());
  std::unordered_set<TraceKey, TraceKeyHash> hashed(ids.begin(), ids.end());
  EXPECT_EQ(keys.size(), texts.size());
  EXPECT_EQ(hashed.size(), texts.size());
  for (const std::string& id : ids) {
    EXPECT_EQ(TraceKey(id).hash(), TraceKey(id).hash());
    EXPECT_EQ(hashed.count(TraceKey(id)), 1u);
    EXPECT_EQ(keys.find(TraceKey(id))->str(), id);
  }
}

TEST(TraceKey, CopiesMovesAndAssignmentsKeepTheId) {
  const std::vector<std::string> ids = {"4bf92f3577b34da6a3ce929d0e0e4736", "t-1", "",
                                        std::string(200, 'x')};
  for (const std::string& id : ids) {
    TraceKey key(id);
    TraceKey copy(key);
    EXPECT_EQ(copy, key);
    EXPECT_EQ(copy.str(), id);
    TraceKey moved(std::move(copy));
    EXPECT_EQ(moved.str(), id);
    EXPECT_EQ(copy, TraceKey());  // a moved-from key is the empty id, still usable
    EXPECT_EQ(copy.str(), "");
    for (const std::string& other : ids) {
      TraceKey target(other);
      target = key;
      EXPECT_EQ(target.str(), id);
      EXPECT_EQ(target.packed(), key.packed());
      TraceKey moved_to(other);
      moved_to = TraceKey(id);
      EXPECT_EQ(moved_to, key);
    }
    key = key;  // NOLINT: self-assignment keeps the key
    EXPECT_EQ(key.str(), id);
  }
  EXPECT_EQ(sizeof(TraceKey), 3 * sizeof(void*));
}

}  // namespace
}  // namespace triaged
