#include "daemon/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <memory>

#include "daemon/metrics.h"
#include "rules/expr.h"

namespace triaged {
namespace {

TEST(StatusDocumentsTest, KnowsTheRuleNamesOfTheLastRules) {
  StatusDocuments status;
  EXPECT_FALSE(status.has_rule("errors"));
  RuleSet first;
  first.rules.emplace_back().name = "errors";
  status.SetRules(first);
  EXPECT_TRUE(status.has_rule("errors"));
  EXPECT_FALSE(status.has_rule("slow"));

  // After a reload the documents are rebuilt from the new config, and its names replace them.
  Config config;
  auto next = std::make_shared<RuleSet>();
  next->rules.emplace_back().name = "slow";
  config.rules = next;
  Metrics metrics{"0.1.0-test"};
  status.Rebuild(config, {}, StatusFacts{}, metrics);
  EXPECT_TRUE(status.has_rule("slow"));
  EXPECT_FALSE(status.has_rule("errors"));
}

TEST(StatusDocumentsTest, TheStatusDocumentWithoutRecentItemsIsTheSameButForThem) {
  Config config;
  auto rules = std::make_shared<RuleSet>();
  rules->rules.emplace_back().name = "errors";
  rules->destinations.emplace_back().name = "review";
  config.rules = rules;
  StatusDocuments status;
  Route route;
  route.trace_id = "trace-1";
  route.rule = &rules->rules[0];
  route.destination = &rules->destinations[0];
  status.Routed(route);
  Metrics metrics{"0.1.0-test"};
  status.Rebuild(config, {}, StatusFacts{}, metrics);

  const std::string full = status.status_json();
  const std::string without = status.status_json(/*with_recent=*/false);
  EXPECT_NE(full.find("\"trace_id\":\"trace-1\""), std::string::npos) << full;
  EXPECT_EQ(without.find("trace-1"), std::string::npos) << without;
  const size_t recent = full.find("\"recent\":[");
  ASSERT_NE(recent, std::string::npos);
  EXPECT_EQ(without, full.substr(0, recent) + "\"recent\":[]}");
}

TEST(StatusDocumentsTest, TheRulesDocumentHasTheFilter) {
  Config config;
  auto rules = std::make_shared<RuleSet>();
  config.rules = rules;
  Metrics metrics{"0.1.0-test"};
  StatusDocuments status;
  status.Rebuild(config, {}, StatusFacts{}, metrics);
  EXPECT_NE(status.rules_json().find("\"filter\":null"), std::string::npos) << status.rules_json();

  rules->filter_text = "trace.error";
  rules->filter = *CompileExpression(rules->filter_text);
  status.Rebuild(config, {}, StatusFacts{}, metrics);
  EXPECT_NE(status.rules_json().find("\"filter\":\"trace.error\""), std::string::npos)
      << status.rules_json();
}

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kT0 = 1'800'000'000 * kSecond;  // on a bucket boundary

TEST(RateHistoryTest, RatesPerSecondInTenSecondBucketsOldestFirst) {
  RateHistory history;
  EXPECT_TRUE(history.Rates().empty());
  // One sample a second: 5 per second for 20 s, then 1 per second for 10 s.
  uint64_t count = 0;
  for (int s = 0; s <= 30; ++s) {
    if (s > 0) count += s <= 20 ? 5 : 1;
    history.Sample(kT0 + s * kSecond, {{"a", count}});
  }
  auto rates = history.Rates();
  ASSERT_EQ(rates.size(), 1u);
  const std::vector<std::optional<double>>& a = rates.at("a");
  ASSERT_EQ(a.size(), RateHistory::kBuckets);
  // The latest sample (t0 + 30 s) opens the last bucket, which has no rate yet; the three
  // before it are the three 10 s buckets; everything earlier has no data.
  EXPECT_EQ(a[RateHistory::kBuckets - 1], std::nullopt);
  EXPECT_EQ(a[RateHistory::kBuckets - 2], 1.0);
  EXPECT_EQ(a[RateHistory::kBuckets - 3], 5.0);
  EXPECT_EQ(a[RateHistory::kBuckets - 4], 5.0);
  EXPECT_EQ(a[RateHistory::kBuckets - 5], std::nullopt);

  // Within a bucket, its rate so far.
  history.Sample(kT0 + 32 * kSecond, {{"a", count + 6}});
  EXPECT_EQ(history.Rates().at("a")[RateHistory::kBuckets - 1], 3.0);
}

TEST(RateHistoryTest, KeepsFifteenMinutesAndSeriesThatCome) {
  RateHistory history;
  for (int s = 0; s <= 1000; s += 10) {
    std::map<std::string, uint64_t> counts{{"old", static_cast<uint64_t>(s)}};
    if (s >= 900) counts["new"] = static_cast<uint64_t>(2 * (s - 900));
    history.Sample(kT0 + s * kSecond, counts);
  }
  auto rates = history.Rates();
  const auto& old = rates.at("old");
  ASSERT_EQ(old.size(), RateHistory::kBuckets);
  // The buckets of 110 s .. 1000 s are shown: every one but the last (the latest sample's) has a
  // rate; older samples are gone.
  for (size_t i = 0; i + 1 < RateHistory::kBuckets; ++i) EXPECT_EQ(old[i], 1.0) << i;
  const auto& fresh = rates.at("new");
  EXPECT_EQ(fresh[RateHistory::kBuckets - 2], 2.0);
  EXPECT_EQ(fresh[79], 2.0);  // 900 s, its first sample
  EXPECT_EQ(fresh[78], std::nullopt);
  // A counter that went down (a restart of its source) is no rate.
  history.Sample(kT0 + 1005 * kSecond, {{"old", 3}, {"new", 500}});
  EXPECT_EQ(history.Rates().at("old")[RateHistory::kBuckets - 1], std::nullopt);

  // A clock stepped back an hour starts the history again, rather than stalling it for an hour.
  history.Sample(kT0 - 3600 * kSecond, {{"old", 10}});
  history.Sample(kT0 - 3595 * kSecond, {{"old", 20}});
  rates = history.Rates();
  EXPECT_EQ(rates.at("old")[RateHistory::kBuckets - 1], 2.0);
  EXPECT_EQ(rates.at("old")[RateHistory::kBuckets - 2], std::nullopt);
  EXPECT_EQ(rates.count("new"), 0u);
}

TEST(StatusDocumentsTest, DestinationsShowRatesAndBudgetsAndTheTopDeadLetterReasons) {
  Config config;
  auto rules = std::make_shared<RuleSet>();
  auto& capped = rules->destinations.emplace_back();
  capped.name = "review";
  capped.limit = RateLimitSpec{100, 60 * kSecond};
  rules->destinations.emplace_back().name = "dataset";
  config.rules = rules;
  Metrics metrics{"0.1.0-test"};
  StatusDocuments status;
  StatusFacts facts;
  facts.budgets["review"] = {37.6, 100};
  for (int s = 0; s <= 10; ++s) {
    facts.now_ns = kT0 + s * kSecond;
    status.Rebuild(config, {}, facts, metrics);
    metrics.DeadLettered("invalid_json", 2);
  }
  metrics.DeadLettered("missing_trace_id");
  for (int i = 0; i < 6; ++i) metrics.DeadLettered("reason_" + std::to_string(i));
  status.Rebuild(config, {}, facts, metrics);

  rapidjson::Document doc;
  doc.Parse(status.status_json().c_str());
  ASSERT_FALSE(doc.HasParseError());
  const auto& review = doc["destinations"][0];
  EXPECT_EQ(review["limit"]["max"].GetUint64(), 100u);
  EXPECT_EQ(review["limit"]["per_seconds"].GetDouble(), 60.0);
  EXPECT_EQ(review["limit"]["budget_left"].GetUint64(), 37u);
  EXPECT_EQ(review["limit"]["budget"].GetUint64(), 100u);
  EXPECT_EQ(review["routed_per_second"].Size(), RateHistory::kBuckets);
  EXPECT_TRUE(doc["destinations"][1]["limit"].IsNull());
  EXPECT_EQ(doc["history"]["bucket_seconds"].GetInt(), 10);
  const auto& dead = doc["history"]["dead_letters_per_second"];
  ASSERT_EQ(dead.Size(), RateHistory::kBuckets);
  EXPECT_EQ(dead[RateHistory::kBuckets - 2].GetDouble(), 2.0);  // 20 in the 10 s bucket
  const auto& reasons = doc["dead_letter_reasons"];
  ASSERT_EQ(reasons.Size(), 5u);
  EXPECT_STREQ(reasons[0]["reason"].GetString(), "invalid_json");
  EXPECT_EQ(reasons[0]["count"].GetUint64(), 22u);
  EXPECT_EQ(reasons[1]["count"].GetUint64(), 1u);
}

}  // namespace
}  // namespace triaged
