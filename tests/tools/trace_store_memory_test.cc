// Memory does not grow with `late_feedback_window` when closed traces live in the trace store
// (DESIGN §6): a replay of 40k traces over 100 minutes of event time with a 7-day window and
// `trace.store` peaks within 2x of the same replay with a 10-minute window in memory, while the
// same 7-day window in memory keeps every trace. bench/run.sh measures the same with 1M traces.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <regex>
#include <string>

#include "tests/tools/cli_test_util.h"

namespace triaged {
namespace {

using ::triaged::testing::ReadFile;
using ::triaged::testing::SourcePath;
using ::triaged::testing::TempDir;

// Peak resident memory of `triaged ARGS` in KiB (the child's ru_maxrss).
long PeakRssKib(const std::string& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    // The sanitizer's quarantine of freed memory would count as resident: keep it small.
    setenv("ASAN_OPTIONS", "quarantine_size_mb=1:detect_leaks=0", 1);
    execl("/bin/sh", "sh", "-c", (std::string(TRIAGED_BINARY) + " " + args).c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return -1;
  }
  return usage.ru_maxrss;
}

std::string WithTrace(const std::string& trace) {
  std::string rules = ReadFile(SourcePath("config/examples/rules.yaml"));
  return std::regex_replace(rules, std::regex("\ntrace:\n(  .*\n)+"), "\ntrace:\n" + trace);
}

TEST(TraceStoreMemory, SevenDaysWithTheStoreCostWhatTenMinutesInMemoryDo) {
  TempDir dir;
  const std::string events = dir.path() + "/events.jsonl";
  ASSERT_EQ(std::system((std::string(TRIAGED_BINARY) +
                         " generate --rate 20 --duration 50m --seed 7"
                         " --start 2026-11-01T00:00:00Z -o " +
                         events + " 2>/dev/null")
                            .c_str()),
            0);
  const std::string timing =
      "  decision_wait: 10s\n  root_grace: 2s\n  max_wait: 5m\n  max_open_traces: 2000000\n";
  const std::string ten_minutes =
      dir.Write("10m.yaml", WithTrace(timing + "  late_feedback_window: 10m\n"));
  const std::string seven_days_stored =
      dir.Write("7d-store.yaml", WithTrace(timing + "  late_feedback_window: 7d\n  store: {path: " +
                                           dir.path() + "/unused}\n"));
  const long baseline = PeakRssKib("replay -q -c " + ten_minutes + " " + events + " >/dev/null");
  const long stored =
      PeakRssKib("replay -q -c " + seven_days_stored + " " + events + " >/dev/null");
  ASSERT_GT(baseline, 0);
  ASSERT_GT(stored, 0);
  EXPECT_LE(stored, 2 * baseline) << "10m in memory " << baseline << " KiB, 7d with the store "
                                  << stored << " KiB";
  RecordProperty("rss_10m_kib", std::to_string(baseline));
  RecordProperty("rss_7d_store_kib", std::to_string(stored));
}

}  // namespace
}  // namespace triaged
