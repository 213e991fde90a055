// `triaged schema`: the JSON Schema of the config file (schemas/config.v1.json, built into the
// binary), for editors' completion and for checking configs with any JSON Schema validator.
#pragma once

#include <iosfwd>
#include <string_view>

namespace triaged {

// The text of schemas/config.v1.json as it was when the binary was built.
std::string_view ConfigJsonSchema();

// Writes the schema to `out`; returns the exit code.
int RunSchema(std::ostream& out);

}  // namespace triaged
