#include "tools/broker.h"

#include <signal.h>

#include <ostream>

#include "config/config.h"
#include "daemon/command_util.h"
#include "daemon/embedded_broker.h"
#include "daemon/log.h"
#include "tools/commands.h"

namespace triaged {

int RunBroker(const BrokerOptions& options, std::ostream& out, std::ostream& err) {
  if (options.partitions < 1 || options.brokers < 1) {
    err << "broker: --partitions and --brokers must be at least 1\n";
    return kExitUsage;
  }
  // Without a config, the default topics of DESIGN §3; others are created on first use.
  std::shared_ptr<const Config> config = std::make_shared<Config>();
  if (!options.config_path.empty()) {
    config = LoadConfigOrReport(options.config_path, err);
    if (!config) return kExitConfig;
  }
  // Block the stop signals before librdkafka starts its threads (they inherit the mask), then
  // wait for one synchronously.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Result<std::unique_ptr<EmbeddedBroker>> broker = EmbeddedBroker::Start(options.brokers);
  if (!broker.ok()) {
    log::Error("cannot start the embedded broker", {{"error", broker.error().message}});
    return kExitFailure;
  }
  {
    Result<void> created = broker.value()->CreateTopicsFor(*config, options.partitions);
    if (!created.ok()) {
      log::Error("cannot create topics", {{"error", created.error().message}});
      return kExitFailure;
    }
  }
  std::string topics;
  for (const std::string& t : ConfigTopics(*config)) topics += (topics.empty() ? "" : ",") + t;
  log::Info("embedded broker listening", {{"bootstrap", broker.value()->bootstrap()},
                                          {"topics", topics},
                                          {"partitions", options.partitions}});
  out << broker.value()->bootstrap() << std::endl;  // flushed: scripts read it from a pipe

  int sig = 0;
  sigwait(&signals, &sig);
  log::Info("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  return kExitOk;
}

}  // namespace triaged
