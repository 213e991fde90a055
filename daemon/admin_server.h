// The admin HTTP server (DESIGN §6): /metrics, /healthz, /readyz, /v1/rules and the /v1/tap
// live stream of routed items, plus the status page at / and its /v1/status document, served
// by Boost.Beast on a thread of its own.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon/admin_http.h"
#include "rules/result.h"

namespace triaged {

// What /readyz checks. Every field must be true for a 200.
struct Readiness {
  bool broker_reachable = false;
  bool partitions_assigned = false;
  bool config_loaded = false;
  // No partition's commit point has been stuck behind waiting input for longer than
  // kafka.commit_stall_timeout.
  bool commits_advancing = true;
};

// Where the server gets its answers. Each is called on the admin thread, once per request, so
// it must be safe to call concurrently with the pipeline. A missing provider answers 503.
struct AdminProviders {
  std::function<std::string()> metrics;  // Prometheus text format (Metrics::Serialize)
  std::function<Readiness()> readiness;
  std::function<std::string()> rules_json;  // the /v1/rules document
  // The /v1/status document (the status page's); without its `recent` routed items (an empty
  // array) for a client that may not see routed items.
  std::function<std::string(bool with_recent)> status_json;
  // The names of the running rules: /v1/tap?rule=NAME answers 404 for a name not among them,
  // with a JSON body listing them. Missing: any name is taken.
  std::function<std::vector<std::string>()> rule_names;
};

struct AdminOptions {
  // Bytes of lines held for one tap client; a client that falls this far behind is dropped.
  size_t tap_queue_bytes = 1 << 20;
  size_t max_tap_clients = 64;   // a tap request beyond it gets 503
  size_t max_connections = 256;  // a connection beyond it gets 503 and is closed at once
  // Keep-alive and request reads. Tap clients send nothing after their request and are exempt:
  // max_tap_clients bounds them.
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds tap_write_timeout{60'000};  // a tap write stalled this long closes
  uint64_t max_request_body = 64 * 1024;
  // Routed items carry prompts and completions. With a token, /v1/tap and the recent items of
  // /v1/status are served only to `Authorization: Bearer <token>`; without one, only on a
  // loopback listener. Must not be empty.
  std::optional<std::string> token;
};

class AdminServer {
 public:
  explicit AdminServer(AdminProviders providers, AdminOptions options = {});
  ~AdminServer();  // Stop()s
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds `listen` and starts serving on a new thread. Returns the bound port (so port 0 picks
  // a free one). Call once.
  Result<uint16_t> Start(std::string_view listen);

  // Closes the listener and every connection, and joins the thread. Idempotent.
  void Stop();

  // Offers one routed item (JSON, one line, no newline) to the tap clients watching `rule`.
  // Callable from any thread; never waits on a client: one whose buffer is full is dropped
  // (its connection closed).
  void Publish(std::string_view rule, std::string_view json);

  // Tap clients currently connected.
  size_t tap_clients() const { return tap_count_.load(std::memory_order_relaxed); }
  // Tap clients dropped for falling tap_queue_bytes behind, over the server's life.
  uint64_t tap_clients_dropped() const {
    return tap_clients_dropped_.load(std::memory_order_relaxed);
  }
  // Bytes of tap lines held for all tap clients (queued or being written).
  size_t tap_queued_bytes() const { return tap_queued_bytes_.load(std::memory_order_relaxed); }
  // Connections currently open, taps included.
  size_t connections() const { return connections_.load(std::memory_order_relaxed); }
  // Connections refused for max_connections, over the server's life.
  uint64_t connections_refused() const {
    return connections_refused_.load(std::memory_order_relaxed);
  }

 private:
  class Session;
  friend class Session;

  void DoAccept();
  void Refuse(boost::asio::ip::tcp::socket socket);
  void AddTap(const std::shared_ptr<Session>& session);
  void RemoveTap(const Session* session);

  AdminProviders providers_;
  AdminOptions options_;
  bool loopback_ = false;  // the listener is on 127.0.0.0/8 or ::1 (set by Start)

  std::mutex taps_mu_;  // guards taps_
  std::vector<std::weak_ptr<Session>> taps_;
  std::atomic<size_t> tap_count_{0};
  std::atomic<uint64_t> tap_clients_dropped_{0};
  std::atomic<size_t> tap_queued_bytes_{0};
  std::atomic<size_t> connections_{0};
  std::atomic<uint64_t> connections_refused_{0};

  // Touched only on the admin thread.
  std::vector<std::weak_ptr<Session>> sessions_;
  LogThrottle accept_log_{std::chrono::seconds(1)};
  LogThrottle refuse_log_{std::chrono::seconds(1)};

  // Declared after everything a session refers to, so it is destroyed first: the handlers it
  // still holds (and the sessions they own) go before the rest of the server.
  boost::asio::io_context ioc_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::optional<boost::asio::steady_timer> accept_retry_;
  std::thread thread_;
  std::once_flag stop_once_;
};

}  // namespace triaged
