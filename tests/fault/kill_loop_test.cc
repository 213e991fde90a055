// kill -9 of the daemon at pseudo-random points, 20 times, while paced traffic flows into the
// real broker; after the last restart the routed topics must hold every (trace, rule,
// destination) that `replay` routes for the same traffic: exactly once with
// `guarantee: exactly_once`, at least once (duplicates counted and reported) by default. Once
// more in exactly-once with `inputs.repartition: always`, every event taking the hop through the
// repartition topic inside the transactions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "tests/integration/integration_util.h"
#include "tests/param_name.h"
#include "tests/tools/cli_test_util.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)

// triaged_routed_total summed over its labels, from the daemon's /metrics.
double RoutedSoFar(const std::string& port) {
  double sum = 0;
  for (const std::string& line : Lines(Get(port, "/metrics"))) {
    if (line.rfind("triaged_routed_total{", 0) == 0) sum += std::stod(line.substr(line.rfind(' ')));
  }
  return sum;
}

class KillLoop : public ::testing::TestWithParam<std::string> {};

TEST_P(KillLoop, TwentyKillsLoseNothing) {
  if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  const std::string param = GetParam();
  const std::string guarantee = param.substr(0, param.find('+'));
  const std::string repartition =
      param.find('+') == std::string::npos ? "auto" : param.substr(param.find('+') + 1);
  TempDir dir;
  Topics t;
  CreateTopics(t);
  std::string config_text = WithGuarantee(WithoutLimits(ConfigFor(t)), guarantee);
  config_text.replace(config_text.find("\ninputs:\n") + 9, 0,
                      "  repartition: " + repartition + "\n");
  const std::string config = dir.Write("rules.yaml", config_text);
  Traffic traffic(dir, t, "--events 6000 --seed 20 --invalid 0.005 --rate 300");  // ~20 s
  ASSERT_EQ(traffic.error(), "");
  const size_t invalid = traffic.invalid();
  const RouteSet want = Expected(config, traffic.file());
  ASSERT_GT(want.size(), 300u);

  traffic.StartPaced(Bootstrap());
  // Kill points: after 1..40 more routed items of this process, or 3 s, whichever is first.
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
  constexpr int kCycles = 20;
  int killed = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    const double after = 1 + static_cast<double>((seed >> 33) % 40);
    const std::string log = dir.path() + "/cycle" + std::to_string(cycle) + ".log";
    Daemon daemon(config, log);
    const std::string port = AdminPort(log);
    ASSERT_FALSE(port.empty()) << ReadFile(log);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (RoutedSoFar(port) < after && std::chrono::steady_clock::now() < deadline) {
      usleep(20'000);
    }
    if (daemon.Stop(SIGKILL, std::chrono::seconds(10)) == -1) ++killed;
  }
  EXPECT_EQ(killed, kCycles);
  EXPECT_EQ(traffic.WaitPaced(), 0) << traffic.Log();

  const std::string log = dir.path() + "/last.log";
  Daemon daemon(config, log);
  size_t duplicates = 0;
  const RouteKeys got = WaitForUniqueRoutes(t, want, &duplicates, invalid);
  const RouteKeys expected(want.begin(), want.end());
  size_t lost = 0;
  for (const auto& k : expected) lost += got.count(k) == 0 ? 1 : 0;
  std::cerr << param << ": " << kCycles << " kill -9 cycles, " << expected.size()
            << " routes expected, " << lost << " lost, " << duplicates << " duplicated\n";
  RecordProperty("cycles", kCycles);
  RecordProperty("lost", static_cast<int>(lost));
  RecordProperty("duplicates", static_cast<int>(duplicates));
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(got, expected) << ReadFile(log);
  std::vector<Consumed> dead;
  WaitForRoutes(t, want.size(), invalid, &dead);
  if (guarantee == "exactly_once") {
    EXPECT_EQ(duplicates, 0u);
    EXPECT_EQ(dead.size(), invalid);
  } else {
    EXPECT_GE(dead.size(), invalid);
  }
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(60)), 0) << ReadFile(log);
}

INSTANTIATE_TEST_SUITE_P(Guarantees, KillLoop,
                         ::testing::Values("at_least_once", "exactly_once", "exactly_once+always"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return ::triaged::testing::ParamName(p.param);
                         });

}  // namespace
}  // namespace triaged
