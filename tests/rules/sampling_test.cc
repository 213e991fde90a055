#include "rules/sampling.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "rules/engine.h"
#include "tests/rules/engine_test_util.h"

namespace triaged {
namespace {

using namespace triaged::testutil;  // NOLINT(google-build-using-namespace)

// Expected values, computed here from xxHash directly rather than through SampleHash.
uint64_t Xxh(const std::string& bytes) { return XXH64(bytes.data(), bytes.size(), 0); }
double Unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

// n ids of 32 lowercase hex digits from a fixed-seed generator.
std::vector<std::string> GeneratedIds(size_t n, uint64_t seed = 20240501) {
  std::mt19937_64 gen(seed);
  std::vector<std::string> ids;
  ids.reserve(n);
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    std::string id;
    for (int w = 0; w < 2; ++w) {
      uint64_t x = gen();
      for (int d = 0; d < 16; ++d, x >>= 4) id.push_back(kHex[x & 0xf]);
    }
    ids.push_back(std::move(id));
  }
  return ids;
}

// |k - n p| <= 5 sqrt(n p (1 - p))
void ExpectBinomial(size_t k, size_t n, double p, const std::string& what) {
  const double mean = static_cast<double>(n) * p;
  const double bound = 5.0 * std::sqrt(static_cast<double>(n) * p * (1.0 - p));
  EXPECT_LE(std::abs(static_cast<double>(k) - mean), bound)
      << what << ": k=" << k << " n=" << n << " p=" << p;
}

const std::vector<std::string>& Keys() {
  static const std::vector<std::string> keys = {
      "",
      "a",
      "0af7651916cd43dd8448eb211c80319c",
      "4bf92f3577b34da6a3ce929d0e0e4736",
      "session-42",
      "caf\xc3\xa9 \xe2\x98\x95",  // UTF-8 bytes are hashed as they are
      std::string("nul\0inside", 10),
  };
  return keys;
}

TEST(SamplingTest, HashIsXxh64OfTheKeyWithSeedZero) {
  // A published test vector: XXH64 of the empty input with seed 0.
  EXPECT_EQ(SampleHash("", std::nullopt), 0xEF46DB3751D8E999ULL);
  for (const std::string& key : Keys()) {
    EXPECT_EQ(SampleHash(key, std::nullopt), Xxh(key)) << key;
  }
}

TEST(SamplingTest, SaltedHashIsOverSaltNulKey) {
  for (const std::string& salt : {std::string("reviewers-2024"), std::string("x"), std::string()}) {
    for (const std::string& key : Keys()) {
      std::string bytes = salt;
      bytes.push_back('\0');
      bytes += key;
      EXPECT_EQ(SampleHash(key, salt), Xxh(bytes)) << salt << "/" << key;
      // The separator matters: salt + key alone is a different hash.
      EXPECT_NE(SampleHash(key, salt), Xxh(salt + key)) << salt << "/" << key;
    }
  }
}

TEST(SamplingTest, UnitIsTheTop53BitsScaled) {
  for (const std::string& key : Keys()) {
    const uint64_t h = Xxh(key);
    const double u = SampleUnit(h);
    EXPECT_EQ(u, Unit(h)) << key;
    // Bit for bit: u * 2^53 is exactly the top 53 bits.
    EXPECT_EQ(static_cast<uint64_t>(u * 0x1.0p53), h >> 11) << key;
  }
  EXPECT_EQ(SampleUnit(0), 0.0);
  EXPECT_EQ(SampleUnit((uint64_t{1} << 11) - 1), 0.0);  // low 11 bits are dropped
  EXPECT_EQ(SampleUnit(uint64_t{1} << 11), 0x1.0p-53);
  EXPECT_EQ(SampleUnit(uint64_t{1} << 63), 0.5);
  const double top = SampleUnit(std::numeric_limits<uint64_t>::max());
  EXPECT_LT(top, 1.0);
  EXPECT_EQ(top, 1.0 - 0x1.0p-53);
}

TEST(SamplingTest, RateZeroNeverAndRateOneAlways) {
  EXPECT_FALSE(IsSampled(0.0, 0.0));
  EXPECT_TRUE(IsSampled(SampleUnit(std::numeric_limits<uint64_t>::max()), 1.0));
  for (const std::string& id : GeneratedIds(10000)) {
    const double u = SampleUnit(SampleHash(id, std::nullopt));
    EXPECT_FALSE(IsSampled(u, 0.0));
    EXPECT_TRUE(IsSampled(u, 1.0));
  }
}

TEST(SamplingTest, StrictlyLessThanRate) {
  const double u = SampleUnit(uint64_t{1} << 63);  // 0.5
  EXPECT_FALSE(IsSampled(u, 0.5));
  EXPECT_TRUE(IsSampled(u, std::nextafter(0.5, 1.0)));
}

TEST(SamplingTest, ConsistentAcrossRates) {
  const std::vector<std::string> ids = GeneratedIds(100000);
  size_t at10 = 0, at25 = 0;
  for (const std::string& id : ids) {
    const double u = SampleUnit(SampleHash(id, std::nullopt));
    const bool s10 = IsSampled(u, 0.10);
    const bool s25 = IsSampled(u, 0.25);
    if (s10) {
      ++at10;
      EXPECT_TRUE(s25) << id << " kept at 10% but not at 25%";
    }
    at25 += s25 ? 1 : 0;
  }
  EXPECT_GT(at25, at10);
}

TEST(SamplingTest, RatesAreWithinBinomialBounds) {
  const std::vector<std::string> ids = GeneratedIds(100000);
  std::vector<double> units;
  units.reserve(ids.size());
  for (const std::string& id : ids) units.push_back(SampleUnit(SampleHash(id, std::nullopt)));
  for (double p : {0.01, 0.1, 0.25, 0.5}) {
    size_t k = 0;
    for (double u : units) k += IsSampled(u, p) ? 1 : 0;
    ExpectBinomial(k, ids.size(), p, "unsalted");
  }
  // The same with a salt.
  for (double p : {0.01, 0.1, 0.25, 0.5}) {
    size_t k = 0;
    for (const std::string& id : ids) {
      k += IsSampled(SampleUnit(SampleHash(id, std::string("salt"))), p) ? 1 : 0;
    }
    ExpectBinomial(k, ids.size(), p, "salted");
  }
}

TEST(SamplingTest, SaltedSampleIsIndependent) {
  const std::vector<std::string> ids = GeneratedIds(100000, 7);
  for (double p : {0.1, 0.25, 0.5}) {
    size_t both = 0, plain = 0, salted = 0;
    for (const std::string& id : ids) {
      const bool a = IsSampled(SampleUnit(SampleHash(id, std::nullopt)), p);
      const bool b = IsSampled(SampleUnit(SampleHash(id, std::string("second-opinion"))), p);
      plain += a ? 1 : 0;
      salted += b ? 1 : 0;
      both += (a && b) ? 1 : 0;
    }
    // Independent samples overlap in about p^2 n, not p n as consistent ones would.
    ExpectBinomial(both, ids.size(), p * p, "overlap");
    ExpectBinomial(plain, ids.size(), p, "plain");
    ExpectBinomial(salted, ids.size(), p, "salted");
  }
}

// --- through the engine ------------------------------------------------------------------------

TEST(EngineSamplingTest, VerdictReportsTheKeyAndUnit) {
  RuleSetBuilder b;
  b.Dest("review");
  b.Rule("half", Always(), {"review"}).sample_rate = 0.5;
  b.Rule("salted", Always(), {"review"}).sample_salt = "s1";
  Engine engine(b.Build());
  RecordingOutbox sink;
  RecordingObserver obs;
  engine.set_observer(&obs);
  const std::vector<std::string> ids = GeneratedIds(200);
  for (const std::string& id : ids) engine.Add(Msg(Child(id, "a")), 0, sink);
  engine.CloseAll(Sec(1), sink);
  ASSERT_EQ(obs.evaluations.size(), ids.size());
  std::set<std::string> routed_half;
  for (const Routed& r : sink.items()) {
    if (r.rule == "half") routed_half.insert(r.trace_id);
  }
  for (const auto& e : obs.evaluations) {
    const double u = Unit(Xxh(e.trace_id));
    ASSERT_EQ(e.verdicts.size(), 2u);
    EXPECT_EQ(e.verdicts[0].sample_key, e.trace_id);
    EXPECT_EQ(e.verdicts[0].sample_unit, u);
    EXPECT_EQ(e.verdicts[0].outcome,
              u < 0.5 ? RuleVerdict::Outcome::kRouted : RuleVerdict::Outcome::kSampledOut);
    EXPECT_EQ(routed_half.count(e.trace_id), u < 0.5 ? 1u : 0u);
    EXPECT_EQ(e.verdicts[1].sample_unit, Unit(Xxh(std::string("s1") + '\0' + e.trace_id)));
    EXPECT_EQ(e.verdicts[1].outcome, RuleVerdict::Outcome::kRouted);  // rate 1
  }
  EXPECT_EQ(engine.rule_counters()[0].matched, ids.size());
  EXPECT_EQ(engine.rule_counters()[0].sampled_out + engine.rule_counters()[0].routed, ids.size());
  EXPECT_GT(engine.rule_counters()[0].sampled_out, 0u);
  EXPECT_GT(engine.rule_counters()[0].routed, 0u);
}

TEST(EngineSamplingTest, SampleKeyOnSessionKeepsWholeSessions) {
  RuleSetBuilder b;
  b.Dest("review");
  RuleSpec& rule = b.Rule("sessions", Always(), {"review"});
  rule.sample_rate = 0.3;
  rule.sample_key_text = "trace.session_id";
  rule.sample_key = SessionKey();
  Engine engine(b.Build());
  RecordingOutbox sink;
  RecordingObserver obs;
  engine.set_observer(&obs);

  constexpr int kSessions = 400;
  constexpr int kPerSession = 4;
  const std::vector<std::string> ids = GeneratedIds(kSessions * kPerSession, 99);
  std::map<std::string, std::string> session_of;
  for (int s = 0; s < kSessions; ++s) {
    for (int t = 0; t < kPerSession; ++t) {
      const std::string& id = ids[static_cast<size_t>(s * kPerSession + t)];
      Span span = Root(id, Sec(s), Sec(s) + Ms(500));
      span.session_id = "session-" + std::to_string(s);
      session_of[id] = *span.session_id;
      engine.Add(Msg(std::move(span)), Sec(s), sink);
    }
  }
  engine.CloseAll(Sec(kSessions + 10), sink);

  std::map<std::string, int> routed_per_session;
  for (const Routed& r : sink.items()) ++routed_per_session[session_of.at(r.trace_id)];
  for (const auto& [session, n] : routed_per_session) {
    EXPECT_EQ(n, kPerSession) << session << " was split";
    EXPECT_LT(Unit(Xxh(session)), 0.3) << session;
  }
  int expected_sessions = 0;
  for (int s = 0; s < kSessions; ++s) {
    if (Unit(Xxh("session-" + std::to_string(s))) < 0.3) ++expected_sessions;
  }
  EXPECT_EQ(static_cast<int>(routed_per_session.size()), expected_sessions);
  ExpectBinomial(routed_per_session.size(), kSessions, 0.3, "sessions");
  for (const auto& e : obs.evaluations) {
    EXPECT_EQ(e.verdicts.at(0).sample_key, session_of.at(e.trace_id));
  }
}

TEST(EngineSamplingTest, MissingSampleKeyFallsBackToTraceId) {
  RuleSetBuilder b;
  b.Dest("review");
  RuleSpec& rule = b.Rule("sessions", Always(), {"review"});
  rule.sample_rate = 0.5;
  rule.sample_key = SessionKey();
  Engine engine(b.Build());
  RecordingOutbox sink;
  RecordingObserver obs;
  engine.set_observer(&obs);
  engine.Add(Msg(Child("abc", "a")), 0, sink);  // no session id
  engine.CloseAll(1, sink);
  ASSERT_EQ(obs.evaluations.size(), 1u);
  EXPECT_EQ(obs.evaluations[0].verdicts.at(0).sample_key, "abc");
  EXPECT_EQ(obs.evaluations[0].verdicts.at(0).sample_unit, Unit(Xxh("abc")));
}

}  // namespace
}  // namespace triaged
