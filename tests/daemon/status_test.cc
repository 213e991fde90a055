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

}  // namespace
}  // namespace triaged
