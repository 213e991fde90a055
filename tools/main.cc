// triaged: routes LLM traces with their feedback to annotation queues and datasets.
#include <CLI/CLI.hpp>
#include <iostream>

#include "config/config.h"
#include "daemon/pipeline.h"
#include "daemon/version.h"
#include "rules/decode.h"
#include "tools/broker.h"
#include "tools/commands.h"
#include "tools/generate.h"

namespace {

constexpr const char* kVersion = triaged::kTriagedVersion;

}  // namespace

int main(int argc, char** argv) {
  using namespace triaged;
  std::ios::sync_with_stdio(false);

  CLI::App app{"triaged: routes LLM traces and their feedback to review queues and datasets"};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);

  ValidateOptions validate;
  CLI::App* validate_cmd = app.add_subcommand("validate", "Check a config; exit 78 on an error");
  validate_cmd->add_option("-c,--config", validate.config_path, "Config file")->required();

  TestOptions test;
  CLI::App* test_cmd = app.add_subcommand("test", "Run rule tests (inputs -> expected routes)");
  test_cmd->add_option("-c,--config", test.config_path, "Config file")->required();
  test_cmd->add_option("tests", test.test_files, "Test files (YAML)")->required();

  ReplayOptions replay;
  bool quiet = false;
  CLI::App* replay_cmd = app.add_subcommand(
      "replay", "Dry run on captured events: routed items to stdout, summary to stderr");
  replay_cmd->add_option("-c,--config", replay.config_path, "Config file")->required();
  replay_cmd->add_option("inputs", replay.inputs, "JSONL event files ('-' = stdin)");
  replay_cmd->add_option("--dead-letter", replay.dead_letter_path,
                         "Write refused lines, with their reason, to this JSONL file");
  replay_cmd->add_flag("-q,--quiet", quiet, "No summary on stderr");

  ExplainOptions explain;
  std::vector<std::string> explain_args;
  CLI::App* explain_cmd =
      app.add_subcommand("explain", "Why each rule did or did not route one trace");
  explain_cmd->add_option("-c,--config", explain.config_path, "Config file")->required();
  explain_cmd->add_option("args", explain_args, "EVENTS... TRACE_ID")->required();

  RunOptions run;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "The daemon: consume spans and feedback, route, publish; SIGHUP reloads");
  run_cmd->add_option("-c,--config", run.config_path, "Config file")->required();
  run_cmd->add_flag("--watch", run.watch, "Reload when the config file changes");

  BrokerOptions broker;
  CLI::App* broker_cmd = app.add_subcommand(
      "broker", "The embedded broker alone (in-memory, for demos); prints its bootstrap");
  broker_cmd->add_option("-c,--config", broker.config_path,
                         "Create the topics this config names (default: llm.spans, llm.feedback, "
                         "triaged.dead-letter)");
  broker_cmd->add_option("--partitions", broker.partitions, "Partitions per topic")
      ->capture_default_str();
  broker_cmd->add_option("--brokers", broker.brokers, "Brokers in the cluster")
      ->capture_default_str();

  GenerateOptions generate;
  std::string duration, start;
  CLI::App* generate_cmd = app.add_subcommand(
      "generate", "Realistic synthetic spans and feedback of every shape, to Kafka or a file");
  generate_cmd->add_option("--rate", generate.rate, "Messages per second (of event time)")
      ->capture_default_str();
  generate_cmd->add_flag("--burst", generate.burst,
                         "Send as fast as the broker takes it: the same traffic, not paced");
  generate_cmd->add_option("--duration", duration,
                           "Start traces for this long (10s, 5m, ...); their feedback follows");
  generate_cmd->add_option("--events", generate.max_events,
                           "Stop starting traces after N messages");
  generate_cmd->add_option("-b,--bootstrap", generate.bootstrap,
                           "Kafka bootstrap servers (default: the config's, or $KAFKA_BOOTSTRAP)");
  generate_cmd->add_option("-c,--config", generate.config_path,
                           "Take the input topics (and bootstrap, properties) from this config");
  generate_cmd->add_option("--spans-topic", generate.spans_topic)->capture_default_str();
  generate_cmd->add_option("--feedback-topic", generate.feedback_topic)->capture_default_str();
  generate_cmd->add_option("--seed", generate.seed, "The same seed and start give the same traffic")
      ->capture_default_str();
  generate_cmd->add_option("--start", start,
                           "Event time of the first trace, RFC 3339 (default: now)");
  generate_cmd
      ->add_option("--invalid", generate.invalid_ratio,
                   "Share of malformed messages, 0..1 (they are dead-lettered)")
      ->capture_default_str();
  generate_cmd->add_option("-o,--out", generate.out_path,
                           "Write kcat -J style JSONL here instead of producing ('-' = stdout)");

  CLI11_PARSE(app, argc, argv);

  if (*broker_cmd) return RunBroker(broker, std::cout, std::cerr);
  if (*generate_cmd) {
    if (!duration.empty() && !ParseDuration(duration, generate.duration_ns)) {
      std::cerr << "generate: --duration: expected a duration such as 30s or 5m, got \"" << duration
                << "\"\n";
      return kExitUsage;
    }
    if (!start.empty() && !ParseRfc3339(start, generate.start_ns)) {
      std::cerr << "generate: --start: expected an RFC 3339 time, got \"" << start << "\"\n";
      return kExitUsage;
    }
    return RunGenerate(generate, std::cout, std::cerr);
  }

  if (*run_cmd) return RunDaemon(run, std::cerr);

  if (*validate_cmd) return RunValidate(validate, std::cout, std::cerr);
  if (*test_cmd) return RunTests(test, std::cout, std::cerr);
  if (*replay_cmd) {
    replay.summary = !quiet;
    return RunReplay(replay, std::cout, std::cerr);
  }
  if (*explain_cmd) {
    if (explain_args.size() < 2) {
      std::cerr << "explain: expected EVENTS... TRACE_ID\n";
      return kExitUsage;
    }
    explain.trace_id = explain_args.back();
    explain_args.pop_back();
    explain.inputs = explain_args;
    return RunExplain(explain, std::cout, std::cerr);
  }
  return kExitUsage;
}
