// The daemon's time: steady time (intervals, timeouts, latencies) and system time (event time,
// routed_at) are different types, so they cannot be mixed. The pipeline reads both through a
// Clock, which tests replace with a ManualClock they move by hand.
#pragma once

#include <chrono>
#include <cstdint>

namespace triaged {

using SteadyTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime Steady() const = 0;
  virtual SystemTime System() const = 0;
};

class RealClock final : public Clock {
 public:
  SteadyTime Steady() const override { return std::chrono::steady_clock::now(); }
  SystemTime System() const override { return std::chrono::system_clock::now(); }
};

// A clock that moves only when told to: both times advance together.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(SystemTime start = SystemTime(std::chrono::seconds(1'793'527'200)))
      : system_(start) {}
  SteadyTime Steady() const override { return steady_; }
  SystemTime System() const override { return system_; }
  void Advance(std::chrono::nanoseconds by) {
    steady_ += by;
    system_ += std::chrono::duration_cast<SystemTime::duration>(by);
  }

 private:
  SteadyTime steady_{};
  SystemTime system_;
};

// Nanoseconds since the Unix epoch: the engine's event time.
inline int64_t UnixNanos(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

inline double Seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace triaged
