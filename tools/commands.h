// The offline subcommands (DESIGN §5): validate, replay, explain and test. Each writes to the
// given streams and returns the process exit code, so tests can run them without a process.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace triaged {

// Exit codes of the offline commands and of usage errors on the command line.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;   // tests failed, trace not found
constexpr int kExitUsage = 64;    // sysexits EX_USAGE
constexpr int kExitNoInput = 66;  // sysexits EX_NOINPUT: an input file cannot be read

struct ValidateOptions {
  std::string config_path;
  bool deny_warnings = false;  // a warning fails the check (exit 78) as an error does
  bool json = false;           // `--output json`: one JSON document on stdout
};
int RunValidate(const ValidateOptions& options, std::ostream& out, std::ostream& err);

struct ReplayOptions {
  std::string config_path;
  std::vector<std::string> inputs;  // files; "-" (or none) = stdin
  std::string dead_letter_path;     // JSONL of refused lines; empty = not written
  bool summary = true;              // the per-rule table on stderr
  bool summary_json = false;        // `--summary json`: the summary as one JSON line instead
  bool progress = false;            // a progress line on stderr (main: when it is a terminal)
  // Limits split as in a deployment whose engines join on this many partitions (DESIGN §2.3).
  int32_t partitions = 1;
};
int RunReplay(const ReplayOptions& options, std::ostream& out, std::ostream& err);

struct ExplainOptions {
  std::string config_path;
  std::vector<std::string> inputs;
  std::string trace_id;
};
int RunExplain(const ExplainOptions& options, std::ostream& out, std::ostream& err);

struct TestOptions {
  std::string config_path;
  std::vector<std::string> test_files;
  bool junit = false;  // `--output junit`: a JUnit XML report on stdout instead of text
};
int RunTests(const TestOptions& options, std::ostream& out, std::ostream& err);

}  // namespace triaged
