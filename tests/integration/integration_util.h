// Helpers for the integration tests: the real Kafka broker of scripts/kafka-dev.sh (or
// $KAFKA_BOOTSTRAP), kcat as the independent client, and `triaged run` as a child process.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "daemon/ingest.h"
#include "rules/decode.h"
#include "tests/tools/cli_test_util.h"

namespace triaged::it {

using ::triaged::testing::Lines;
using ::triaged::testing::ReadFile;
using ::triaged::testing::SourcePath;
using ::triaged::testing::TempDir;

inline std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

inline std::string Bootstrap() {
  static const std::string boot = [] {
    if (const char* env = std::getenv("KAFKA_BOOTSTRAP")) return std::string(env);
    std::string out = Shell(SourcePath("scripts/kafka-dev.sh") + " status 2>/dev/null");
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    const size_t nl = out.rfind('\n');
    return nl == std::string::npos ? out : out.substr(nl + 1);
  }();
  return boot;
}

inline void CreateTopic(const std::string& name, int partitions,
                        const std::string& bootstrap = Bootstrap()) {
  const std::string cmd = "KAFKA_BOOTSTRAP=" + bootstrap + " " +
                          SourcePath("scripts/kafka-dev.sh") + " create-topic " + name + " " +
                          std::to_string(partitions) + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// A unique suffix per test (and per run), so reruns against a shared broker never collide.
inline std::string NextId() {
  static int counter = 0;
  static const std::string run =
      std::to_string(getpid()) + "-" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
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
inline std::string ConfigFor(const Topics& t, const std::string& bootstrap = Bootstrap()) {
  std::string rules = ReadFile(SourcePath("config/examples/rules.yaml"));
  rules = rules.substr(rules.find("\nrules:"));  // keep the rules, replace everything above
  // Two engine threads whatever the machine has, so the suites run the threaded path.
  return "threads: 2\nkafka:\n  bootstrap_servers: " + bootstrap + "\n  group_id: " + t.group +
         "\ninputs:\n  spans: {topic: " + t.spans + "}\n  feedback: {topic: " + t.feedback +
         "}\ntrace: {decision_wait: 1s, root_grace: 500ms, max_wait: 30s}\n"
         "destinations:\n"
         "  support-review: {kind: queue, topic: " +
         t.support +
         "}\n"
         "  agent-review: {kind: queue, topic: " +
         t.agent +
         "}\n"
         "  regressions: {kind: dataset, topic: " +
         t.regressions +
         "}\n"
         "  session-replay: {kind: dataset, topic: " +
         t.sessions +
         "}\n"
         "dead_letter: {topic: " +
         t.dead_letter +
         "}\n"
         "admin: {listen: 127.0.0.1:0}\n" +
         rules;
}

// Splits the example corpus by input topic, keyed by trace id, as producers would send it.
inline void ProduceCorpus(const Topics& t, const std::string& dir) {
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
      key = !decoded->spans.empty() ? decoded->spans[0].trace_id : decoded->annotations[0].trace_id;
    }
    const std::string payload = parsed.null_payload ? "" : parsed.payload;
    (to_spans ? spans : feedback) << key << '\t' << payload << '\n';
  }
  spans.close();
  feedback.close();
  for (const auto& [topic, file] :
       {std::pair{t.spans, "spans.txt"}, {t.feedback, "feedback.txt"}}) {
    const std::string cmd =
        "kcat -P -b " + Bootstrap() + " -t " + topic + " -K '\t' -l " + dir + "/" + file + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

struct Consumed {
  std::string key, payload;
  std::map<std::string, std::string> headers;
};

inline std::vector<Consumed> ReadTopic(const std::string& topic,
                                       const std::string& bootstrap = Bootstrap()) {
  std::vector<Consumed> out;
  const std::string text =
      Shell("kcat -C -b " + bootstrap + " -t " + topic + " -o beginning -e -q -J 2>/dev/null");
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
        if (h[i].IsString() && h[i + 1].IsString())
          c.headers[h[i].GetString()] = h[i + 1].GetString();
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
  pid_t pid() const { return pid_; }
  // Peak resident memory (VmHWM) in KiB, from /proc; 0 once it has exited.
  long PeakRssKib() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
  }
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

// The malformed lines of config/examples/events.jsonl: each is dead-lettered.
constexpr size_t kExampleDeadLetters = 7;

inline RouteSet Expected(const std::string& config,
                         const std::string& events = SourcePath("config/examples/events.jsonl")) {
  RouteSet want;
  const std::string out =
      Shell(std::string(TRIAGED_BINARY) + " replay -q -c " + config + " " + events);
  for (const std::string& line : Lines(out)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    want.emplace(d["trace_id"].GetString(), d["rule"].GetString(), d["destination"].GetString());
  }
  return want;
}

// Reads every routed topic until `routes` items and `dead_letters` dead letters are there (or a
// deadline passes), checking each item's key and headers on the way.
inline RouteSet WaitForRoutes(const Topics& t, size_t routes, size_t dead_letters,
                              std::vector<Consumed>* dead = nullptr,
                              const std::string& bootstrap = Bootstrap()) {
  RouteSet got;
  std::vector<Consumed> dlq;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    got.clear();
    for (const std::string* topic : {&t.support, &t.agent, &t.regressions, &t.sessions}) {
      for (const Consumed& c : ReadTopic(*topic, bootstrap)) {
        rapidjson::Document d;
        d.Parse(c.payload.c_str());
        EXPECT_TRUE(d.IsObject()) << c.payload;
        if (!d.IsObject()) continue;
        EXPECT_EQ(c.key, d["trace_id"].GetString());
        EXPECT_EQ(c.headers.count("triaged-rule"), 1u) << c.payload;
        EXPECT_EQ(c.headers.count("triaged-destination"), 1u) << c.payload;
        got.emplace(d["trace_id"].GetString(), d["rule"].GetString(), d["destination"].GetString());
      }
    }
    dlq = ReadTopic(t.dead_letter, bootstrap);
    if (got.size() >= routes && dlq.size() >= dead_letters) break;
  }
  if (dead != nullptr) *dead = std::move(dlq);
  return got;
}

// `lines` (key TAB value) produced to `topic` with kcat.
inline void Produce(const TempDir& dir, const std::string& topic,
                    const std::vector<std::string>& lines) {
  const std::string file = dir.path() + "/" + topic + ".txt";
  std::ofstream out(file);
  for (const std::string& l : lines) out << l << "\n";
  out.close();
  const std::string cmd = "kcat -P -b " + Bootstrap() + " -t " + topic + " -K '\t' -l " + file;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// Sum of the samples of a metric family whose line starts with `prefix` (name and labels).
inline double MetricSum(const std::string& metrics, const std::string& prefix) {
  double sum = 0;
  for (const std::string& line : Lines(metrics)) {
    if (line.rfind(prefix, 0) == 0) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// The committed offsets of consumer group `group` in `topic`, summed over its partitions
// (scripts/kafka-dev.sh committed, Kafka's own consumer-group tool).
inline int64_t CommittedSum(const std::string& group, const std::string& topic) {
  const std::string out = Shell("KAFKA_BOOTSTRAP=" + Bootstrap() + " " +
                                SourcePath("scripts/kafka-dev.sh") + " committed " + group);
  int64_t sum = 0;
  for (const std::string& line : Lines(out)) {
    std::istringstream in(line);
    std::string t, partition, offset;
    in >> t >> partition >> offset;
    if (t == topic && !offset.empty() && offset != "-") sum += std::stoll(offset);
  }
  return sum;
}

inline void CreateTopics(const Topics& t, const std::string& bootstrap = Bootstrap()) {
  for (const std::string* topic : {&t.spans, &t.feedback}) CreateTopic(*topic, 4, bootstrap);
  for (const std::string* topic :
       {&t.support, &t.agent, &t.regressions, &t.sessions, &t.dead_letter}) {
    CreateTopic(*topic, 1, bootstrap);
  }
}

// Polls a log file until it contains `text` (or a deadline passes).
inline bool WaitForLog(const std::string& path, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadFile(path).find(text) != std::string::npos) return true;
    usleep(20'000);
  }
  return false;
}

using RouteKeys = std::set<std::tuple<std::string, std::string, std::string>>;

// Waits until the routed topics hold every expected (trace, rule, destination) at least once.
inline RouteKeys WaitForUniqueRoutes(const Topics& t, const RouteSet& want, size_t* duplicates,
                                     size_t dead_letters = kExampleDeadLetters,
                                     const std::string& bootstrap = Bootstrap()) {
  RouteSet got = WaitForRoutes(t, want.size(), dead_letters, nullptr, bootstrap);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (RouteKeys(got.begin(), got.end()).size() < RouteKeys(want.begin(), want.end()).size() &&
         std::chrono::steady_clock::now() < deadline) {
    got = WaitForRoutes(t, got.size() + 1, dead_letters, nullptr, bootstrap);
  }
  RouteKeys unique(got.begin(), got.end());
  *duplicates = got.size() - unique.size();
  return unique;
}

// The admin port the daemon logged (the tests listen on 127.0.0.1:0).
inline std::string LogValue(const std::string& text, const std::string& msg,
                            const std::string& key);
inline std::string AdminPort(const std::string& log) {
  if (!WaitForLog(log, "admin server listening")) return "";
  return LogValue(ReadFile(log), "admin server listening", "port");
}

inline std::string Get(const std::string& port, const std::string& path, int* status = nullptr) {
  const std::string out = Shell("curl -s -w '\\n%{http_code}' http://127.0.0.1:" + port + path);
  const size_t nl = out.rfind('\n');
  if (status != nullptr) *status = nl == std::string::npos ? 0 : std::atoi(out.c_str() + nl + 1);
  return nl == std::string::npos ? out : out.substr(0, nl);
}

// The example corpus routed by a daemon: topics created, the daemon started on
// `config_for(topics)`, the corpus produced, every expected route (and the example's dead letters)
// waited for. Use as ASSERT_NO_FATAL_FAILURE(RouteExample(x, ...)).
struct RoutedExample {
  TempDir dir;
  Topics t;
  std::string config, log, port;
  RouteSet want;
  std::unique_ptr<Daemon> daemon;
};

template <typename ConfigFn>
void RouteExample(RoutedExample& x, ConfigFn config_for) {
  CreateTopics(x.t);
  x.config = x.dir.Write("rules.yaml", config_for(x.t));
  x.want = Expected(x.config);
  x.log = x.dir.path() + "/daemon.log";
  x.daemon = std::make_unique<Daemon>(x.config, x.log);
  x.port = AdminPort(x.log);
  ASSERT_FALSE(x.port.empty()) << ReadFile(x.log);
  ProduceCorpus(x.t, x.dir.path());
  ASSERT_EQ(WaitForRoutes(x.t, x.want.size(), kExampleDeadLetters), x.want) << ReadFile(x.log);
}

// A real Prometheus server (Debian's) scraping the admin server on `target_port` every second,
// with `rule_file` (if any) loaded and evaluated every second. Stopped when destroyed.
class Prometheus {
 public:
  Prometheus(const TempDir& dir, const std::string& target_port, const std::string& rule_file = "")
      : log_(dir.path() + "/prometheus.log") {
    port_ = FreePort();
    const std::string config =
        dir.Write("prometheus.yml",
                  "global: {scrape_interval: 1s, evaluation_interval: 1s}\n" +
                      (rule_file.empty() ? std::string() : "rule_files: ['" + rule_file + "']\n") +
                      "scrape_configs:\n  - job_name: triaged\n    static_configs:\n"
                      "      - targets: ['127.0.0.1:" +
                      target_port + "']\n");
    pid_ = fork();
    if (pid_ == 0) {
      freopen(log_.c_str(), "w", stderr);
      execlp("prometheus", "prometheus", ("--config.file=" + config).c_str(),
             ("--storage.tsdb.path=" + dir.path() + "/tsdb").c_str(),
             ("--web.listen-address=127.0.0.1:" + std::to_string(port_)).c_str(), nullptr);
      _exit(127);
    }
  }
  ~Prometheus() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  Prometheus(const Prometheus&) = delete;
  Prometheus& operator=(const Prometheus&) = delete;

  int port() const { return port_; }
  std::string Log() const { return ReadFile(log_); }
  // GET on its HTTP API, e.g. Api("/api/v1/rules").
  std::string Api(const std::string& path) const {
    return Shell("curl -s 'http://127.0.0.1:" + std::to_string(port_) + path + "'");
  }

  static int FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }

 private:
  std::string log_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Limits depend on arrival order, which differs between replay (event time) and a consumer
// reading two topics; without them the routed set is a function of the traffic alone.
inline std::string WithoutLimits(const std::string& config) {
  return std::regex_replace(config, std::regex(R"(\n *limit:[^\n]*)"), "");
}

// The value of `key` in the first log line with `msg`, as text: a string without its quotes, or
// a number or boolean as written.
inline std::string LogValue(const std::string& text, const std::string& msg,
                            const std::string& key) {
  const size_t line = text.find("\"msg\":\"" + msg + "\"");
  if (line == std::string::npos) return "";
  const size_t at = text.find("\"" + key + "\":", line);
  if (at == std::string::npos || at > text.find('\n', line)) return "";
  size_t begin = at + key.size() + 3;
  if (text[begin] == '"') return text.substr(begin + 1, text.find('"', begin + 1) - begin - 1);
  return text.substr(begin, text.find_first_of(",}", begin) - begin);
}

// The config with `kafka.guarantee` set.
inline std::string WithGuarantee(std::string config, const std::string& guarantee) {
  config.replace(config.find("\n  group_id:"), 0, "\n  guarantee: " + guarantee);
  return config;
}

// One generated traffic (`triaged generate ARGS`) for the input topics of `t`: written to a file
// for replay, and sent to a broker for run — at once (`--burst`) or paced in the background.
class Traffic {
 public:
  Traffic(const TempDir& dir, const Topics& t, std::string args)
      : args_(std::move(args) + " --spans-topic " + t.spans + " --feedback-topic " + t.feedback),
        file_(dir.path() + "/traffic.jsonl"),
        log_(dir.path() + "/generate.log") {
    const ::triaged::testing::Run written =
        ::triaged::testing::RunTriaged("generate " + args_ + " -o " + file_);
    error_ = written.exit_code == 0 ? "" : written.err;
    const std::string n = LogValue(written.err, "generated", "invalid_messages");
    invalid_ = n.empty() ? 0 : std::stoul(n);
  }
  ~Traffic() {
    if (paced_ != nullptr) pclose(paced_);
  }
  const std::string& error() const { return error_; }  // "" when the file was written
  const std::string& file() const { return file_; }
  size_t invalid() const { return invalid_; }  // malformed messages in it

  ::triaged::testing::Run Burst(const std::string& bootstrap) const {
    return ::triaged::testing::RunTriaged("generate --burst " + args_ + " -b " + bootstrap);
  }
  void StartPaced(const std::string& bootstrap) {
    paced_ = popen((std::string(TRIAGED_BINARY) + " generate " + args_ + " -b " + bootstrap + " >" +
                    log_ + " 2>&1")
                       .c_str(),
                   "r");
  }
  // Waits for the paced generator; its exit code (0: every message delivered).
  int WaitPaced() {
    if (paced_ == nullptr) return -1;
    const int status = pclose(paced_);
    paced_ = nullptr;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string Log() const { return ReadFile(log_); }

 private:
  std::string args_, file_, log_, error_;
  size_t invalid_ = 0;
  FILE* paced_ = nullptr;
};

}  // namespace triaged::it
