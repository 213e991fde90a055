// The routed item (DESIGN §4): the self-contained document published for one
// (trace, rule, destination).
#pragma once

#include <cstdint>
#include <limits>
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
// written with `"trace": null` and `"context": "missing"`. `feedback` is the trace's
// annotations, then its session's (`trace.session()`, while the engine evaluates it) with the
// trace's id; `annotation` is the latest human annotation's score, label and explanation
// (status "annotated"; "pending" without one) and the latest expected_output of any source.
// Items to dataset destinations also carry `expected_output`, `annotation_status` and
// `feedback_category` (the label of the latest labeled annotation) at the top level. A document
// over `max_bytes` is made to fit (DESIGN §4 Size): string values longer than the longest length
// that fits are cut (ending with "…"), then spans past the first ones are left out
// (`"spans_omitted": N`); such a document carries `"truncated": {"bytes_before": N}`. A document
// that cannot fit even so is returned as small as it gets.
//
// `body`, when given, holds what the items of one evaluation of the trace share (its `trace`
// and `feedback`): written by the first item that needs it, copied by the others. It must not
// outlive that evaluation (the trace and its feedback may change after it).
struct RoutedItemBody {
  std::string trace, feedback;  // JSON values; empty until written
};
std::string SerializeRoutedItem(const RoutedItem& item,
                                size_t max_bytes = std::numeric_limits<size_t>::max(),
                                RoutedItemBody* body = nullptr);

// Strings are never cut shorter than this (ids and names stay whole).
inline constexpr size_t kMinStringCut = 256;
// The default of `max_item_bytes`: under Kafka's default message limit of 1 MB.
inline constexpr size_t kDefaultMaxItemBytes = 900 * 1024;

inline constexpr const char* kRoutedItemSchema = "triaged.routed_item/v1";

}  // namespace triaged
