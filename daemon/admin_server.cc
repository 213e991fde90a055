#include "daemon/admin_server.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <sstream>
#include <utility>

#include "daemon/admin_http.h"
#include "daemon/log.h"
#include "daemon/status_page.h"

namespace triaged {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJsonContentType = "application/json";

std::string ReadinessJson(const Readiness& r) {
  std::string failed;
  auto add = [&](bool ok, std::string_view name) {
    if (ok) return;
    if (!failed.empty()) failed += ',';
    failed += '"';
    failed += name;
    failed += '"';
  };
  add(r.broker_reachable, "broker_reachable");
  add(r.partitions_assigned, "partitions_assigned");
  add(r.config_loaded, "config_loaded");
  add(r.commits_advancing, "commits_advancing");
  return std::string("{\"ready\":") + (failed.empty() ? "true" : "false") + ",\"failed\":[" +
         failed + "]}";
}

// The 404 body of a tap on a rule that does not exist:
// {"error":"no rule named \"x\"","rule":"x","rules":["a","b"]}
std::string UnknownRuleJson(std::string_view rule, const std::vector<std::string>& names) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto string = [&](std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("error");
  string("no rule named \"" + std::string(rule) + "\"");
  w.Key("rule");
  string(rule);
  w.Key("rules");
  w.StartArray();
  for (const std::string& name : names) string(name);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

// Compares in a time that depends on the length of `expected` only, not on where they differ.
bool IsParseError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream;
}

}  // namespace

class AdminServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(AdminServer& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)), write_timer_(stream_.get_executor()) {
    beast::error_code ec;
    const tcp::endpoint peer = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = peer.address().to_string() + ":" + std::to_string(peer.port());
  }

  void Run() { DoRead(); }

  // Shuts the connection (admin thread only).
  void Close() {
    {
      std::lock_guard lock(q_mu_);
      if (closed_) return;
      closed_ = true;
      queue_.clear();
      Release(buffered_);
    }
    server_.connections_.fetch_sub(1, std::memory_order_relaxed);
    if (is_tap_) server_.RemoveTap(this);
    write_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  bool Wants(std::string_view rule) const { return !tap_rule_ || *tap_rule_ == rule; }

  // Queues one line for a tap client; any thread. A client whose lines would take its buffer
  // past tap_queue_bytes reads too slowly to follow the stream: it is dropped, never waited on.
  // (A line is taken into an empty buffer whatever its size.)
  void Offer(std::string_view json) {
    std::lock_guard lock(q_mu_);
    if (closed_ || dropping_) return;
    const size_t size = json.size() + 1;
    if (buffered_ > 0 && buffered_ + size > server_.options_.tap_queue_bytes) {
      dropping_ = true;
      const size_t behind = buffered_;
      queue_.clear();
      Release(buffered_ - in_flight_);
      server_.tap_clients_dropped_.fetch_add(1, std::memory_order_relaxed);
      asio::post(stream_.get_executor(), [self = shared_from_this(), behind] {
        log::Warn("admin server dropped a slow tap client",
                  {{"peer", self->peer_}, {"buffered_bytes", behind}});
        self->Close();
      });
      return;
    }
    queue_.emplace_back(json);
    buffered_ += size;
    server_.tap_queued_bytes_.fetch_add(size, std::memory_order_relaxed);
    if (!writing_) {
      writing_ = true;
      asio::post(stream_.get_executor(), [self = shared_from_this()] { self->DoTapWrite(); });
    }
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(server_.options_.max_request_body);
    stream_.expires_after(server_.options_.idle_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream) return Close();
    if (ec) {
      if (IsParseError(ec)) {
        // Answer what we can, then drop the connection: the stream can no longer be framed.
        auto res =
            std::make_shared<http::response<http::string_body>>(http::status::bad_request, 11);
        res->set(http::field::content_type, "text/plain");
        res->body() = "bad request: " + ec.message() + "\n";
        res->keep_alive(false);
        return Send(std::move(res));
      }
      return Close();  // timeout, reset, shutdown
    }
    http::request<http::string_body> req = parser_->release();
    try {
      Handle(req);
    } catch (const std::exception& e) {
      log::Warn("admin request failed", {{"method", std::string(req.method_string())},
                                         {"target", std::string(req.target())},
                                         {"error", e.what()}});
      Send(Text(req, http::status::internal_server_error, "internal error\n"));
    }
  }

  using Response = http::response<http::string_body>;

  static std::shared_ptr<Response> Text(const http::request<http::string_body>& req,
                                        http::status status, std::string body,
                                        std::string_view content_type = "text/plain") {
    auto res = std::make_shared<Response>(status, req.version());
    res->set(http::field::content_type,
             beast::string_view(content_type.data(), content_type.size()));
    res->body() = std::move(body);
    res->keep_alive(req.keep_alive());
    return res;
  }

  void Handle(const http::request<http::string_body>& req) {
    const std::string_view target(req.target().data(), req.target().size());
    const size_t q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    const bool known = path == "/metrics" || path == "/healthz" || path == "/readyz" ||
                       path == "/v1/rules" || path == "/v1/tap" || path == "/" ||
                       path == "/v1/status";
    if (!known) return Send(Text(req, http::status::not_found, "not found\n"));
    if (req.method() != http::verb::get) {
      auto res = Text(req, http::status::method_not_allowed, "method not allowed\n");
      res->set(http::field::allow, "GET");
      return Send(std::move(res));
    }
    const AdminProviders& p = server_.providers_;
    const http::status access = DataAccess(req);
    if (path == "/healthz") return Send(Text(req, http::status::ok, "ok\n"));
    if (path == "/") {
      return Send(Text(req, http::status::ok, kStatusPageHtml, "text/html; charset=utf-8"));
    }
    if (path == "/v1/status") {
      if (!p.status_json) {
        return Send(Text(req, http::status::service_unavailable, "no status\n"));
      }
      // The status page's document: served to all, its routed items only to whom may see them.
      // A wrong token is told so.
      if (access == http::status::unauthorized && req.count(http::field::authorization) > 0) {
        return Send(Refusal(req, access));
      }
      return Send(
          Text(req, http::status::ok, p.status_json(access == http::status::ok), kJsonContentType));
    }
    if (path == "/metrics") {
      if (!p.metrics) return Send(Text(req, http::status::service_unavailable, "no metrics\n"));
      return Send(Text(req, http::status::ok, p.metrics(), kMetricsContentType));
    }
    if (path == "/readyz") {
      const Readiness r = p.readiness ? p.readiness() : Readiness{};
      const bool ready =
          r.broker_reachable && r.partitions_assigned && r.config_loaded && r.commits_advancing;
      return Send(Text(req, ready ? http::status::ok : http::status::service_unavailable,
                       ReadinessJson(r), kJsonContentType));
    }
    if (path == "/v1/rules") {
      if (!p.rules_json) {
        return Send(Text(req, http::status::service_unavailable, "no rules\n"));
      }
      return Send(Text(req, http::status::ok, p.rules_json(), kJsonContentType));
    }
    if (access != http::status::ok) return Send(Refusal(req, access));
    std::optional<std::string> rule = QueryParam(query, "rule");
    if (rule && p.rule_names) {
      const std::vector<std::string> names = p.rule_names();
      if (std::find(names.begin(), names.end(), *rule) == names.end()) {
        return Send(
            Text(req, http::status::not_found, UnknownRuleJson(*rule, names), kJsonContentType));
      }
    }
    // Tap clients are exempt from the idle timeout; their number is what bounds them.
    if (server_.tap_count_.load(std::memory_order_relaxed) >= server_.options_.max_tap_clients) {
      return Send(Text(
          req, http::status::service_unavailable,
          "too many tap clients (" + std::to_string(server_.options_.max_tap_clients) + ")\n"));
    }
    StartTap(req, std::move(rule));
  }

  // Whether `req` may see routed items (/v1/tap, the recent items of /v1/status): ok, or
  // unauthorized (a token is set and the request does not carry it), or forbidden (no token is
  // set and the listener is not loopback).
  http::status DataAccess(const http::request<http::string_body>& req) const {
    if (const std::optional<std::string>& token = server_.options_.token) {
      const auto header = req[http::field::authorization];
      return BearerMatches(std::string_view(header.data(), header.size()), *token)
                 ? http::status::ok
                 : http::status::unauthorized;
    }
    return server_.loopback_ ? http::status::ok : http::status::forbidden;
  }

  static std::shared_ptr<Response> Refusal(const http::request<http::string_body>& req,
                                           http::status access) {
    if (access == http::status::unauthorized) {
      auto res = Text(req, access, "unauthorized: send Authorization: Bearer <admin token>\n");
      res->set(http::field::www_authenticate, "Bearer realm=\"triaged admin\"");
      return res;
    }
    return Text(req, access,
                "forbidden: routed items are not served on a non-loopback admin listener without "
                "a token; set admin.token_file\n");
  }

  void Send(std::shared_ptr<Response> res) {
    res->prepare_payload();
    stream_.expires_after(server_.options_.idle_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || res->need_eof()) return self->Close();
                        self->DoRead();
                      });
  }

  void StartTap(const http::request<http::string_body>& req, std::optional<std::string> rule) {
    is_tap_ = true;
    tap_rule_ = std::move(rule);
    chunked_ = req.version() >= 11;
    {
      std::lock_guard lock(q_mu_);
      writing_ = true;  // the header goes first; DoTapWrite() takes over after it
    }
    tap_header_.emplace(http::status::ok, req.version());
    tap_header_->set(http::field::content_type, "application/x-ndjson");
    tap_header_->set(http::field::cache_control, "no-cache");
    if (chunked_) {
      tap_header_->chunked(true);
    } else {
      tap_header_->keep_alive(false);  // HTTP/1.0: the stream ends when the connection does
    }
    tap_serializer_.emplace(*tap_header_);
    stream_.expires_never();
    server_.AddTap(shared_from_this());
    ArmWriteTimer();
    http::async_write_header(stream_, *tap_serializer_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Close();
                               self->WatchForHangUp();
                               self->DoTapWrite();
                             });
  }

  // A tap client sends nothing after its request; a completed read means it went away.
  void WatchForHangUp() {
    stream_.async_read_some(asio::buffer(hangup_buf_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->WatchForHangUp();  // ignore stray bytes
                            });
  }

  void ArmWriteTimer() {
    write_timer_.expires_after(server_.options_.tap_write_timeout);
    write_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Close();  // the client stopped reading for too long
    });
  }

  void DoTapWrite() {
    {
      std::lock_guard lock(q_mu_);
      if (closed_ || dropping_) return;
      if (queue_.empty()) {
        writing_ = false;
        write_timer_.cancel();
        return;
      }
      // The lines move into one chunk: buffered_ counts them until it is written.
      size_t bytes = 0;
      for (const std::string& line : queue_) bytes += line.size() + 1;
      out_.clear();
      if (chunked_) {
        char size[24];
        const int n = std::snprintf(size, sizeof size, "%zx\r\n", bytes);
        out_.reserve(static_cast<size_t>(n) + bytes + 2);
        out_.assign(size, static_cast<size_t>(n));
      } else {
        out_.reserve(bytes);
      }
      for (const std::string& line : queue_) {
        out_ += line;
        out_ += '\n';
      }
      if (chunked_) out_ += "\r\n";
      queue_.clear();
      in_flight_ = bytes;
    }
    ArmWriteTimer();
    asio::async_write(stream_, asio::buffer(out_),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        {
                          std::lock_guard lock(self->q_mu_);
                          if (!self->closed_) self->Release(std::exchange(self->in_flight_, 0));
                          self->out_ = std::string();  // its memory too
                        }
                        self->DoTapWrite();
                      });
  }

  // Forgets `bytes` of buffered lines (q_mu_ held).
  void Release(size_t bytes) {
    buffered_ -= bytes;
    server_.tap_queued_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  }

  AdminServer& server_;
  beast::tcp_stream stream_;
  std::string peer_;  // ADDRESS:PORT, for the logs
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;

  // Tap state.
  bool is_tap_ = false;
  bool chunked_ = true;
  std::optional<std::string> tap_rule_;  // nullopt = every rule
  std::optional<http::response<http::empty_body>> tap_header_;
  std::optional<http::response_serializer<http::empty_body>> tap_serializer_;
  asio::steady_timer write_timer_;
  char hangup_buf_[512];
  std::string out_;  // the chunk being written

  std::mutex q_mu_;  // guards the fields below (Offer runs on pipeline threads)
  std::deque<std::string> queue_;
  size_t buffered_ = 0;    // bytes of the lines queued and in flight
  size_t in_flight_ = 0;   // bytes of the lines being written
  bool writing_ = false;   // a DoTapWrite is posted or a write is in flight
  bool dropping_ = false;  // fell too far behind; its Close() is posted
  bool closed_ = false;
};

AdminServer::AdminServer(AdminProviders providers, AdminOptions options)
    : providers_(std::move(providers)), options_(options) {}

AdminServer::~AdminServer() { Stop(); }

Result<uint16_t> AdminServer::Start(std::string_view listen) {
  if (acceptor_) return MakeError("admin_started", "admin server already started");
  if (options_.token && options_.token->empty()) {
    return MakeError("admin_token", "the admin token is empty");
  }
  Result<tcp::endpoint> endpoint = ParseListenAddress(listen);
  if (!endpoint) return endpoint.error();
  loopback_ = endpoint->address().is_loopback();
  if (!loopback_ && !options_.token) {
    log::Warn(
        "the admin listener is not loopback and has no token: /v1/tap and the recent "
        "items of /v1/status are off",
        {{"listen", listen}, {"hint", "set admin.token_file"}});
  }
  beast::error_code ec;
  acceptor_.emplace(ioc_);
  auto fail = [&](std::string_view what) {
    acceptor_.reset();
    return MakeError("admin_listen", "admin server: cannot " + std::string(what) + " " +
                                         std::string(listen) + ": " + ec.message());
  };
  if (acceptor_->open(endpoint->protocol(), ec)) return fail("open");
  if (acceptor_->set_option(asio::socket_base::reuse_address(true), ec)) return fail("set up");
  if (acceptor_->bind(*endpoint, ec)) return fail("bind");
  if (acceptor_->listen(asio::socket_base::max_listen_connections, ec)) return fail("listen on");
  const uint16_t port = acceptor_->local_endpoint(ec).port();
  if (ec) return fail("query");
  accept_retry_.emplace(ioc_);
  DoAccept();
  thread_ = std::thread([this] {
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        log::Error("admin server failed", {{"error", e.what()}});
      }
    }
  });
  return port;
}

void AdminServer::Stop() {
  std::call_once(stop_once_, [this] {
    if (!thread_.joinable()) return;
    asio::post(ioc_, [this] {
      beast::error_code ec;
      acceptor_->close(ec);
      accept_retry_->cancel();
      for (const std::weak_ptr<Session>& weak : sessions_) {
        if (auto session = weak.lock()) session->Close();
      }
      sessions_.clear();
      // Completions still pending are dropped with the io_context.
      ioc_.stop();
    });
    thread_.join();
  });
}

void AdminServer::DoAccept() {
  acceptor_->async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (!ec && connections_.load(std::memory_order_relaxed) >= options_.max_connections) {
      Refuse(std::move(socket));
      DoAccept();
      return;
    }
    if (!ec) {
      connections_.fetch_add(1, std::memory_order_relaxed);
      auto session = std::make_shared<Session>(*this, std::move(socket));
      std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
      sessions_.push_back(session);
      session->Run();
      DoAccept();
      return;
    }
    // Out of descriptors or similar: back off instead of spinning on the error, and say so
    // once a second at most.
    if (uint64_t held_back; accept_log_.Allow(std::chrono::steady_clock::now(), held_back)) {
      log::Warn("admin server cannot accept", {{"error", ec.message()}, {"repeated", held_back}});
    }
    accept_retry_->expires_after(std::chrono::milliseconds(100));
    accept_retry_->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor_->is_open()) DoAccept();
    });
  });
}

// Answers 503 and closes at once, on the admin thread, without waiting on the client: the
// answer fits in an empty socket buffer.
void AdminServer::Refuse(tcp::socket socket) {
  static constexpr std::string_view kBody = "too many admin connections\n";
  static const std::string kResponse =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\nConnection: close\r\n\r\n" + std::string(kBody);
  connections_refused_.fetch_add(1, std::memory_order_relaxed);
  if (uint64_t held_back; refuse_log_.Allow(std::chrono::steady_clock::now(), held_back)) {
    log::Warn("admin server refused a connection: too many",
              {{"max_connections", options_.max_connections}, {"repeated", held_back}});
  }
  beast::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(kResponse), ec);
  // Read what already came, so that closing does not reset the connection over unread bytes.
  char discard[4096];
  socket.read_some(asio::buffer(discard), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void AdminServer::AddTap(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(taps_mu_);
  taps_.push_back(session);
  tap_count_.store(taps_.size(), std::memory_order_relaxed);
}

void AdminServer::RemoveTap(const Session* session) {
  std::lock_guard lock(taps_mu_);
  std::erase_if(taps_, [&](const std::weak_ptr<Session>& w) {
    auto s = w.lock();
    return !s || s.get() == session;
  });
  tap_count_.store(taps_.size(), std::memory_order_relaxed);
}

void AdminServer::Publish(std::string_view rule, std::string_view json) {
  if (tap_count_.load(std::memory_order_relaxed) == 0) return;  // the common case
  std::lock_guard lock(taps_mu_);
  for (const std::weak_ptr<Session>& weak : taps_) {
    if (auto session = weak.lock(); session && session->Wants(rule)) session->Offer(json);
  }
}

}  // namespace triaged
