// The real broker crashes (kill -9) while traffic flows and comes back on its data ten seconds
// later: the daemon stays up, /readyz turns unready and ready again, and nothing is lost — in
// exactly-once mode nothing is duplicated either. The test runs its own broker
// (scripts/kafka-dev.sh with a private KAFKA_DEV_DIR), so the shared one is never disturbed.
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

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  const size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// A broker of the test's own, stopped (and its data removed) at the end.
class OwnBroker {
 public:
  explicit OwnBroker(const std::string& dir)
      : env_("env -u KAFKA_BOOTSTRAP KAFKA_DEV_DIR=" + dir + " " +
             SourcePath("scripts/kafka-dev.sh")) {
    bootstrap_ = Trim(Shell(env_ + " start 2>/dev/null"));
  }
  ~OwnBroker() { Shell(env_ + " stop 2>/dev/null"); }
  const std::string& bootstrap() const { return bootstrap_; }
  bool Kill() { return std::system((env_ + " kill >/dev/null 2>&1").c_str()) == 0; }
  bool Resume() { return Trim(Shell(env_ + " resume 2>/dev/null")) == bootstrap_; }

 private:
  std::string env_;
  std::string bootstrap_;
};

// Polls /readyz until its status is (or is not) 200, with a deadline.
bool WaitForReadiness(const std::string& port, bool ready, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    Get(port, "/readyz", &status);
    if ((status == 200) == ready) return true;
    usleep(200'000);
  }
  return false;
}

class BrokerCrash : public ::testing::TestWithParam<std::string> {};

TEST_P(BrokerCrash, TheDaemonRidesItOutAndLosesNothing) {
  const std::string guarantee = GetParam();
  TempDir dir;
  OwnBroker broker(dir.path() + "/kafka");
  ASSERT_FALSE(broker.bootstrap().empty()) << "scripts/kafka-dev.sh start failed";
  const std::string boot = broker.bootstrap();
  Topics t;
  CreateTopics(t, boot);
  const std::string config =
      dir.Write("rules.yaml", WithGuarantee(WithoutLimits(ConfigFor(t, boot)), guarantee));
  Traffic traffic(dir, t, "--events 2000 --seed 8 --invalid 0.01 --rate 200");  // ~10 s
  ASSERT_EQ(traffic.error(), "");
  const size_t invalid = traffic.invalid();
  const RouteSet want = Expected(config, traffic.file());
  ASSERT_GT(want.size(), 50u);

  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  const std::string port = AdminPort(log);
  ASSERT_FALSE(port.empty()) << ReadFile(log);
  traffic.StartPaced(boot);
  WaitForRoutes(t, want.size() / 4, 0, nullptr, boot);

  ASSERT_TRUE(broker.Kill());
  EXPECT_TRUE(WaitForReadiness(port, false, std::chrono::seconds(30))) << ReadFile(log);
  ASSERT_TRUE(broker.Resume());
  EXPECT_TRUE(WaitForReadiness(port, true, std::chrono::seconds(90))) << ReadFile(log);
  // Its messages were queued while the broker was down and sent once it was back.
  EXPECT_EQ(traffic.WaitPaced(), 0) << traffic.Log();

  size_t duplicates = 0;
  const RouteKeys got = WaitForUniqueRoutes(t, want, &duplicates, invalid, boot);
  EXPECT_EQ(got, RouteKeys(want.begin(), want.end())) << ReadFile(log);
  std::cerr << guarantee << ": broker killed and resumed; " << want.size() << " routes expected, "
            << RouteKeys(want.begin(), want.end()).size() - got.size() << " lost, " << duplicates
            << " duplicated\n";
  RecordProperty("duplicates", static_cast<int>(duplicates));
  if (guarantee == "exactly_once") {
    EXPECT_EQ(duplicates, 0u);
    std::vector<Consumed> dead;
    WaitForRoutes(t, want.size(), invalid, &dead, boot);
    EXPECT_EQ(dead.size(), invalid);
  }
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(60)), 0) << ReadFile(log);
}

INSTANTIATE_TEST_SUITE_P(Guarantees, BrokerCrash,
                         ::testing::Values("at_least_once", "exactly_once"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return ::triaged::testing::ParamName(p.param);
                         });

}  // namespace
}  // namespace triaged
