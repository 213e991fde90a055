#include "rules/ruleset.h"

namespace triaged {

std::string_view DestinationKindName(DestinationKind kind) {
  return kind == DestinationKind::kQueue ? "queue" : "dataset";
}

}  // namespace triaged
