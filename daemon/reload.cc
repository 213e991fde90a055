#include "daemon/reload.h"

#include <string>

namespace triaged {

// Everything the RuleSet holds (rules, destinations, `annotations`, mode, sampling, limits, the
// trace timings) is swapped with it; only the fields below need a restart.
Result<void> CheckReloadable(const Config& running, const Config& next) {
  const struct {
    const char* field;
    bool same;
  } fixed[] = {
      {"kafka.bootstrap_servers", running.kafka.bootstrap_servers == next.kafka.bootstrap_servers},
      {"kafka.group_id", running.kafka.group_id == next.kafka.group_id},
      {"kafka.guarantee", running.kafka.guarantee == next.kafka.guarantee},
      {"kafka.properties", running.kafka.properties == next.kafka.properties},
      {"kafka.commit_stall_timeout",
       running.kafka.commit_stall_timeout_ns == next.kafka.commit_stall_timeout_ns},
      {"kafka.shutdown_timeout",
       running.kafka.shutdown_timeout_ns == next.kafka.shutdown_timeout_ns},
      {"inputs.spans.topic", running.inputs.spans_topic == next.inputs.spans_topic},
      {"inputs.spans.format", running.inputs.spans_format == next.inputs.spans_format},
      {"inputs.feedback.topic", running.inputs.feedback_topic == next.inputs.feedback_topic},
      {"inputs.feedback.format", running.inputs.feedback_format == next.inputs.feedback_format},
      {"inputs.repartition", running.inputs.repartition == next.inputs.repartition},
      {"inputs.repartition_partitions",
       running.inputs.repartition_partitions == next.inputs.repartition_partitions},
      {"dead_letter.topic", running.dead_letter_topic == next.dead_letter_topic},
      {"admin.listen", running.admin_listen == next.admin_listen},
      {"admin.token_file", running.admin_token_file == next.admin_token_file},
      {"trace.store", running.trace_store_path == next.trace_store_path},
      {"threads", running.threads == next.threads},
  };
  for (const auto& f : fixed) {
    if (!f.same) {
      return MakeError("restart_required",
                       std::string("restart required: ") + f.field + " changed");
    }
  }
  return {};
}

}  // namespace triaged
