// `triaged tap`: follows a running daemon's /v1/tap (DESIGN §6) from the command line and
// writes the routed items of the given rules to stdout, one JSON object per line.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace triaged {

struct TapOptions {
  std::string admin;        // HOST:PORT of the admin server; empty: the config's admin.listen
  std::string config_path;  // takes admin.listen (and admin.token_file) from it
  std::string token_file;   // the admin token, for /v1/tap; empty: the config's, if any
  std::vector<std::string> rules;  // none: every rule
  uint64_t limit = 0;              // stop after this many items; 0: until interrupted
};

// Streams until `limit` items were written (exit 0) or the admin server ends a stream (exit 1).
// A rule the daemon does not run, or a refused request, exits 1; an admin server that cannot be
// reached exits 69 (sysexits EX_UNAVAILABLE); a bad config 78; each with a message on `err`.
int RunTap(const TapOptions& options, std::ostream& out, std::ostream& err);

}  // namespace triaged
