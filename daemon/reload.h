// What a reload may change (DESIGN §6 Reload): rules, destinations, mode, sampling, limits and
// the trace timings. The Kafka clients, the inputs they are subscribed to, the dead-letter topic
// and the admin listener are fixed for the life of the process.
#pragma once

#include "config/config.h"
#include "rules/result.h"

namespace triaged {

// An error "restart required: <field> changed" naming the first fixed field that differs.
Result<void> CheckReloadable(const Config& running, const Config& next);

}  // namespace triaged
