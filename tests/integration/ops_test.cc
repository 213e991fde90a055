// The operations kit checked by the tools that consume it: a real Prometheus server scrapes a
// running daemon (real Kafka, the example traffic) with deploy/prometheus/alerts.yaml loaded, and
// every expression of the alerting rules and of the Grafana dashboard
// (deploy/grafana/triaged.json) is evaluated through its HTTP API. An expression that errors,
// or that names a metric the daemon does not export, fails the test.
#include <gmock/gmock.h>
#include <yaml-cpp/yaml.h>

#include <regex>

#include "tests/integration/integration_util.h"

namespace triaged::it {
namespace {

using ::testing::HasSubstr;

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// One instant query; the parsed answer.
rapidjson::Document Query(int port, const std::string& expr) {
  rapidjson::Document d;
  d.Parse(Shell("curl -sG --data-urlencode " + ShellQuote("query=" + expr) +
                " http://127.0.0.1:" + std::to_string(port) + "/api/v1/query")
              .c_str());
  return d;
}

struct Expression {
  std::string where;  // "alert TriagedDown", "panel Routed /s"
  std::string expr;
};

std::vector<Expression> AlertExpressions() {
  std::vector<Expression> out;
  const YAML::Node file = YAML::LoadFile(SourcePath("deploy/prometheus/alerts.yaml"));
  for (const YAML::Node& group : file["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      out.push_back({"alert " + rule["alert"].as<std::string>(), rule["expr"].as<std::string>()});
    }
  }
  return out;
}

// Grafana's variables, as a dashboard with every replica selected would send them.
std::string Interpolate(std::string expr) {
  expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), "1m");
  expr = std::regex_replace(expr, std::regex(R"(\$instance)"), ".*");
  return expr;
}

std::vector<Expression> DashboardExpressions() {
  std::vector<Expression> out;
  rapidjson::Document d;
  d.Parse(ReadFile(SourcePath("deploy/grafana/triaged.json")).c_str());
  EXPECT_TRUE(d.IsObject()) << "the dashboard is not JSON";
  if (!d.IsObject()) return out;
  for (const auto& panel : d["panels"].GetArray()) {
    if (!panel.HasMember("targets")) continue;
    for (const auto& target : panel["targets"].GetArray()) {
      out.push_back({std::string("panel ") + panel["title"].GetString(),
                     Interpolate(target["expr"].GetString())});
    }
  }
  // Template variable queries name metrics too: label_values(METRIC, label).
  for (const auto& var : d["templating"]["list"].GetArray()) {
    if (!var.HasMember("definition")) continue;
    std::smatch m;
    const std::string def = var["definition"].GetString();
    if (std::regex_search(def, m, std::regex(R"(label_values\((\w+),)"))) {
      out.push_back({std::string("variable ") + var["name"].GetString(), m[1].str()});
    }
  }
  return out;
}

// Metric names the daemon exports (histograms with their _bucket, _sum and _count series).
std::set<std::string> ExportedNames(const std::string& metrics) {
  std::set<std::string> names;
  std::smatch m;
  for (const std::string& line : Lines(metrics)) {
    if (!std::regex_match(line, m, std::regex(R"(# TYPE (\w+) (\w+))"))) continue;
    names.insert(m[1]);
    if (m[2] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) names.insert(m[1].str() + suffix);
    }
  }
  return names;
}

TEST(OpsKit, EveryAlertAndDashboardExpressionEvaluatesAgainstALiveScrape) {
  RoutedExample x;
  ASSERT_NO_FATAL_FAILURE(RouteExample(x, [](const Topics& t) { return ConfigFor(t); }));
  const std::set<std::string> exported = ExportedNames(Get(x.port, "/metrics"));
  ASSERT_TRUE(exported.count("triaged_routed_total")) << Get(x.port, "/metrics");

  Prometheus prometheus(x.dir, x.port, SourcePath("deploy/prometheus/alerts.yaml"));
  const int prom_port = prometheus.port();
  // Until a rate over the scrapes has something to say: three scrapes with routed items, and
  // every rule group evaluated at least once after them.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  bool scraped = false, evaluated = false;
  std::string rules_answer;
  while (std::chrono::steady_clock::now() < deadline && !(scraped && evaluated)) {
    rapidjson::Document d = Query(prom_port, "count_over_time(triaged_build_info[1m])");
    scraped = d.IsObject() && d.HasMember("data") && d["data"]["result"].Size() == 1 &&
              std::stod(d["data"]["result"][0]["value"][1].GetString()) >= 3;
    rules_answer = prometheus.Api("/api/v1/rules");
    evaluated = scraped && rules_answer.find("\"lastEvaluation\":\"0001") == std::string::npos &&
                rules_answer.find("\"health\":\"ok\"") != std::string::npos;
    if (!(scraped && evaluated)) usleep(250'000);  // polling a condition with a deadline
  }
  ASSERT_TRUE(scraped && evaluated) << rules_answer << prometheus.Log();

  std::vector<Expression> all = AlertExpressions();
  const size_t alerts = all.size();
  for (Expression& e : DashboardExpressions()) all.push_back(std::move(e));
  EXPECT_GE(alerts, 8u);
  EXPECT_GE(all.size() - alerts, 20u);
  const std::regex metric_name(R"(\btriaged_\w+)");
  for (const Expression& e : all) {
    rapidjson::Document d = Query(prom_port, e.expr);
    ASSERT_TRUE(d.IsObject()) << e.where << ": " << e.expr;
    EXPECT_STREQ(d["status"].GetString(), "success")
        << e.where << ": " << e.expr << "\n"
        << (d.HasMember("error") ? d["error"].GetString() : "");
    for (auto it = std::sregex_iterator(e.expr.begin(), e.expr.end(), metric_name);
         it != std::sregex_iterator(); ++it) {
      EXPECT_TRUE(exported.count(it->str()))
          << e.where << " names " << it->str() << ", which the daemon does not export";
    }
  }
  // Prometheus evaluated every alerting rule without error.
  rapidjson::Document rules;
  rules.Parse(rules_answer.c_str());
  size_t healthy = 0;
  for (const auto& group : rules["data"]["groups"].GetArray()) {
    for (const auto& rule : group["rules"].GetArray()) {
      EXPECT_STREQ(rule["health"].GetString(), "ok") << rule["name"].GetString();
      healthy += std::string(rule["health"].GetString()) == "ok";
    }
  }
  EXPECT_EQ(healthy, alerts);
  // And the panels read the live traffic, not just parse: a few that must have data now.
  for (const char* expr : {"sum by (rule) (rate(triaged_routed_total[1m]))",
                           "sum by (input) (rate(triaged_events_consumed_total[1m]))",
                           "sum(triaged_traces_open) / sum(triaged_max_open_traces)"}) {
    rapidjson::Document d = Query(prom_port, expr);
    EXPECT_GT(d["data"]["result"].Size(), 0u) << expr;
  }
  EXPECT_THAT(DashboardExpressions().front().expr, HasSubstr("instance=~\".*\""));
  EXPECT_EQ(x.daemon->Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(x.log);
}

}  // namespace
}  // namespace triaged::it
