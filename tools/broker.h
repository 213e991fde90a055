// `triaged broker`: the embedded broker alone, for demos and for clients in other processes.
#pragma once

#include <iosfwd>
#include <string>

namespace triaged {

struct BrokerOptions {
  std::string config_path;  // create the topics this config names; none: DESIGN's defaults
  int partitions = 4;
  int brokers = 1;
};

// Starts the broker, prints its bootstrap string on `out`, and runs until SIGTERM/SIGINT
// (exit 0).
int RunBroker(const BrokerOptions& options, std::ostream& out, std::ostream& err);

}  // namespace triaged
