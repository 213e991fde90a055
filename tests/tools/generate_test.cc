// The traffic generator: deterministic per seed, every message decodes as the shape it claims,
// keys partition by trace id, the rate holds in event time, and the traffic is rich enough that
// every example rule has something to route.
#include "tools/generate_traffic.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "rules/decode.h"
#include "tests/tools/cli_test_util.h"
#include "tools/commands.h"

namespace triaged {
namespace {

using ::testing::HasSubstr;
using ::triaged::testing::Lines;
using ::triaged::testing::ReadFile;
using ::triaged::testing::RunTriaged;
using ::triaged::testing::SourcePath;
using ::triaged::testing::TempDir;

constexpr int64_t kStart = 1'793'527'200'000'000'000;  // 2026-11-01T10:00:00Z

std::vector<GeneratedEvent> Generate(uint64_t seed, size_t n, double invalid = 0,
                                     double rate = 100) {
  TrafficOptions o;
  o.seed = seed;
  o.start_ns = kStart;
  o.rate = rate;
  o.invalid_ratio = invalid;
  TrafficGenerator gen(o);
  std::vector<GeneratedEvent> out;
  GeneratedEvent e;
  while (gen.Next(e)) {
    out.push_back(e);
    if (out.size() == n) gen.Finish();
  }
  return out;
}

TEST(GenerateTest, TheSameSeedGivesTheSameTraffic) {
  const auto a = Generate(7, 2000), b = Generate(7, 2000), c = Generate(8, 2000);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].payload, b[i].payload) << i;
    EXPECT_EQ(a[i].time_ns, b[i].time_ns) << i;
  }
  EXPECT_NE(a[0].payload, c[0].payload);
}

TEST(GenerateTest, EventsComeInTimeOrderAtTheRequestedRate) {
  const auto events = Generate(3, 20000, 0, 250);
  ASSERT_GE(events.size(), 20000u);
  for (size_t i = 1; i < events.size(); ++i) {
    ASSERT_LE(events[i - 1].time_ns, events[i].time_ns) << i;
  }
  // The first 20,000 messages span about 20,000 / 250 = 80 s of event time.
  const double seconds = static_cast<double>(events[19999].time_ns - events[0].time_ns) / 1e9;
  EXPECT_NEAR(seconds, 80.0, 8.0);
}

TEST(GenerateTest, EveryMessageDecodesOnItsTopicWithItsTraceIdAsKey) {
  std::map<std::string, int> shapes;
  std::set<std::string> traces;
  for (const GeneratedEvent& e : Generate(11, 5000)) {
    Result<DecodedMessage> d = DecodeAny(e.payload);
    ASSERT_TRUE(d.ok()) << d.error().message << "\n" << e.payload;
    ASSERT_EQ(e.feedback, d->spans.empty()) << e.payload;
    for (const Span& s : d->spans) EXPECT_EQ(s.trace_id, e.key);
    for (const Annotation& a : d->annotations) EXPECT_EQ(a.trace_id, e.key);
    EXPECT_EQ(e.key.size(), 32u);
    traces.insert(e.key);
    const std::string& p = e.payload;
    if (p.find("\"resourceSpans\"") != std::string::npos) {
      ++shapes["otlp"];
      if (p.find("gen_ai.evaluation.result") != std::string::npos) ++shapes["otlp span event"];
      if (p.find("\"traceId\":\"" + e.key + "\"") == std::string::npos)
        ++shapes["otlp upper-case ids"];
    } else if (p.find("\"span_id\"") != std::string::npos && !e.feedback) {
      ++shapes["native span"];
    } else if (p.find("\"thumbs\":") != std::string::npos) {
      ++shapes["thumbs"];
    } else if (p.find("\"annotator_kind\"") != std::string::npos) {
      ++shapes["phoenix"];
    } else if (p.find("\"dataType\"") != std::string::npos) {
      ++shapes["langfuse"];
    } else if (p.find("\"feedback_source\"") != std::string::npos) {
      ++shapes["langsmith"];
    } else if (p.find("\"gen_ai.evaluation.name\"") != std::string::npos) {
      ++shapes["otel genai evaluation"];
    } else if (p.find("\"source\":\"support\"") != std::string::npos) {
      ++shapes["native escalation"];
    } else if (p.find("\"source\":\"end_user\"") != std::string::npos) {
      ++shapes["native thumbs"];
    } else {
      ADD_FAILURE() << "unclassified message: " << p;
    }
    for (const Span& s : d->spans) {
      if (s.status == SpanStatus::kError) ++shapes["error span"];
    }
  }
  for (const char* shape : {"otlp", "otlp span event", "otlp upper-case ids", "native span",
                            "thumbs", "phoenix", "langfuse", "langsmith", "otel genai evaluation",
                            "native escalation", "native thumbs", "error span"}) {
    EXPECT_GT(shapes[shape], 0) << shape;
  }
  // Feedback is sparse: most traces get none.
  EXPECT_LT(shapes["thumbs"] + shapes["native thumbs"], static_cast<int>(traces.size()) / 4);
}

TEST(GenerateTest, InvalidMessagesAreAboutTheRequestedShare) {
  const auto events = Generate(5, 20000, 0.02);
  size_t invalid = 0;
  for (const GeneratedEvent& e : events) invalid += DecodeAny(e.payload).ok() ? 0 : 1;
  const double share = static_cast<double>(invalid) / static_cast<double>(events.size());
  EXPECT_GT(share, 0.01);
  EXPECT_LT(share, 0.03);
}

// The generated file replays through the example rules, and every rule matches something.
TEST(GenerateTest, EveryExampleRuleMatchesGeneratedTraffic) {
  TempDir dir;
  const std::string file = dir.path() + "/traffic.jsonl";
  const testing::Run gen = RunTriaged(
      "generate --events 6000 --seed 2 --invalid 0.01 "
      "--start 2026-11-01T10:00:00Z -o " +
      file);
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_THAT(gen.err, HasSubstr("\"msg\":\"generated\""));
  const std::vector<std::string> lines = Lines(ReadFile(file));
  ASSERT_GE(lines.size(), 6000u);
  rapidjson::Document first;
  first.Parse(lines[0].c_str());
  ASSERT_TRUE(first.IsObject() && first.HasMember("topic") && first.HasMember("key") &&
              first.HasMember("payload"))
      << lines[0];

  const testing::Run replay =
      RunTriaged("replay -c " + SourcePath("config/examples/rules.yaml") + " " + file);
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_GT(Lines(replay.out).size(), 100u);
  // The summary table: rule, matched, sampled_out, rate_limited, routed. Every rule matches;
  // whether it routes also depends on samples and limits (the support-review queue's limit is
  // spent within a minute of this traffic).
  std::map<std::string, uint64_t> matched;
  for (const std::string& line : Lines(replay.err)) {
    std::istringstream row(line);
    std::string rule;
    uint64_t m = 0;
    if (row >> rule >> m) matched[rule] = m;
  }
  for (const char* rule : {"thumbs-down", "low-faithfulness", "slow", "errors", "tool-failures",
                           "reviewer-flags", "escalations", "session-sample"}) {
    EXPECT_GT(matched[rule], 0u) << rule << "\n" << replay.err;
  }
  EXPECT_THAT(replay.err, HasSubstr("invalid_json"));
}

TEST(GenerateTest, RefusesToRunWithoutABrokerOrABound) {
  EXPECT_EQ(RunTriaged("generate --rate 10").exit_code, kExitUsage);
  EXPECT_EQ(RunTriaged("generate --rate 0 --events 10 -o -").exit_code, kExitUsage);
  const testing::Run no_broker = RunTriaged("generate --duration 1s -b embedded");
  EXPECT_EQ(no_broker.exit_code, kExitUsage);
  EXPECT_THAT(no_broker.err, HasSubstr("-b HOST:PORT"));
}

// --duration and --start are checked while parsing; a bad one is a usage error, as before.
TEST(GenerateTest, RefusesABadDurationOrStart) {
  const testing::Run duration = RunTriaged("generate --duration soon -o -");
  EXPECT_EQ(duration.exit_code, kExitUsage);
  EXPECT_EQ(duration.err,
            "generate: --duration: expected a duration such as 30s or 5m, got \"soon\"\n");
  const testing::Run start = RunTriaged("generate --start yesterday --events 5 -o -");
  EXPECT_EQ(start.exit_code, kExitUsage);
  EXPECT_EQ(start.err, "generate: --start: expected an RFC 3339 time, got \"yesterday\"\n");
  // A missing value is CLI11's own error, with its own code.
  EXPECT_EQ(RunTriaged("generate --duration").exit_code, 114);
}

}  // namespace
}  // namespace triaged
