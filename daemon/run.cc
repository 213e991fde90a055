// `triaged run`: the process around the Pipeline: signals (SIGTERM/SIGINT stop, SIGHUP
// reloads), the real clock and the librdkafka client.
#include <signal.h>

#include <ostream>

#include "daemon/command_util.h"
#include "daemon/log.h"
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
  int code = 1;
  {
    Pipeline pipeline(options, config, clock, LibrdkafkaClientFactory());
    if (pipeline.Start()) {
      const timespec no_wait{0, 0};
      while (!pipeline.failed()) {
        const int sig = sigtimedwait(&signals, nullptr, &no_wait);
        if (sig == SIGTERM || sig == SIGINT) break;
        if (sig == SIGHUP) pipeline.Reload("SIGHUP");
        pipeline.Step();
      }
      code = pipeline.Shutdown();
    }
  }
  // The Kafka clients are gone (or left to the OS): what they logged last is above, and a
  // failure's reason is the last line.
  log::Finish(/*failed=*/code == 1);
  return code;
}

}  // namespace triaged
