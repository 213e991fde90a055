// TLS against the real broker's SSL and SASL_SSL listeners (scripts/kafka-dev.sh tls-status: a
// throwaway CA made at start): the corpus routed over each, in both guarantees, exactly as
// replay routes it; a CA that did not sign the broker's certificate is a fast exit naming the
// failed certificate verification, not a generic transport error after the metadata timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

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

class TlsErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveTls()) GTEST_SKIP() << "no TLS listeners (scripts/kafka-dev.sh start)";
  }
};

TEST_F(TlsErrors, AWrongCaFailsFastNamingTheCertificateVerification) {
  TempDir dir;
  // A CA of its own, which did not sign the broker's certificate.
  const std::string other_ca = dir.path() + "/other-ca.pem";
  const std::string make_ca =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj '/CN=not the kafka-dev CA' -keyout " +
      dir.path() + "/other-ca.key -out " + other_ca + " 2>&1";
  ASSERT_EQ(std::system(make_ca.c_str()), 0) << make_ca;
  Topics t;
  for (const std::string* topic : {&t.spans, &t.feedback}) CreateTopic(*topic, 4);
  const std::string config = dir.Write("rules.yaml", TlsConfig(t, /*sasl=*/false, other_ca));
  const std::string log = dir.path() + "/daemon.log";
  const auto start = std::chrono::steady_clock::now();
  Daemon daemon(config, log);
  EXPECT_EQ(daemon.Wait(std::chrono::seconds(30)), 1) << ReadFile(log);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(5)) << ReadFile(log);
  std::cerr << "wrong CA: exit after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";

  const std::vector<std::string> lines = Lines(ReadFile(log));
  ASSERT_FALSE(lines.empty());
  rapidjson::Document last;
  last.Parse(lines.back().c_str());
  ASSERT_TRUE(last.IsObject()) << lines.back();
  ASSERT_TRUE(last.HasMember("reason")) << lines.back();
  EXPECT_STREQ(last["level"].GetString(), "error") << lines.back();
  EXPECT_THAT(last["msg"].GetString(), HasSubstr("certificate verification failed"));
  EXPECT_THAT(last["msg"].GetString(), HasSubstr("check ssl.ca.location"));
  EXPECT_THAT(last["reason"].GetString(), HasSubstr("certificate verify failed"));
}

}  // namespace
}  // namespace triaged
