#include "daemon/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>

namespace triaged {
namespace {

// The fields of /proc/self/stat this collector reads (proc(5)).
struct Stat {
  double utime_ticks = 0;
  double stime_ticks = 0;
  double start_ticks = 0;  // since boot
  double vsize_bytes = 0;
  double rss_pages = 0;
};

std::optional<Stat> ReadStat() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces: read after its last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string f;
  Stat s;
  // Field 3 (state) is the first after the name; utime is 14, stime 15, starttime 22,
  // vsize 23, rss 24.
  for (int n = 3; n <= 24 && fields >> f; ++n) {
    if (n == 14) s.utime_ticks = std::strtod(f.c_str(), nullptr);
    if (n == 15) s.stime_ticks = std::strtod(f.c_str(), nullptr);
    if (n == 22) s.start_ticks = std::strtod(f.c_str(), nullptr);
    if (n == 23) s.vsize_bytes = std::strtod(f.c_str(), nullptr);
    if (n == 24) {
      s.rss_pages = std::strtod(f.c_str(), nullptr);
      return s;
    }
  }
  return std::nullopt;
}

// The boot time, seconds since the epoch (/proc/stat btime).
std::optional<double> BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::nullopt;
}

std::optional<double> OpenFds() {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/self/fd", ec);
  if (ec) return std::nullopt;
  double n = 0;
  for (const auto& entry : it) {
    (void)entry;
    ++n;
  }
  return n - 1;  // the iterator's own descriptor
}

std::optional<double> MaxFds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::nullopt;
  return limit.rlim_cur == RLIM_INFINITY ? std::optional<double>()
                                         : static_cast<double>(limit.rlim_cur);
}

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type,
                                std::optional<double> value) {
  prometheus::MetricFamily family{name, help, type, {}};
  if (value) {
    prometheus::ClientMetric m;
    if (type == prometheus::MetricType::Counter) {
      m.counter.value = *value;
    } else {
      m.gauge.value = *value;
    }
    family.metric.push_back(m);
  }
  return family;
}

}  // namespace

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  using prometheus::MetricType;
  const std::optional<Stat> stat = ReadStat();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::optional<double> cpu, rss, vsize, start;
  if (stat && ticks > 0) {
    cpu = (stat->utime_ticks + stat->stime_ticks) / ticks;
    if (const std::optional<double> boot = BootTime()) start = *boot + stat->start_ticks / ticks;
  }
  if (stat) {
    rss = stat->rss_pages * page;
    vsize = stat->vsize_bytes;
  }
  return {
      Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
             MetricType::Counter, cpu),
      Family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, OpenFds()),
      Family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
             MaxFds()),
      Family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
             vsize),
      Family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
             rss),
      Family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
             MetricType::Gauge, start),
  };
}

}  // namespace triaged
