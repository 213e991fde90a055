#include "daemon/status.h"

#include <gtest/gtest.h>

#include <memory>

#include "daemon/metrics.h"

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

}  // namespace
}  // namespace triaged
