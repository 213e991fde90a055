// `triaged run` against a real Apache Kafka broker (scripts/kafka-dev.sh, started by the ctest
// fixture), with kcat as the independent client: the example corpus produced into the input
// topics is routed exactly as `triaged replay` routes it; bad input is dead-lettered; SIGTERM
// exits 0; topics that are not co-partitioned are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <tuple>

#include "daemon/ingest.h"
#include "rules/decode.h"
#include "tests/daemon/cli_test_util.h"

namespace triaged {
namespace {

using ::testing::HasSubstr;
using ::triaged::testing::Lines;
using ::triaged::testing::ReadFile;
using ::triaged::testing::SourcePath;
using ::triaged::testing::TempDir;

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

std::string Bootstrap() {
  static const std::string boot = [] {
    if (const char* env = std::getenv("KAFKA_BOOTSTRAP")) return std::string(env);
    std::string out = Shell(SourcePath("scripts/kafka-dev.sh") + " status 2>/dev/null");
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    const size_t nl = out.rfind('\n');
    return nl == std::string::npos ? out : out.substr(nl + 1);
  }();
  return boot;
}

void CreateTopic(const std::string& name, int partitions) {
  const std::string cmd = "KAFKA_BOOTSTRAP=" + Bootstrap() + " " +
                          SourcePath("scripts/kafka-dev.sh") + " create-topic " + name + " " +
                          std::to_string(partitions) + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// A unique suffix per test (and per run), so reruns against a shared broker never collide.
std::string NextId() {
  static int counter = 0;
  static const std::string run = std::to_string(getpid()) + "-" +
                                 std::to_string(std::chrono::steady_clock::now()
                                                    .time_since_epoch()
                                                    .count() % 1000000);
  return run + "-" + std::to_string(counter++);
}

struct Topics {
  std::string id = NextId();
  std::string spans = "it.spans-" + id, feedback = "it.feedback-" + id;
  std::string support = "it.support-review-" + id, agent = "it.agent-review-" + id;
  std::string regressions = "it.regressions-" + id, sessions = "it.session-replay-" + id;
  std::string dead_letter = "it.dead-letter-" + id;
  std::string group = "it-group-" + id;
};

// The example rules with this run's topics, fast timings and the real broker.
std::string ConfigFor(const Topics& t) {
  std::string rules = ReadFile(SourcePath("config/examples/rules.yaml"));
  rules = rules.substr(rules.find("\nrules:"));  // keep the rules, replace everything above
  return "kafka:\n  bootstrap_servers: " + Bootstrap() + "\n  group_id: " + t.group +
         "\ninputs:\n  spans: {topic: " + t.spans + "}\n  feedback: {topic: " + t.feedback +
         "}\ntrace: {decision_wait: 1s, root_grace: 500ms, max_wait: 30s}\n"
         "destinations:\n"
         "  support-review: {kind: queue, topic: " + t.support + "}\n"
         "  agent-review: {kind: queue, topic: " + t.agent + "}\n"
         "  regressions: {kind: dataset, topic: " + t.regressions + "}\n"
         "  session-replay: {kind: dataset, topic: " + t.sessions + "}\n"
         "dead_letter: {topic: " + t.dead_letter + "}\n"
         "admin: {listen: 127.0.0.1:0}\n" + rules;
}

// Splits the example corpus by input topic, keyed by trace id, as producers would send it.
void ProduceCorpus(const Topics& t, const std::string& dir) {
  std::ofstream spans(dir + "/spans.txt"), feedback(dir + "/feedback.txt");
  uint64_t n = 0;
  for (const std::string& line : Lines(ReadFile(SourcePath("config/examples/events.jsonl")))) {
    ReplayLine parsed = ParseReplayLine(line, ++n);
    std::string key = "malformed";
    bool to_spans = true;
    if (!parsed.origin.topic.empty()) {
      to_spans = parsed.origin.topic == "llm.spans";
    }
    Result<DecodedMessage> decoded = DecodeAny(parsed.payload);
    if (decoded.ok()) {
      if (parsed.origin.topic.empty()) to_spans = !decoded->spans.empty();
      key = !decoded->spans.empty() ? decoded->spans[0].trace_id
                                    : decoded->annotations[0].trace_id;
    }
    const std::string payload = parsed.null_payload ? "" : parsed.payload;
    (to_spans ? spans : feedback) << key << '\t' << payload << '\n';
  }
  spans.close();
  feedback.close();
  for (const auto& [topic, file] : {std::pair{t.spans, "spans.txt"}, {t.feedback, "feedback.txt"}}) {
    const std::string cmd = "kcat -P -b " + Bootstrap() + " -t " + topic + " -K '\t' -l " + dir +
                            "/" + file + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

struct Consumed {
  std::string key, payload;
  std::map<std::string, std::string> headers;
};

std::vector<Consumed> ReadTopic(const std::string& topic) {
  std::vector<Consumed> out;
  const std::string text =
      Shell("kcat -C -b " + Bootstrap() + " -t " + topic + " -o beginning -e -q -J 2>/dev/null");
  for (const std::string& line : Lines(text)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    if (!d.IsObject()) continue;
    Consumed c;
    if (d.HasMember("key") && d["key"].IsString()) c.key = d["key"].GetString();
    if (d.HasMember("payload") && d["payload"].IsString()) c.payload = d["payload"].GetString();
    if (d.HasMember("headers") && d["headers"].IsArray()) {
      const auto& h = d["headers"];
      for (rapidjson::SizeType i = 0; i + 1 < h.Size(); i += 2) {
        if (h[i].IsString() && h[i + 1].IsString()) c.headers[h[i].GetString()] = h[i + 1].GetString();
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

// `triaged run` as a child process.
class Daemon {
 public:
  Daemon(const std::string& config, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      freopen(log.c_str(), "w", stderr);
      freopen("/dev/null", "w", stdout);
      execl(TRIAGED_BINARY, TRIAGED_BINARY, "run", "-c", config.c_str(), nullptr);
      _exit(127);
    }
  }
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Sends `sig` and waits up to `timeout` for the exit; returns the exit code or -1.
  int Stop(int sig, std::chrono::seconds timeout) {
    kill(pid_, sig);
    return Wait(timeout);
  }
  void Signal(int sig) { kill(pid_, sig); }
  int Wait(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      usleep(20'000);  // polling a condition (child exit) with a deadline
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

using RouteSet = std::multiset<std::tuple<std::string, std::string, std::string>>;

RouteSet Expected(const std::string& config) {
  RouteSet want;
  const std::string out = Shell(std::string(TRIAGED_BINARY) + " replay -q -c " + config + " " +
                                SourcePath("config/examples/events.jsonl"));
  for (const std::string& line : Lines(out)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    want.emplace(d["trace_id"].GetString(), d["rule"].GetString(), d["destination"].GetString());
  }
  return want;
}


// Reads every routed topic until `routes` items and `dead_letters` dead letters are there (or a
// deadline passes), checking each item's key and headers on the way.
RouteSet WaitForRoutes(const Topics& t, size_t routes, size_t dead_letters,
                       std::vector<Consumed>* dead = nullptr) {
  RouteSet got;
  std::vector<Consumed> dlq;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    got.clear();
    for (const std::string* topic : {&t.support, &t.agent, &t.regressions, &t.sessions}) {
      for (const Consumed& c : ReadTopic(*topic)) {
        rapidjson::Document d;
        d.Parse(c.payload.c_str());
        EXPECT_TRUE(d.IsObject()) << c.payload;
        if (!d.IsObject()) continue;
        EXPECT_EQ(c.key, d["trace_id"].GetString());
        EXPECT_EQ(c.headers.count("triaged-rule"), 1u) << c.payload;
        EXPECT_EQ(c.headers.count("triaged-destination"), 1u) << c.payload;
        got.emplace(d["trace_id"].GetString(), d["rule"].GetString(),
                    d["destination"].GetString());
      }
    }
    dlq = ReadTopic(t.dead_letter);
    if (got.size() >= routes && dlq.size() >= dead_letters) break;
  }
  if (dead != nullptr) *dead = std::move(dlq);
  return got;
}

void CreateTopics(const Topics& t) {
  for (const std::string* topic : {&t.spans, &t.feedback}) CreateTopic(*topic, 4);
  for (const std::string* topic : {&t.support, &t.agent, &t.regressions, &t.sessions,
                                   &t.dead_letter}) {
    CreateTopic(*topic, 1);
  }
}

class RunIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  }
};

TEST_F(RunIntegration, RoutesTheCorpusExactlyAsReplayDoes) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  ASSERT_EQ(want.size(), 16u);
  ProduceCorpus(t, dir.path());

  Daemon daemon(config, dir.path() + "/daemon.log");
  std::vector<Consumed> dead;
  const RouteSet got = WaitForRoutes(t, want.size(), 8, &dead);
  EXPECT_EQ(got, want) << ReadFile(dir.path() + "/daemon.log");
  ASSERT_EQ(dead.size(), 8u) << ReadFile(dir.path() + "/daemon.log");
  for (const Consumed& c : dead) {
    rapidjson::Document d;
    d.Parse(c.payload.c_str());
    ASSERT_TRUE(d.IsObject() && d.HasMember("reason") && d.HasMember("offset")) << c.payload;
    EXPECT_TRUE(d["offset"].IsInt64()) << c.payload;
  }
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0)
      << ReadFile(dir.path() + "/daemon.log");
  EXPECT_THAT(ReadFile(dir.path() + "/daemon.log"), HasSubstr("\"msg\":\"stopped\""));
}

// Stopping the daemon while traces are still open, then starting it again: the open traces
// were not committed, so the new process re-reads and decides them. `sig` SIGTERM is a clean
// stop (flush, commit what is safe, exit 0); SIGKILL loses the process mid-flight.
void RestartLosesNothing(int sig) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  ProduceCorpus(t, dir.path());
  {
    Daemon first(config, dir.path() + "/first.log");
    // Mid-stream: as soon as the first routed item is on a topic, most traces are still open.
    WaitForRoutes(t, 1, 0);
    const int code = first.Stop(sig, std::chrono::seconds(40));
    if (sig == SIGTERM) {
      EXPECT_EQ(code, 0) << ReadFile(dir.path() + "/first.log");
    }
  }
  Daemon second(config, dir.path() + "/second.log");
  RouteSet got = WaitForRoutes(t, want.size(), 8);
  // Wait for the unique set (duplicates are allowed at-least-once; count them).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::set(got.begin(), got.end()).size() < want.size() &&
         std::chrono::steady_clock::now() < deadline) {
    got = WaitForRoutes(t, got.size() + 1, 8);
  }
  const std::set<std::tuple<std::string, std::string, std::string>> unique(got.begin(), got.end());
  EXPECT_EQ(unique, std::set(want.begin(), want.end()))
      << ReadFile(dir.path() + "/first.log") << ReadFile(dir.path() + "/second.log");
  std::cerr << "restart after signal " << sig << ": " << got.size() - unique.size()
            << " duplicate routed items\n";
  EXPECT_EQ(second.Stop(SIGTERM, std::chrono::seconds(40)), 0);
}

TEST_F(RunIntegration, SigtermThenRestartLosesNoRoute) { RestartLosesNothing(SIGTERM); }

TEST_F(RunIntegration, KillThenRestartLosesNoRoute) { RestartLosesNothing(SIGKILL); }

// Polls a log file until it contains `text` (or a deadline passes).
bool WaitForLog(const std::string& path, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadFile(path).find(text) != std::string::npos) return true;
    usleep(20'000);
  }
  return false;
}

TEST_F(RunIntegration, SighupWithABadConfigKeepsRouting) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string good = ConfigFor(t);
  const std::string config = dir.Write("rules.yaml", good);
  const RouteSet want = Expected(config);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  ASSERT_TRUE(WaitForLog(log, "\"msg\":\"started\""));
  dir.Write("rules.yaml", good + "  - name: broken\n    when: trace.duraton_ms > 1\n"
                                 "    route_to: [regressions]\n");
  daemon.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog(log, "reload failed")) << ReadFile(log);
  EXPECT_THAT(ReadFile(log), HasSubstr("trace.duraton_ms"));
  ProduceCorpus(t, dir.path());
  EXPECT_EQ(WaitForRoutes(t, want.size(), 8), want) << ReadFile(log);
  // A good config is taken at the next SIGHUP.
  dir.Write("rules.yaml", good);
  daemon.Signal(SIGHUP);
  EXPECT_TRUE(WaitForLog(log, "config reloaded")) << ReadFile(log);
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

using RouteKeys = std::set<std::tuple<std::string, std::string, std::string>>;

// Waits until the routed topics hold every expected (trace, rule, destination) at least once.
RouteKeys WaitForUniqueRoutes(const Topics& t, const RouteSet& want, size_t* duplicates) {
  RouteSet got = WaitForRoutes(t, want.size(), 8);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (RouteKeys(got.begin(), got.end()).size() < RouteKeys(want.begin(), want.end()).size() &&
         std::chrono::steady_clock::now() < deadline) {
    got = WaitForRoutes(t, got.size() + 1, 8);
  }
  RouteKeys unique(got.begin(), got.end());
  *duplicates = got.size() - unique.size();
  return unique;
}

TEST_F(RunIntegration, TwoReplicasSplitThePartitionsAndRouteTheExpectedSet) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  Daemon a(config, dir.path() + "/a.log"), b(config, dir.path() + "/b.log");
  // Range assignment: each replica gets partitions 0-1 or 2-3 of both inputs, 4 in all.
  const std::string four = "\"msg\":\"partitions assigned\",\"count\":\"4\"";
  ASSERT_TRUE(WaitForLog(dir.path() + "/a.log", four)) << ReadFile(dir.path() + "/a.log");
  ASSERT_TRUE(WaitForLog(dir.path() + "/b.log", four)) << ReadFile(dir.path() + "/b.log");
  ProduceCorpus(t, dir.path());
  size_t duplicates = 0;
  EXPECT_EQ(WaitForUniqueRoutes(t, want, &duplicates), RouteKeys(want.begin(), want.end()))
      << ReadFile(dir.path() + "/a.log") << ReadFile(dir.path() + "/b.log");
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(a.Stop(SIGTERM, std::chrono::seconds(40)), 0);
  EXPECT_EQ(b.Stop(SIGTERM, std::chrono::seconds(40)), 0);
}

TEST_F(RunIntegration, ARebalanceMidStreamLosesNothing) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  Daemon a(config, dir.path() + "/a.log");
  ProduceCorpus(t, dir.path());
  WaitForRoutes(t, 1, 0);  // the first route is out; most traces are still open
  Daemon b(config, dir.path() + "/b.log");  // joining takes half the partitions away from `a`
  size_t duplicates = 0;
  EXPECT_EQ(WaitForUniqueRoutes(t, want, &duplicates), RouteKeys(want.begin(), want.end()))
      << ReadFile(dir.path() + "/a.log") << ReadFile(dir.path() + "/b.log");
  std::cerr << "rebalance mid-stream: " << duplicates << " duplicate routed items\n";
  EXPECT_EQ(a.Stop(SIGTERM, std::chrono::seconds(40)), 0);
  EXPECT_EQ(b.Stop(SIGTERM, std::chrono::seconds(40)), 0);
}

// The admin port the daemon logged (the tests listen on 127.0.0.1:0).
std::string AdminPort(const std::string& log) {
  if (!WaitForLog(log, "admin server listening")) return "";
  const std::string text = ReadFile(log);
  const size_t at = text.find("\"port\":\"", text.find("admin server listening"));
  if (at == std::string::npos) return "";
  const size_t begin = at + 8;
  return text.substr(begin, text.find('"', begin) - begin);
}

std::string Get(const std::string& port, const std::string& path, int* status = nullptr) {
  const std::string out = Shell("curl -s -w '\\n%{http_code}' http://127.0.0.1:" + port + path);
  const size_t nl = out.rfind('\n');
  if (status != nullptr) *status = nl == std::string::npos ? 0 : std::atoi(out.c_str() + nl + 1);
  return nl == std::string::npos ? out : out.substr(0, nl);
}

// /metrics, /healthz, /readyz and /v1/rules of a running daemon; promtool accepts the metrics
// and a real Prometheus server scrapes them.
TEST_F(RunIntegration, AdminEndpointsMetricsAndAPrometheusScrape) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  const std::string port = AdminPort(log);
  ASSERT_FALSE(port.empty()) << ReadFile(log);
  ProduceCorpus(t, dir.path());
  ASSERT_EQ(WaitForRoutes(t, want.size(), 8), want) << ReadFile(log);

  int status = 0;
  EXPECT_EQ(Get(port, "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
  Get(port, "/readyz", &status);
  EXPECT_EQ(status, 200);
  Get(port, "/nope", &status);
  EXPECT_EQ(status, 404);

  // Counters are published once a second: wait until /v1/rules shows every routed item.
  uint64_t routed = 0;
  rapidjson::Document rules;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (routed < want.size() && std::chrono::steady_clock::now() < deadline) {
    rules.Parse(Get(port, "/v1/rules").c_str());
    routed = 0;
    if (rules.IsObject() && rules.HasMember("rules")) {
      for (const auto& r : rules["rules"].GetArray()) routed += r["routed"].GetUint64();
    }
    if (routed < want.size()) usleep(100'000);
  }
  EXPECT_EQ(routed, want.size()) << Get(port, "/v1/rules");

  const std::string metrics = Get(port, "/metrics", &status);
  EXPECT_EQ(status, 200);
  for (const char* family :
       {"triaged_events_consumed_total", "triaged_events_invalid_total",
        "triaged_dead_lettered_total 8", "triaged_traces_open", "triaged_rule_matched_total",
        "triaged_routed_total", "triaged_decision_latency_seconds_bucket",
        "triaged_consumer_lag", "triaged_config_reloads_total", "triaged_build_info"}) {
    EXPECT_THAT(metrics, HasSubstr(family));
  }
  EXPECT_THAT(metrics, HasSubstr("triaged_rule_matched_total{rule=\"thumbs-down\"} 4"));
  const std::string metrics_file = dir.Write("metrics.txt", metrics);
  EXPECT_EQ(std::system(("promtool check metrics < " + metrics_file + " >/dev/null 2>&1").c_str()),
            0)
      << Shell("promtool check metrics < " + metrics_file + " 2>&1");

  // A real Prometheus server scrapes the daemon.
  const int prom_port = 20000 + getpid() % 10000;
  const std::string prom_config = dir.Write(
      "prometheus.yml", "global: {scrape_interval: 1s}\nscrape_configs:\n"
                        "  - job_name: triaged\n    static_configs:\n"
                        "      - targets: ['127.0.0.1:" + port + "']\n");
  const pid_t prom = fork();
  if (prom == 0) {
    freopen((dir.path() + "/prometheus.log").c_str(), "w", stderr);
    execlp("prometheus", "prometheus", ("--config.file=" + prom_config).c_str(),
           ("--storage.tsdb.path=" + dir.path() + "/tsdb").c_str(),
           ("--web.listen-address=127.0.0.1:" + std::to_string(prom_port)).c_str(), nullptr);
    _exit(127);
  }
  std::string answer;
  const auto scrape_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < scrape_deadline) {
    answer = Shell("curl -s 'http://127.0.0.1:" + std::to_string(prom_port) +
                   "/api/v1/query?query=triaged_dead_lettered_total'");
    if (answer.find("\"value\"") != std::string::npos) break;
    usleep(200'000);
  }
  kill(prom, SIGTERM);
  waitpid(prom, nullptr, 0);
  EXPECT_THAT(answer, HasSubstr("\"8\"")) << answer << ReadFile(dir.path() + "/prometheus.log");
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

TEST_F(RunIntegration, RefusesInputsThatAreNotCoPartitioned) {
  TempDir dir;
  Topics t;
  CreateTopic(t.spans, 4);
  CreateTopic(t.feedback, 2);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  Daemon daemon(config, dir.path() + "/daemon.log");
  EXPECT_EQ(daemon.Wait(std::chrono::seconds(30)), 1);
  EXPECT_THAT(ReadFile(dir.path() + "/daemon.log"), HasSubstr("not co-partitioned"));
}

}  // namespace
}  // namespace triaged
