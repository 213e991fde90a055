// The standard Prometheus `process_*` collector (DESIGN §6): CPU time, memory, file
// descriptors and start time of this process, read from /proc/self at scrape time.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace triaged {

// Names and types as the official clients export them: process_cpu_seconds_total (counter),
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds and process_start_time_seconds (gauges). A value that cannot be read (no
// /proc) leaves its family with HELP and TYPE and no series.
class ProcessMetrics final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace triaged
