#include "tools/tap.h"

#include <poll.h>
#include <rapidjson/document.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <string_view>
#include <utility>

#include "daemon/admin_http.h"
#include "daemon/command_util.h"
#include "tools/commands.h"

namespace triaged {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr int kExitUnavailable = 69;  // sysexits EX_UNAVAILABLE

// The host and port to connect to for a listen address: a wildcard host is this machine.
std::optional<std::pair<std::string, std::string>> ConnectAddress(std::string_view admin) {
  const size_t colon = admin.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == admin.size()) return std::nullopt;
  std::string host(admin.substr(0, colon));
  std::string port(admin.substr(colon + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  return std::make_pair(std::move(host), std::move(port));
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

// What a refusal's body says: the 404's rule and the known rules, else the body as it is.
std::string RefusalMessage(unsigned status, const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  if (status == 404 && !doc.HasParseError() && doc.IsObject() && doc.HasMember("error") &&
      doc["error"].IsString() && doc.HasMember("rules") && doc["rules"].IsArray()) {
    std::string known;
    for (const rapidjson::Value& name : doc["rules"].GetArray()) {
      if (!name.IsString()) continue;
      if (!known.empty()) known += ", ";
      known += name.GetString();
    }
    return std::string(doc["error"].GetString()) +
           (known.empty() ? " (the daemon runs no rules)" : " (rules: " + known + ")");
  }
  std::string text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return "the admin server answered " + std::to_string(status) + (text.empty() ? "" : ": " + text);
}

// One /v1/tap stream: the lines not yet complete are kept in `pending`.
struct TapStream {
  explicit TapStream(asio::io_context& ioc) : socket(ioc) {}
  std::string rule;  // empty: every rule
  tcp::socket socket;
  std::string pending;
};

}  // namespace

int RunTap(const TapOptions& options, std::ostream& out, std::ostream& err) {
  std::string admin = options.admin;
  std::string token_file = options.token_file;
  if (!options.config_path.empty()) {
    std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
    if (!config) return kExitConfig;
    if (admin.empty()) admin = config->admin_listen;
    if (token_file.empty()) token_file = config->admin_token_file;
  }
  if (admin.empty()) {
    err << "tap: give the admin server (--admin HOST:PORT) or the daemon's config (-c)\n";
    return kExitUsage;
  }
  const std::optional<std::pair<std::string, std::string>> address = ConnectAddress(admin);
  if (!address) {
    err << "tap: expected HOST:PORT for the admin server, got \"" << admin << "\"\n";
    return kExitUsage;
  }
  std::optional<std::string> token;
  if (!token_file.empty()) {
    Result<std::string> read = ReadTokenFile(token_file);
    if (!read.ok()) {
      err << "tap: " << read.error().message << "\n";
      return kExitNoInput;
    }
    token = *read;
  }

  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  const tcp::resolver::results_type endpoints =
      resolver.resolve(address->first, address->second, ec);
  if (ec) {
    err << "tap: cannot resolve the admin server " << admin << ": " << ec.message() << "\n";
    return kExitUnavailable;
  }
  std::vector<std::string> rules = options.rules;
  if (rules.empty()) rules.emplace_back();  // one stream of every rule
  std::vector<std::unique_ptr<TapStream>> streams;
  for (const std::string& rule : rules) {
    auto stream = std::make_unique<TapStream>(ioc);
    stream->rule = rule;
    asio::connect(stream->socket, endpoints, ec);
    if (ec) {
      err << "tap: cannot connect to the admin server at " << admin << ": " << ec.message() << "\n";
      return kExitUnavailable;
    }
    // HTTP/1.0: the stream is the body, unchunked, and ends with the connection.
    http::request<http::empty_body> req{
        http::verb::get, rule.empty() ? "/v1/tap" : "/v1/tap?rule=" + PercentEncode(rule), 10};
    req.set(http::field::host, address->first);
    if (token) req.set(http::field::authorization, "Bearer " + *token);
    http::write(stream->socket, req, ec);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    if (!ec) http::read_header(stream->socket, buffer, parser, ec);
    if (ec) {
      err << "tap: the admin server at " << admin << " did not answer: " << ec.message() << "\n";
      return kExitUnavailable;
    }
    const unsigned status = parser.get().result_int();
    if (status != 200) {
      http::read(stream->socket, buffer, parser, ec);  // the refusal's body
      err << "tap: " << RefusalMessage(status, parser.get().body()) << "\n";
      return kExitFailure;
    }
    // What was read past the header is the stream's beginning.
    stream->pending.assign(static_cast<const char*>(buffer.data().data()), buffer.size());
    streams.push_back(std::move(stream));
  }

  uint64_t written = 0;
  // Writes the complete lines of `s`; false once the limit is reached.
  auto drain = [&](TapStream& s) {
    size_t start = 0;
    for (size_t nl; (nl = s.pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.write(s.pending.data() + start, static_cast<std::streamsize>(nl + 1 - start));
      out.flush();
      if (options.limit > 0 && ++written >= options.limit) return false;
    }
    s.pending.erase(0, start);
    return true;
  };
  for (const auto& s : streams) {
    if (!drain(*s)) return kExitOk;
  }
  std::vector<pollfd> fds;
  for (const auto& s : streams) fds.push_back(pollfd{s->socket.native_handle(), POLLIN, 0});
  char chunk[16 * 1024];
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      err << "tap: poll: " << std::strerror(errno) << "\n";
      return kExitFailure;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      TapStream& s = *streams[i];
      const size_t n = s.socket.read_some(asio::buffer(chunk), ec);
      if (ec) {
        err << "tap: the admin server ended the stream"
            << (s.rule.empty() ? "" : " of rule \"" + s.rule + "\"") << " ("
            << (ec == asio::error::eof ? "the daemon stopped?" : ec.message()) << ")\n";
        return kExitFailure;
      }
      s.pending.append(chunk, n);
      if (!drain(s)) return kExitOk;
    }
  }
}

}  // namespace triaged
