// The admin server's HTTP pieces that need no server: listen addresses, query strings, bearer
// tokens and the token file, and a throttle for log lines repeated in a loop.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rules/result.h"

namespace triaged {

// The value of `key` in a URL query string ("a=1&rule=x"), percent-decoded.
std::optional<std::string> QueryParam(std::string_view query, std::string_view key);

// Whether an Authorization header carries `Bearer <token>` (compared in constant time).
bool BearerMatches(std::string_view header, std::string_view token);

// Lets a repeated log line through at most once per `interval`, counting the ones held back.
class LogThrottle {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  explicit LogThrottle(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  // Whether to log the line now; if so, `held_back` is set to how many were held back since
  // the last one logged.
  bool Allow(TimePoint now, uint64_t& held_back);

 private:
  std::chrono::steady_clock::duration interval_;
  std::optional<TimePoint> last_;  // when a line was last let through
  uint64_t held_back_ = 0;
};

// Splits "HOST:PORT" ("127.0.0.1:9464", "[::1]:9464", "localhost:0", ":9464" = all IPv4).
Result<boost::asio::ip::tcp::endpoint> ParseListenAddress(std::string_view listen);

// The admin token in the file at `path` (admin.token_file): its content without surrounding
// whitespace. A file that cannot be read or holds only whitespace is an error.
Result<std::string> ReadTokenFile(const std::string& path);

}  // namespace triaged
