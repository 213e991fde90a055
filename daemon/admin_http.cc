#include "daemon/admin_http.h"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/error.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace triaged {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding; a broken %-escape is kept as-is.
std::string UrlDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 &&
               HexValue(in[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (UrlDecode(pair.substr(0, eq)) != key) continue;
    return eq == std::string_view::npos ? std::string() : UrlDecode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

namespace {

bool ConstantTimeEquals(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned char>(g ^ expected[i]);
  }
  return diff == 0;
}

}  // namespace

// The scheme in any case.

bool BearerMatches(std::string_view header, std::string_view token) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
    header.remove_prefix(1);
  }
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  return ConstantTimeEquals(header, token);
}

bool LogThrottle::Allow(TimePoint now, uint64_t& held_back) {
  if (last_ && now - *last_ < interval_) {
    ++held_back_;
    return false;
  }
  last_ = now;
  held_back = std::exchange(held_back_, 0);
  return true;
}

Result<tcp::endpoint> ParseListenAddress(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return MakeError("bad_listen",
                     "admin listen address must be HOST:PORT, got '" + std::string(listen) + "'");
  }
  std::string host(listen.substr(0, colon));
  const std::string_view port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  unsigned port = 0;
  bool port_ok = !port_text.empty() && port_text.size() <= 5;
  for (char c : port_text) {
    if (c < '0' || c > '9')
      port_ok = false;
    else
      port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (!port_ok || port > 65535) {
    return MakeError("bad_listen",
                     "bad port in admin listen address '" + std::string(listen) + "'");
  }
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return MakeError("bad_listen", "bad host in admin listen address '" + std::string(listen) +
                                       "': " + ec.message());
  }
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  if (!in || !(content << in.rdbuf())) {
    return MakeError("admin_token",
                     "cannot read admin.token_file " + path + ": " + std::strerror(errno));
  }
  std::string token = content.str();
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  token.erase(0, token.find_first_not_of(kSpace));
  token.erase(token.find_last_not_of(kSpace) + 1);
  if (token.empty()) return MakeError("admin_token", "admin.token_file " + path + " is empty");
  return token;
}

// One client connection: request/response with keep-alive, or, after GET /v1/tap, a one-way
// stream of lines fed by Publish(). All its handlers run on the admin thread; Offer() is the
// only entry point from other threads.
}  // namespace triaged
