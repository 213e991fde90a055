// Traffic as real producers put it on Kafka, on the real broker: OTLP protobuf written by the
// OpenTelemetry Java SDK's own marshaler (tests/witness/otlp-java), unkeyed, one to four traces
// per message; OTLP/JSON keyed with librdkafka's default partitioner (CRC32); feedback keyed
// with murmur2 (Java's default). With `inputs.repartition: auto` `triaged run` routes exactly
// what `triaged replay` routes for the same events, in both guarantees, every item with its
// spans; with `repartition: never` the split traces show on triaged_traces_without_spans_total.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <regex>

#include "tests/integration/integration_util.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)

// (trace, rule, destination, span count): who was routed, and with how much of its trace.
using Items = std::multiset<std::tuple<std::string, std::string, std::string, int64_t>>;

void AddItem(const std::string& json, Items& out) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_TRUE(d.IsObject()) << json;
  const int64_t spans = d["trace"].IsObject() ? d["trace"]["span_count"].GetInt64() : -1;
  out.emplace(d["trace_id"].GetString(), d["rule"].GetString(), d["destination"].GetString(),
              spans);
}

// The witness corpus (seed 13): protobuf requests, their OTLP/JSON twins, native feedback.
struct Corpus {
  TempDir dir;
  std::string error;
  Corpus() {
    const std::string out = Shell(SourcePath("tests/witness/otlp-java/run.sh") + " corpus " +
                                  dir.path() + " --seed 13 --traces 240 2>&1");
    if (!std::ifstream(dir.path() + "/otlp-proto.jsonl")) error = out;
  }
  std::string Path(const std::string& name) const { return dir.path() + "/" + name; }
};

const Corpus& TheCorpus() {
  static const Corpus* corpus = new Corpus();
  return *corpus;
}

// The example rules on this run's topics; the daemon's timings absorb the hop (in
// exactly-once a re-produced event is read once its transaction commits, within a second).
std::string ProducersConfig(const Topics& t, const std::string& repartition) {
  std::string config = WithoutLimits(ConfigFor(t));
  config = std::regex_replace(config, std::regex(R"(\ntrace: \{[^\n]*\})"),
                              "\ntrace: {decision_wait: 4s, root_grace: 4s, max_wait: 60s}");
  return std::regex_replace(config, std::regex("\ninputs:\n"),
                            "\ninputs:\n  repartition: " + repartition + "\n");
}

// Replay on event time with a decision wait of an hour: every trace is decided once all of its
// events are in, which is what the daemon sees when the whole corpus arrives in a burst.
Items Expected(const std::string& config_text, const TempDir& dir,
               const std::vector<std::string>& files) {
  const std::string config = dir.Write(
      "replay.yaml", std::regex_replace(config_text, std::regex(R"(\ntrace: \{[^\n]*\})"),
                                        "\ntrace: {decision_wait: 1h, root_grace: 1h, max_wait: "
                                        "2h}"));
  std::string args;
  for (const std::string& f : files) args += " " + f;
  Items want;
  for (const std::string& line :
       Lines(Shell(std::string(TRIAGED_BINARY) + " replay -q -c " + config + args))) {
    AddItem(line, want);
  }
  return want;
}

// The spans: requests 0, 2, 4, ... as protobuf, unkeyed; the others as OTLP/JSON keyed by their
// first trace id with kcat's default partitioner (CRC32). Returns the replay file of the same.
std::string ProduceSpans(const Corpus& c, const Topics& t, const TempDir& dir) {
  const std::vector<std::string> proto = Lines(ReadFile(c.Path("otlp-proto.jsonl")));
  const std::vector<std::string> json = Lines(ReadFile(c.Path("otlp-json.jsonl")));
  EXPECT_EQ(proto.size(), json.size());
  std::ofstream replay(dir.path() + "/spans.jsonl"), keyed(dir.path() + "/keyed.txt");
  std::string files;
  for (size_t i = 0; i < proto.size(); ++i) {
    if (i % 2 == 0) {
      char name[48];
      std::snprintf(name, sizeof name, "/otlp-proto/%05zu.bin", i);
      files += " " + c.Path(name);
      replay << proto[i] << '\n';
    } else {
      const std::smatch first = [&] {
        std::smatch m;
        std::regex_search(json[i], m, std::regex("\"traceId\":\"([0-9a-fA-F]+)\""));
        return m;
      }();
      keyed << first[1].str() << '\t' << json[i] << '\n';
      replay << json[i] << '\n';
    }
  }
  keyed.close();
  const std::string unkeyed = "kcat -P -b " + Bootstrap() + " -t " + t.spans + files + " 2>&1";
  EXPECT_EQ(std::system(unkeyed.c_str()), 0) << unkeyed;
  const std::string crc32 = "kcat -P -b " + Bootstrap() + " -t " + t.spans + " -K '\t' -l " +
                            dir.path() + "/keyed.txt 2>&1";
  EXPECT_EQ(std::system(crc32.c_str()), 0) << crc32;
  return dir.path() + "/spans.jsonl";
}

// The feedback, keyed by trace id with murmur2 (kcat's murmur2_random is Java's partitioner).
void ProduceFeedback(const Corpus& c, const Topics& t, const TempDir& dir) {
  std::ofstream keyed(dir.path() + "/feedback.txt");
  for (const std::string& line : Lines(ReadFile(c.Path("feedback.jsonl")))) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(line, m, std::regex("\"trace_id\":\"([0-9a-fA-F]+)\""))) << line;
    keyed << m[1].str() << '\t' << line << '\n';
  }
  keyed.close();
  const std::string cmd = "kcat -P -b " + Bootstrap() + " -t " + t.feedback +
                          " -X partitioner=murmur2_random -K '\t' -l " + dir.path() +
                          "/feedback.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

Items ReadItems(const Topics& t) {
  Items got;
  for (const std::string* topic : {&t.support, &t.agent, &t.regressions, &t.sessions}) {
    for (const Consumed& item : ReadTopic(*topic)) AddItem(item.payload, got);
  }
  return got;
}

double Metric(const std::string& port, const std::string& name) {
  for (const std::string& line : Lines(Get(port, "/metrics"))) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

double Repartitioned(const std::string& port) {
  double sum = 0;
  for (const std::string& line : Lines(Get(port, "/metrics"))) {
    if (line.rfind("triaged_events_repartitioned_total{", 0) == 0) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

void RoutesAsReplay(const std::string& guarantee) {
  const Corpus& c = TheCorpus();
  ASSERT_EQ(c.error, "");
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config_text = WithGuarantee(ProducersConfig(t, "auto"), guarantee);
  const std::string config = dir.Write("rules.yaml", config_text);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  const std::string port = AdminPort(log);
  ASSERT_FALSE(port.empty()) << ReadFile(log);
  const std::string spans = ProduceSpans(c, t, dir);
  ProduceFeedback(c, t, dir);
  const Items want = Expected(config_text, dir, {spans, c.Path("feedback.jsonl")});
  ASSERT_GT(want.size(), 50u);

  Items got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (got.size() < want.size() && std::chrono::steady_clock::now() < deadline) {
    usleep(500'000);  // polling the routed topics with a deadline
    got = ReadItems(t);
  }
  EXPECT_EQ(got, want) << ReadFile(log);
  for (const auto& [trace, rule, destination, span_count] : got) {
    EXPECT_GT(span_count, 0) << trace << " " << rule << ": routed without its trace";
  }
  // The unkeyed and CRC32-keyed spans took the hop; feedback keyed with murmur2 was home.
  const double hopped = Repartitioned(port);
  std::cerr << guarantee << ": " << got.size() << " routed items of " << want.size()
            << " replayed, " << hopped << " events repartitioned\n";
  EXPECT_GT(hopped, 0.0);
  EXPECT_EQ(Metric(port, "triaged_traces_without_spans_total"), 0.0);
  EXPECT_EQ(ReadTopic(t.dead_letter).size(), 0u);
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

// The same requests as the SDK writes them in both encodings route to the same items, byte for
// byte: the protobuf decoder maps exactly as the OTLP/JSON one.
TEST(RealProducers, ProtobufAndJsonOfTheSameTracesRouteIdentically) {
  const Corpus& c = TheCorpus();
  ASSERT_EQ(c.error, "");
  TempDir dir;
  Topics t;
  const std::string config = dir.Write("rules.yaml", ProducersConfig(t, "auto"));
  const std::string replay = std::string(TRIAGED_BINARY) + " replay -q -c " + config + " ";
  const std::string feedback = " " + c.Path("feedback.jsonl");
  const std::string json = Shell(replay + c.Path("otlp-json.jsonl") + feedback);
  const std::string proto = Shell(replay + c.Path("otlp-proto.jsonl") + feedback);
  EXPECT_GT(Lines(json).size(), 50u);
  EXPECT_EQ(proto, json);
  // And nothing of either was refused.
  const std::string summary =
      Shell(std::string(TRIAGED_BINARY) + " replay -c " + config + " " +
            c.Path("otlp-proto.jsonl") + feedback + " 2>&1 >/dev/null | grep -o '[0-9]* invalid'");
  EXPECT_EQ(summary, "0 invalid\n");
}

TEST(RealProducers, CollectorShapedTrafficRoutesAsReplayAtLeastOnce) {
  if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  RoutesAsReplay("at_least_once");
}

TEST(RealProducers, CollectorShapedTrafficRoutesAsReplayExactlyOnce) {
  if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  RoutesAsReplay("exactly_once");
}

// The same traffic trusted as it is: feedback that did not land with its spans is decided on its
// own — and counted, so the misplacement shows before anyone reads a routed item.
TEST(RealProducers, NeverShowsSplitTracesOnTracesWithoutSpans) {
  if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  const Corpus& c = TheCorpus();
  ASSERT_EQ(c.error, "");
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ProducersConfig(t, "never"));
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  const std::string port = AdminPort(log);
  ASSERT_FALSE(port.empty()) << ReadFile(log);
  ProduceSpans(c, t, dir);
  ProduceFeedback(c, t, dir);
  double without = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (without <= 0 && std::chrono::steady_clock::now() < deadline) {
    usleep(500'000);  // polling the metric with a deadline
    without = Metric(port, "triaged_traces_without_spans_total");
  }
  std::cerr << "never: " << without << " traces decided without spans\n";
  EXPECT_GT(without, 0.0) << ReadFile(log);
  EXPECT_EQ(Repartitioned(port), 0.0);
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

}  // namespace
}  // namespace triaged
