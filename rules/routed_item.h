// The routed item (DESIGN §4): the self-contained document published for one
// (trace, rule, destination).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rules/ruleset.h"
#include "rules/trace.h"

namespace triaged {

enum class Trigger { kClose, kLateFeedback };
std::string_view TriggerName(Trigger trigger);

struct RoutedItem {
  const Trace* trace = nullptr;
  const RuleSpec* rule = nullptr;
  const DestinationSpec* destination = nullptr;
  Trigger trigger = Trigger::kClose;
  int64_t routed_at_ns = 0;
  std::string_view config_version;
};

// 16 lowercase hex digits of XXH64(trace_id + "\0" + rule + "\0" + destination, seed 0).
std::string RoutedItemId(std::string_view trace_id, std::string_view rule,
                         std::string_view destination);

// The JSON document of DESIGN §4, compact, no trailing newline. A trace with no spans is
// written with `"trace": null` and `"context": "missing"`.
std::string SerializeRoutedItem(const RoutedItem& item);

inline constexpr const char* kRoutedItemSchema = "triaged.routed_item/v1";

}  // namespace triaged
