// `triaged run`: the process around the Pipeline: signals (SIGTERM/SIGINT stop, SIGHUP
// reloads), the real clock and the librdkafka client.
#include <signal.h>

#include <ostream>

#include "daemon/command_util.h"
#include "daemon/pipeline.h"

namespace triaged {

int RunDaemon(const RunOptions& options, std::ostream& err) {
  std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
  if (!config) return kExitConfig;
  LogConfigWarnings(*config);
  // Signals are taken synchronously (sigtimedwait) in the loop; blocking them first keeps
  // librdkafka's threads, which inherit the mask, from receiving them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const RealClock clock;
  Pipeline pipeline(options, config, clock, LibrdkafkaClientFactory());
  if (!pipeline.Start()) return 1;
  const timespec no_wait{0, 0};
  while (!pipeline.failed()) {
    const int sig = sigtimedwait(&signals, nullptr, &no_wait);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGHUP) pipeline.Reload("SIGHUP");
    pipeline.Step();
  }
  return pipeline.Shutdown();
}

}  // namespace triaged
