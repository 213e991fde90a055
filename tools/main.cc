// triaged: routes LLM traces with their feedback to annotation queues and datasets. This is
// its command line only: it parses the arguments and hands them to the daemon (`run`) or to one
// of the offline commands.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "daemon/log.h"
#include "daemon/pipeline.h"
#include "daemon/version.h"
#include "rules/decode.h"
#include "tools/broker.h"
#include "tools/commands.h"
#include "tools/generate.h"
#include "tools/schema.h"
#include "tools/tap.h"

namespace triaged {
namespace {

constexpr const char* kVersion = kTriagedVersion;

// A CLI11 transform from `parse` (text to nanoseconds) to the number it stores; `what` is the
// expected form for the error message. An empty value stays 0 (no limit, now).
CLI::Validator Nanoseconds(bool (*parse)(std::string_view, int64_t&), const std::string& what) {
  return CLI::Validator(
      [parse, what](std::string& value) -> std::string {
        int64_t ns = 0;
        if (!value.empty() && !parse(value, ns)) {
          return "expected " + what + ", got \"" + value + "\"";
        }
        value = std::to_string(ns);
        return {};
      },
      "");
}

// The option of a parsed (sub)command that a parse error names (CLI11 starts its messages with
// the option's name), and that command.
std::pair<const CLI::App*, const CLI::Option*> FailedOption(const CLI::App& app,
                                                            std::string_view what) {
  std::vector<const CLI::App*> commands = {&app};
  for (const CLI::App* sub : app.get_subcommands()) commands.push_back(sub);
  for (const CLI::App* command : commands) {
    for (const CLI::Option* option : command->get_options()) {
      if (what.starts_with(option->get_name() + ":")) return {command, option};
    }
  }
  return {nullptr, nullptr};
}

// The exit code of a parse error, after its message. A bad value (a validator's: --duration,
// --start, --log-level) and `explain` without both EVENTS and TRACE_ID are the commands' usage
// errors: exit kExitUsage, the message prefixed with the subcommand like the commands' own.
// Anything else exits as CLI11 has it (0 for --help and --version, 106 for a missing required
// option, ...).
int ParseErrorExit(const CLI::App& app, const CLI::ParseError& e, const CLI::Option* explain_args) {
  const std::string_view what = e.what();
  const auto [command, option] = FailedOption(app, what);
  const bool usage =
      dynamic_cast<const CLI::ValidationError*>(&e) != nullptr ||
      (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr && option == explain_args);
  if (!usage) return app.exit(e);
  if (option == explain_args) {
    std::cerr << "explain: expected EVENTS... TRACE_ID\n";
  } else {
    if (command != nullptr && command != &app) std::cerr << command->get_name() << ": ";
    std::cerr << what << "\n";
  }
  return kExitUsage;
}

}  // namespace
}  // namespace triaged

int main(int argc, char** argv) {
  using namespace triaged;
  std::ios::sync_with_stdio(false);

  CLI::App app{"triaged: routes LLM traces and their feedback to review queues and datasets"};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "Log lines at this level and above (before the command)")
      ->envname("TRIAGED_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();

  ValidateOptions validate;
  CLI::App* validate_cmd = app.add_subcommand("validate", "Check a config; exit 78 on an error");
  validate_cmd->add_option("-c,--config", validate.config_path, "Config file")->required();
  validate_cmd->add_flag("--deny-warnings", validate.deny_warnings,
                         "Fail (exit 78) on a warning as on an error");
  std::string validate_output = "text";
  validate_cmd
      ->add_option("--output", validate_output,
                   "text, or json: one JSON document on stdout (ok, errors, warnings)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  TestOptions test;
  CLI::App* test_cmd = app.add_subcommand("test", "Run rule tests (inputs -> expected routes)");
  test_cmd->add_option("-c,--config", test.config_path, "Config file")->required();
  test_cmd->add_option("tests", test.test_files, "Test files (YAML)")->required();
  std::string test_output = "text";
  test_cmd
      ->add_option("--output", test_output,
                   "text, or junit: a JUnit XML report on stdout (one testsuite per file)")
      ->check(CLI::IsMember({"text", "junit"}))
      ->capture_default_str();

  ReplayOptions replay;
  bool quiet = false;
  CLI::App* replay_cmd = app.add_subcommand(
      "replay", "Dry run on captured events: routed items to stdout, summary to stderr");
  replay_cmd->add_option("-c,--config", replay.config_path, "Config file")->required();
  replay_cmd->add_option("inputs", replay.inputs, "JSONL event files ('-' = stdin)");
  replay_cmd->add_option("--dead-letter", replay.dead_letter_path,
                         "Write refused lines, with their reason, to this JSONL file");
  replay_cmd->add_flag("-q,--quiet", quiet, "No summary on stderr");
  std::string replay_summary = "text";
  replay_cmd
      ->add_option("--summary", replay_summary,
                   "text (a table), or json: the summary as one JSON line, last on stderr")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  replay_cmd
      ->add_option("--partitions", replay.partitions,
                   "Split limits as a deployment whose engines join on P partitions does "
                   "(each trace spends its partition's 1/P share)")
      ->type_name("P")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();

  ExplainOptions explain;
  std::vector<std::string> explain_args;
  CLI::App* explain_cmd =
      app.add_subcommand("explain", "Why each rule did or did not route one trace");
  explain_cmd->add_option("-c,--config", explain.config_path, "Config file")->required();
  const CLI::Option* explain_args_option =
      explain_cmd->add_option("args", explain_args, "EVENTS... TRACE_ID")
          ->required()
          ->expected(2, -1);

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

  CLI::App* schema_cmd = app.add_subcommand(
      "schema", "Print the JSON Schema of the config file (for editors and validators)");

  TapOptions tap;
  CLI::App* tap_cmd = app.add_subcommand(
      "tap",
      "Follow a running daemon's routed items of RULE... (all without one), one JSON a line");
  tap_cmd->add_option("rules", tap.rules, "Rules to follow (none: every rule)")->type_name("RULE");
  tap_cmd
      ->add_option("--admin", tap.admin, "The daemon's admin server (default: admin.listen of -c)")
      ->type_name("HOST:PORT");
  tap_cmd->add_option("-c,--config", tap.config_path,
                      "The daemon's config: its admin.listen and admin.token_file");
  tap_cmd->add_option("--token-file", tap.token_file,
                      "The admin token, for a non-loopback admin server (default: the config's)");
  tap_cmd->add_option("-n,--limit", tap.limit, "Stop after N items (0: until interrupted)")
      ->type_name("N")
      ->capture_default_str();

  GenerateOptions generate;
  CLI::App* generate_cmd = app.add_subcommand(
      "generate", "Realistic synthetic spans and feedback of every shape, to Kafka or a file");
  generate_cmd->add_option("--rate", generate.rate, "Messages per second (of event time)")
      ->capture_default_str();
  generate_cmd->add_flag("--burst", generate.burst,
                         "Send as fast as the broker takes it: the same traffic, not paced");
  generate_cmd
      ->add_option("--duration", generate.duration_ns,
                   "Start traces for this long (10s, 5m, ...); their feedback follows")
      ->type_name("DURATION")
      ->transform(Nanoseconds(ParseDuration, "a duration such as 30s or 5m"));
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
  generate_cmd
      ->add_option("--start", generate.start_ns,
                   "Event time of the first trace, RFC 3339 (default: now)")
      ->type_name("TIME")
      ->transform(Nanoseconds(ParseRfc3339, "an RFC 3339 time"));
  generate_cmd
      ->add_option("--invalid", generate.invalid_ratio,
                   "Share of malformed messages, 0..1 (they are dead-lettered)")
      ->capture_default_str();
  generate_cmd->add_option("-o,--out", generate.out_path,
                           "Write kcat -J style JSONL here instead of producing ('-' = stdout)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ParseErrorExit(app, e, explain_args_option);
  }
  log::SetLevel(log_level);

  if (*schema_cmd) return RunSchema(std::cout);
  if (*broker_cmd) return RunBroker(broker, std::cout, std::cerr);
  if (*generate_cmd) return RunGenerate(generate, std::cout, std::cerr);

  if (*run_cmd) {
    if (run.watch && run.config_path == kStdinConfigPath) {
      std::cerr << "run: --watch watches the config file; -c - reads it from stdin, once\n";
      return kExitUsage;
    }
    return RunDaemon(run, std::cerr);
  }
  if (*tap_cmd) return RunTap(tap, std::cout, std::cerr);

  if (*validate_cmd) {
    validate.json = validate_output == "json";
    return RunValidate(validate, std::cout, std::cerr);
  }
  if (*test_cmd) {
    test.junit = test_output == "junit";
    return RunTests(test, std::cout, std::cerr);
  }
  if (*replay_cmd) {
    replay.summary = !quiet;
    replay.summary_json = replay_summary == "json";
    replay.progress = !quiet && ::isatty(STDERR_FILENO) == 1;
    return RunReplay(replay, std::cout, std::cerr);
  }
  if (*explain_cmd) {
    explain.trace_id = explain_args.back();
    explain_args.pop_back();
    explain.inputs = explain_args;
    return RunExplain(explain, std::cout, std::cerr);
  }
  return kExitUsage;
}
