// The pipeline's test fixture: a Pipeline on a FakeKafka and a ManualClock, the config of a
// small deployment (inputs spans and feedback, destination review, dead letters to dlq, one
// rule routing thumbs-down), and the turns of its loop. Shared by the pipeline and repartition
// tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/pipeline.h"
#include "tests/daemon/fake_kafka.h"
#include "tests/tools/cli_test_util.h"

namespace triaged::testing {

constexpr const char* kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kOther = "5c0a3f4688c45eb7b4df03ae1f1f5847";

// `inputs_extra` goes into the inputs section (e.g. "  repartition: always\n").
inline std::string ConfigText(const std::string& guarantee,
                              const std::string& spans_topic = "spans",
                              const std::string& inputs_extra = "") {
  return "kafka:\n  bootstrap_servers: fake:9092\n  group_id: unit\n  guarantee: " + guarantee +
         "\ninputs:\n  spans: {topic: " + spans_topic + "}\n  feedback: {topic: feedback}\n" +
         inputs_extra +
         "trace: {decision_wait: 2s, root_grace: 1s, max_wait: 30s, late_feedback_window: 1h}\n"
         "destinations:\n  review: {kind: queue, topic: review}\n"
         "dead_letter: {topic: dlq}\n"
         "admin: {listen: \"127.0.0.1:0\"}\n"
         "rules:\n  - name: thumbs-down\n    when: feedback.thumbs.label == \"down\"\n"
         "    route_to: [review]\n";
}

inline std::string Span(const std::string& trace, const std::string& span, bool root = true) {
  return "{\"trace_id\":\"" + trace + "\",\"span_id\":\"" + span + "\"," +
         (root ? "" : "\"parent_span_id\":\"ff\",") +
         "\"name\":\"chat\",\"start_time\":\"2026-11-01T10:00:00Z\","
         "\"end_time\":\"2026-11-01T10:00:01Z\"}";
}

inline std::string ThumbsDown(const std::string& trace) {
  return "{\"trace_id\":\"" + trace + "\",\"thumbs\":\"down\"}";
}

// A trace of one root span with a thumbs-down, on partition 0 of both inputs.
inline void OneThumbsDown(FakeKafka& k) {
  k.Append("spans", 0, kTrace, Span(kTrace, "a1"));
  k.Append("feedback", 0, kTrace, ThumbsDown(kTrace));
}

class PipelineFixture : public ::testing::Test {
 protected:
  // Starts a pipeline whose Kafka is a FakeKafka with topics spans and feedback (`partitions`
  // partitions each), review, dlq and unit.decisions; `setup` fills the inputs before it starts.
  void Start(const std::string& guarantee, const std::function<void(FakeKafka&)>& setup = {}) {
    StartWith(ConfigText(guarantee), guarantee == "exactly_once", setup);
  }
  void StartWith(const std::string& config_text, bool transactional,
                 const std::function<void(FakeKafka&)>& setup = {}, int partitions = 1) {
    config_path_ = dir_.Write("rules.yaml", config_text);
    auto loaded = LoadConfigFile(config_path_);
    ASSERT_TRUE(loaded.ok()) << loaded.error().front().ToString();
    pipeline_ = std::make_unique<Pipeline>(
        RunOptions{run_config_path_.empty() ? config_path_ : run_config_path_, false}, *loaded,
        clock_,
        [&, transactional, setup, partitions](
            const Config&, const std::string&, const std::string&, const std::string&,
            KafkaListener& listener) -> Result<std::unique_ptr<KafkaClient>> {
          auto fake = std::make_unique<FakeKafka>(listener, transactional);
          for (const char* t : {"spans", "feedback"}) fake->CreateTopic(t, partitions);
          for (const char* t : {"review", "dlq"}) fake->CreateTopic(t, 1);
          if (setup) setup(*fake);
          kafka_ = fake.get();
          return std::unique_ptr<KafkaClient>(std::move(fake));
        });
    ASSERT_TRUE(pipeline_->Start());
  }

  // Turns the loop, 100 ms of clock a turn, until `done` (at most `turns` turns).
  bool StepUntil(const std::function<bool()>& done, int turns = 600) {
    for (int i = 0; i < turns; ++i) {
      if (done()) return true;
      clock_.Advance(std::chrono::milliseconds(100));
      pipeline_->Step(milliseconds(0));
    }
    return done();
  }
  void StepFor(std::chrono::milliseconds d) {
    StepUntil([] { return false; }, static_cast<int>(d.count() / 100));
  }
  int64_t Committed(const std::string& topic, int32_t partition = 0) {
    return kafka_->CommittedOffset(topic, partition).value_or(-1);
  }

  TempDir dir_;
  std::string config_path_;
  std::string run_config_path_;  // the path the pipeline is told (empty: config_path_)
  ManualClock clock_;
  std::unique_ptr<Pipeline> pipeline_;
  FakeKafka* kafka_ = nullptr;
};

}  // namespace triaged::testing
