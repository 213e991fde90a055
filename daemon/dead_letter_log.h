// The dead-letter warnings: the first dead letter is logged at once, where it came from; those
// after it are counted by reason and logged as one line at most once per interval, so a burst of
// bad input costs a few log lines, not one each.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/clock.h"

namespace triaged {

class DeadLetterLog {
 public:
  // The dead letters held back since the last line, by reason.
  struct Summary {
    uint64_t count = 0;
    std::map<std::string, uint64_t, std::less<>> reasons;
    // {"invalid_json":30,"trace_too_large":7}: the log line's `reasons`.
    std::string ReasonsJson() const;
  };

  explicit DeadLetterLog(std::chrono::nanoseconds interval = std::chrono::seconds(10))
      : interval_(interval) {}

  // One dead letter at `now`. True: log it on its own now (none is held back and no line went
  // out in the last interval); false: it is counted for the next summary.
  bool Add(SteadyTime now, std::string_view reason);

  // The summary to log once the interval has passed since the last line, if any dead letter is
  // held back; it is then no longer held.
  std::optional<Summary> Due(SteadyTime now);

  // Whatever is held back, due or not (at shutdown).
  std::optional<Summary> TakeHeld();

 private:
  std::chrono::nanoseconds interval_;
  std::optional<SteadyTime> last_line_;
  Summary held_;
};

}  // namespace triaged
