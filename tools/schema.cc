#include "tools/schema.h"

#include <ostream>

#include "tools/commands.h"

namespace triaged {

int RunSchema(std::ostream& out) {
  out << ConfigJsonSchema();
  out.flush();
  return out ? kExitOk : kExitFailure;
}

}  // namespace triaged
