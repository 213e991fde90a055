// The review loop on a real broker (DESIGN §6 "Trace store"): a trace is decided, its process is
// killed -9 and restarted (or its partitions move to another replica), and a human correction
// dated two days later arrives with `late_feedback_window: 7d` — the routed item still carries
// the whole trace, `annotation.status: annotated` and the correction as `expected_output`, in
// both guarantees. Without the store the same item would have no context.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

#include "tests/integration/integration_util.h"
#include "tests/param_name.h"

namespace triaged {
namespace {

using namespace triaged::it;  // NOLINT(google-build-using-namespace)
using ::triaged::testing::ParamName;

constexpr const char* kTrace = "2d1a7f3e9b8c4d5e6f708192a3b4c5d6";

enum class Handover { kKill9Restart, kCleanRestart, kMoveToAnotherReplica };

struct Case {
  std::string guarantee;
  Handover handover;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  const char* handover = info.param.handover == Handover::kKill9Restart ? "_kill9_restart"
                         : info.param.handover == Handover::kCleanRestart
                             ? "_clean_restart"
                             : "_moved_to_another_replica";
  return ParamName(info.param.guarantee + handover);
}

class ReviewLoop : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  }

  // With a clean restart the trace is still in memory (hot) when the first process stops: the
  // store it leaves must hold it all the same.
  std::string HotWindow() const {
    return GetParam().handover == Handover::kCleanRestart ? "10m" : "1s";
  }
  std::string Config(const std::string& store) const {
    return "kafka:\n  bootstrap_servers: " + Bootstrap() + "\n  group_id: " + t_.group +
           "\n  guarantee: " + GetParam().guarantee + "\ninputs:\n  spans: {topic: " + t_.spans +
           "}\n  feedback: {topic: " + t_.feedback +
           "}\ntrace:\n  decision_wait: 1s\n  root_grace: 500ms\n  max_wait: 30s\n"
           "  late_feedback_window: 7d\n  hot_window: " +
           HotWindow() + "\n  store: {path: " + store +
           "}\ndestinations:\n"
           "  review: {kind: queue, topic: " +
           t_.support + "}\n  corrections: {kind: dataset, topic: " + t_.regressions +
           "}\ndead_letter: {topic: " + t_.dead_letter +
           "}\nadmin: {listen: 127.0.0.1:0}\n"
           "rules:\n"
           "  - name: errors\n    when: trace.error\n    route_to: [review]\n"
           "  - name: corrected\n    when: feedback.correctness.source == \"human\"\n"
           "    route_to: [corrections]\n";
  }
  std::string WriteConfig(const std::string& name, const std::string& store) const {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << Config(store);
    return path;
  }

  TempDir dir_;
  Topics t_;
};

// Items of `topic` (parsed), once there are `n` (or a deadline passes).
std::vector<Consumed> WaitForItems(const std::string& topic, size_t n) {
  std::vector<Consumed> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    got = ReadTopic(topic);
    if (got.size() >= n) break;
  }
  return got;
}

// The sum of a metric's samples (see MetricSum) once it reaches `at_least`, or when a deadline
// passes: the daemon publishes its counts once a second.
double WaitForMetric(const std::string& port, const std::string& prefix, double at_least) {
  double value = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    value = MetricSum(Get(port, "/metrics"), prefix);
    if (value >= at_least) break;
  }
  return value;
}

bool WaitForCommitted(const std::string& group, const std::string& topic, int64_t offsets) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (CommittedSum(group, topic) >= offsets) return true;
  }
  return false;
}

TEST_P(ReviewLoop, AHumanCorrectionTwoDaysLaterLandsWithTheWholeTrace) {
  for (const std::string* topic : {&t_.spans, &t_.feedback}) CreateTopic(*topic, 2);
  for (const std::string* topic : {&t_.support, &t_.regressions, &t_.dead_letter}) {
    CreateTopic(*topic, 1);
  }
  const std::string first_log = dir_.path() + "/first.log";
  const std::string second_log = dir_.path() + "/second.log";
  const std::string first_config = WriteConfig("first.yaml", dir_.path() + "/store-a");
  const std::string second_config = WriteConfig(
      "second.yaml",
      dir_.path() +
          (GetParam().handover == Handover::kMoveToAnotherReplica ? "/store-b" : "/store-a"));

  auto first = std::make_unique<Daemon>(first_config, first_log);
  // Two days ago: a chat that failed in its tool call.
  ASSERT_NO_FATAL_FAILURE(Produce(
      dir_, t_.spans,
      {std::string(kTrace) + "\t{\"trace_id\":\"" + kTrace +
           "\",\"span_id\":\"a1\",\"name\":\"chat\",\"start_time\":\"2026-12-01T09:00:00Z\","
           "\"end_time\":\"2026-12-01T09:00:02Z\",\"input\":\"What is the capital of France?\","
           "\"output\":\"Lyon\"}",
       std::string(kTrace) + "\t{\"trace_id\":\"" + kTrace +
           "\",\"span_id\":\"b2\",\"parent_span_id\":\"a1\",\"name\":\"lookup\","
           "\"start_time\":\"2026-12-01T09:00:00Z\",\"end_time\":\"2026-12-01T09:00:01Z\","
           "\"status\":\"error\"}"}));
  ASSERT_EQ(WaitForItems(t_.support, 1).size(), 1u) << ReadFile(first_log);
  // Its offsets are committed: nobody reads its spans again.
  ASSERT_TRUE(WaitForCommitted(t_.group, t_.spans, 2)) << ReadFile(first_log);

  std::unique_ptr<Daemon> second;
  if (GetParam().handover == Handover::kKill9Restart) {
    first->Signal(SIGKILL);
    first.reset();
    second = std::make_unique<Daemon>(second_config, second_log);
  } else if (GetParam().handover == Handover::kCleanRestart) {
    EXPECT_EQ(first->Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(first_log);
    first.reset();
    second = std::make_unique<Daemon>(second_config, second_log);
  } else {
    // A second replica joins; then the first leaves and the second owns every partition.
    second = std::make_unique<Daemon>(second_config, second_log);
    ASSERT_TRUE(WaitForLog(second_log, "partitions assigned")) << ReadFile(second_log);
    EXPECT_EQ(first->Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(first_log);
    first.reset();
  }
  ASSERT_TRUE(WaitForLog(second_log, "trace store restored")) << ReadFile(second_log);

  // The reviewer's verdict, two days after the trace, from a LangSmith annotation queue.
  ASSERT_NO_FATAL_FAILURE(
      Produce(dir_, t_.feedback,
              {std::string(kTrace) + "\t{\"id\":\"fb-77\",\"trace_id\":\"" + kTrace +
               "\",\"key\":\"correctness\",\"score\":0,\"value\":\"wrong\","
               "\"comment\":\"the capital is Paris\",\"correction\":\"Paris\","
               "\"created_at\":\"2026-12-03T09:00:00Z\","
               "\"feedback_source\":{\"type\":\"app\",\"user_id\":\"reviewer-3\"}}"}));
  const std::vector<Consumed> items = WaitForItems(t_.regressions, 1);
  ASSERT_EQ(items.size(), 1u) << ReadFile(second_log);
  rapidjson::Document d;
  d.Parse(items[0].payload.c_str());
  ASSERT_TRUE(d.IsObject()) << items[0].payload;
  EXPECT_STREQ(d["rule"].GetString(), "corrected");
  EXPECT_STREQ(d["trigger"].GetString(), "late_feedback");
  ASSERT_TRUE(d["trace"].IsObject()) << items[0].payload;
  EXPECT_FALSE(d.HasMember("context")) << items[0].payload;
  EXPECT_EQ(d["trace"]["spans"].Size(), 2u) << items[0].payload;
  EXPECT_STREQ(d["input"].GetString(), "What is the capital of France?");
  EXPECT_STREQ(d["output"].GetString(), "Lyon");
  EXPECT_STREQ(d["annotation"]["status"].GetString(), "annotated");
  ASSERT_TRUE(d["annotation"]["expected_output"].IsString()) << items[0].payload;
  EXPECT_STREQ(d["annotation"]["expected_output"].GetString(), "Paris");
  EXPECT_STREQ(d["expected_output"].GetString(), "Paris");  // the dataset row
  EXPECT_STREQ(d["annotation_status"].GetString(), "annotated");
  // The second process read no span: the trace came from the store, brought back to memory.
  const std::string port = AdminPort(second_log);
  ASSERT_FALSE(port.empty()) << ReadFile(second_log);
  EXPECT_GE(WaitForMetric(port, "triaged_trace_store_moves_total{direction=\"to_memory\"}", 1),
            1.0);
  const std::string metrics = Get(port, "/metrics");
  EXPECT_EQ(MetricSum(metrics, "triaged_events_consumed_total{input=\"spans\"}"), 0.0) << metrics;
  EXPECT_EQ(MetricSum(metrics, "triaged_events_consumed_total{input=\"feedback\"}"), 1.0)
      << metrics;
  EXPECT_GT(MetricSum(metrics, "triaged_trace_store_disk_bytes"), 0.0) << metrics;
  // How each partition's store was restored: a cleanly closed local store is current (only the
  // changelog's tail, here empty, is read); a killed process's store, or none, is rebuilt.
  const double from_local =
      MetricSum(metrics, "triaged_trace_store_restore_seconds_count{from=\"local\"}");
  const double from_changelog =
      MetricSum(metrics, "triaged_trace_store_restore_seconds_count{from=\"changelog\"}");
  if (GetParam().handover == Handover::kCleanRestart) {
    EXPECT_GE(from_local, 1.0) << metrics;
    EXPECT_EQ(from_changelog, 0.0) << metrics;
    EXPECT_EQ(MetricSum(metrics, "triaged_trace_store_restored_records_total{from=\"local\"}"), 0.0)
        << metrics;
  } else {
    EXPECT_GE(from_changelog, 1.0) << metrics;
    EXPECT_GE(MetricSum(metrics, "triaged_trace_store_restored_records_total{from=\"changelog\"}"),
              1.0)
        << metrics;
  }
  // And errors/review, routed before, is not routed again.
  EXPECT_EQ(ReadTopic(t_.support).size(), 1u);
  EXPECT_EQ(second->Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(second_log);
}

INSTANTIATE_TEST_SUITE_P(Store, ReviewLoop,
                         ::testing::Values(Case{"at_least_once", Handover::kKill9Restart},
                                           Case{"at_least_once", Handover::kCleanRestart},
                                           Case{"at_least_once", Handover::kMoveToAnotherReplica},
                                           Case{"exactly_once", Handover::kKill9Restart},
                                           Case{"exactly_once", Handover::kCleanRestart},
                                           Case{"exactly_once", Handover::kMoveToAnotherReplica}),
                         CaseName);

}  // namespace
}  // namespace triaged
