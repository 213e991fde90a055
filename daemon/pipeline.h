// `triaged run`: the long-running job. Consumes the spans and feedback topics in a consumer
// group, keeps one engine per partition (the two topics are co-partitioned, so partition p of
// both carries the same traces), produces routed items and dead letters, and commits offsets
// at-least-once (DESIGN §6): never past the first event of an undecided trace, never before the
// routed items of a decided trace are acknowledged; with `guarantee: exactly_once`, in Kafka
// transactions instead (daemon/exactly_once.h).
#pragma once

#include <iosfwd>
#include <string>

namespace triaged {

struct RunOptions {
  std::string config_path;
  bool watch = false;  // reload when the config file changes
};

// Runs until SIGTERM/SIGINT; SIGHUP reloads the config. Returns the exit code.
int RunDaemon(const RunOptions& options, std::ostream& err);

}  // namespace triaged
