// Security basics against the real broker's SASL_PLAINTEXT listener (PLAIN, user "triaged";
// scripts/kafka-dev.sh sasl-status): the settings pass through kafka.properties, a wrong
// password is a clear error and an exit, not a hang, and the password is never in a log line,
// /v1/rules or /metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>

#include "tests/integration/integration_util.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)
using ::testing::HasSubstr;
using ::testing::Not;

std::string SaslBootstrap() {
  if (std::getenv("KAFKA_BOOTSTRAP") != nullptr) return "";  // a broker of the user's: unknown
  std::string out = Shell(SourcePath("scripts/kafka-dev.sh") + " sasl-status 2>/dev/null");
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The example rules on the SASL listener; the password comes from the environment, as a real
// deployment's secret would.
std::string SaslConfig(const Topics& t) {
  std::string text = ConfigFor(t, SaslBootstrap());
  text.replace(text.find("\n  group_id:"), 0,
               "\n  properties:\n    security.protocol: SASL_PLAINTEXT\n"
               "    sasl.mechanisms: PLAIN\n    sasl.username: triaged\n"
               "    sasl.password: ${TRIAGED_TEST_SASL_PASSWORD}");
  return text;
}

class Security : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Bootstrap().empty() || SaslBootstrap().empty()) {
      GTEST_SKIP() << "no SASL listener (scripts/kafka-dev.sh start)";
    }
  }
};

TEST_F(Security, SaslPlainRoutesTheCorpusAndNeverShowsThePassword) {
  const std::string password = "triaged-dev-secret";  // kafka-dev.sh's default
  setenv("TRIAGED_TEST_SASL_PASSWORD", password.c_str(), 1);
  RoutedExample x;
  ASSERT_NO_FATAL_FAILURE(RouteExample(x, [](const Topics& t) { return SaslConfig(t); }));
  EXPECT_THAT(ReadFile(x.log), HasSubstr(SaslBootstrap()));
  EXPECT_THAT(Get(x.port, "/v1/rules"), Not(HasSubstr(password)));
  EXPECT_THAT(Get(x.port, "/metrics"), Not(HasSubstr(password)));
  EXPECT_EQ(x.daemon->Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(x.log);
  EXPECT_THAT(ReadFile(x.log), Not(HasSubstr(password)));
}

TEST_F(Security, AWrongPasswordIsAClearErrorNotAHang) {
  const std::string password = "not-the-password-42";
  setenv("TRIAGED_TEST_SASL_PASSWORD", password.c_str(), 1);
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", SaslConfig(t));
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  EXPECT_EQ(daemon.Wait(std::chrono::seconds(30)), 1) << ReadFile(log);
  const std::string text = ReadFile(log);
  EXPECT_THAT(text, HasSubstr("\"msg\":\"authentication failed; check the sasl.* / ssl.* "
                              "settings in kafka.properties\""));
  EXPECT_THAT(text, HasSubstr("Invalid username or password"));
  EXPECT_THAT(text, Not(HasSubstr(password)));
}

}  // namespace
}  // namespace triaged
