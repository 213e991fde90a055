// triaged: routes LLM traces with their feedback to annotation queues and datasets.
#include <CLI/CLI.hpp>

#include <iostream>

#include "daemon/commands.h"
#include "daemon/pipeline.h"
#include "daemon/version.h"

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

  CLI11_PARSE(app, argc, argv);

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
