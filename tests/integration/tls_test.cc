// TLS against the real broker's SSL and SASL_SSL listeners (scripts/kafka-dev.sh tls-status: a
// throwaway CA made at start): the corpus routed over each, in both guarantees, exactly as
// replay routes it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "tests/integration/integration_util.h"
#include "tests/param_name.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)
using ::testing::HasSubstr;
using ::testing::Not;

// The broker's TLS listeners and the CA that signed its certificate; empty when unknown.
struct TlsListeners {
  std::string ssl, sasl_ssl, ca;
};

const TlsListeners& Tls() {
  static const TlsListeners tls = [] {
    TlsListeners out;
    // Unknown (empty) for a $KAFKA_BOOTSTRAP that is not kafka-dev.sh's broker.
    for (const std::string& line :
         Lines(Shell(SourcePath("scripts/kafka-dev.sh") + " tls-status 2>/dev/null"))) {
      const size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "ssl") out.ssl = value;
      if (key == "sasl_ssl") out.sasl_ssl = value;
      if (key == "ca") out.ca = value;
    }
    return out;
  }();
  return tls;
}

// The example rules on a TLS listener, trusting `ca`; with SASL/PLAIN on top when `sasl`.
std::string TlsConfig(const Topics& t, bool sasl, const std::string& ca = Tls().ca) {
  std::string text = ConfigFor(t, sasl ? Tls().sasl_ssl : Tls().ssl);
  std::string properties =
      "\n  properties:\n    security.protocol: " + std::string(sasl ? "SASL_SSL" : "SSL") +
      "\n    ssl.ca.location: " + ca;
  if (sasl) {
    properties +=
        "\n    sasl.mechanisms: PLAIN\n    sasl.username: triaged\n"
        "    sasl.password: triaged-dev-secret";  // kafka-dev.sh's default
  }
  text.replace(text.find("\n  group_id:"), 0, properties);
  return text;
}

bool HaveTls() { return !Bootstrap().empty() && !Tls().ssl.empty() && !Tls().sasl_ssl.empty(); }

class TlsRoutes : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!HaveTls()) GTEST_SKIP() << "no TLS listeners (scripts/kafka-dev.sh start)";
  }
  void RoutesTheCorpus(bool sasl) {
    RoutedExample x;
    ASSERT_NO_FATAL_FAILURE(RouteExample(
        x, [&](const Topics& t) { return WithGuarantee(TlsConfig(t, sasl), GetParam()); }));
    EXPECT_THAT(ReadFile(x.log), HasSubstr(sasl ? Tls().sasl_ssl : Tls().ssl));
    if (GetParam() == "exactly_once") {
      EXPECT_THAT(ReadFile(x.log), HasSubstr("\"msg\":\"transactions initialized\""));
    }
    EXPECT_EQ(x.daemon->Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(x.log);
    EXPECT_THAT(ReadFile(x.log), Not(HasSubstr("kafka client error")));
  }
};

TEST_P(TlsRoutes, OverSsl) { RoutesTheCorpus(/*sasl=*/false); }

TEST_P(TlsRoutes, OverSaslSsl) { RoutesTheCorpus(/*sasl=*/true); }

INSTANTIATE_TEST_SUITE_P(Tls, TlsRoutes, ::testing::Values("at_least_once", "exactly_once"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return ::triaged::testing::ParamName(p.param);
                         });

}  // namespace
}  // namespace triaged
