#include "daemon/admin_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/metrics.h"

namespace triaged {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kDeadline{10};

// Polls `pred` until it holds or the deadline passes.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = kDeadline) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

// A blocking HTTP/1.1 client on a raw socket; every read gives up after kDeadline.
class Client {
 public:
  explicit Client(uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    timeval tv{};
    tv.tv_sec = kDeadline.count();
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads more bytes into the buffer; false on EOF, error or timeout.
  bool Fill() {
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  // Reads and discards until the server closes the connection: true on EOF or a reset, false
  // on a timeout.
  bool ReadUntilClosed() {
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

  std::string ReadToEof() {
    while (Fill()) {
    }
    return std::exchange(buf_, {});
  }

  // Reads the status line and headers.
  std::optional<Reply> ReadHead() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    std::istringstream head(buf_.substr(0, end));
    buf_.erase(0, end + 4);
    Reply reply;
    std::string line, version;
    std::getline(head, line);
    std::istringstream status_line(line);
    status_line >> version >> reply.status;
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t value = colon + 1;
      while (value < line.size() && line[value] == ' ') ++value;
      reply.headers[name] = line.substr(value);
    }
    return reply;
  }

  // A whole Content-Length response.
  std::optional<Reply> ReadResponse() {
    std::optional<Reply> reply = ReadHead();
    if (!reply) return std::nullopt;
    const size_t length =
        reply->headers.count("content-length") ? std::stoul(reply->headers["content-length"]) : 0;
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    reply->body = buf_.substr(0, length);
    buf_.erase(0, length);
    return reply;
  }

  // The next chunk of a chunked body.
  std::optional<std::string> ReadChunk() {
    size_t eol;
    while ((eol = buf_.find("\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    const size_t size = std::stoul(buf_.substr(0, eol), nullptr, 16);
    while (buf_.size() < eol + 2 + size + 2) {
      if (!Fill()) return std::nullopt;
    }
    std::string data = buf_.substr(eol + 2, size);
    buf_.erase(0, eol + 2 + size + 2);
    return data;
  }

  // The next line of a chunked stream of lines.
  std::optional<std::string> ReadLine() {
    size_t nl;
    while ((nl = lines_.find('\n')) == std::string::npos) {
      std::optional<std::string> chunk = ReadChunk();
      if (!chunk) return std::nullopt;
      lines_ += *chunk;
    }
    std::string line = lines_.substr(0, nl);
    lines_.erase(0, nl + 1);
    return line;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
  std::string lines_;
};

std::string Get(std::string_view target, bool close = false) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" +
         (close ? "Connection: close\r\n" : "") + "\r\n";
}

std::string GetWithToken(std::string_view target, std::string_view token) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " +
         std::string(token) + "\r\n\r\n";
}

std::optional<Reply> Fetch(uint16_t port, std::string_view request) {
  Client client(port);
  if (!client.connected() || !client.Send(request)) return std::nullopt;
  return client.ReadResponse();
}

// Sends a tap request on `client` and reads the head of the answer: its status, 0 if none came.
int OpenTap(Client& client, std::string_view target = "/v1/tap") {
  if (!client.Send(Get(target))) return 0;
  std::optional<Reply> head = client.ReadHead();
  return head ? head->status : 0;
}

class AdminServerTest : public ::testing::Test {
 protected:
  static constexpr std::string_view kStatus = R"({"traces_open":3,"recent":[{"trace_id":"t1"}]})";
  static constexpr std::string_view kStatusWithoutRecent = R"({"traces_open":3,"recent":[]})";

  void StartServer(AdminOptions options = {}, std::string_view listen = "127.0.0.1:0") {
    AdminProviders providers;
    providers.metrics = [this] { return metrics_.Serialize(); };
    providers.readiness = [this] {
      Readiness r;
      r.broker_reachable = broker_.load();
      r.partitions_assigned = partitions_.load();
      r.config_loaded = true;
      return r;
    };
    providers.rules_json = [] { return std::string(R"({"rules":[{"name":"a"}]})"); };
    providers.status_json = [](bool with_recent) {
      return std::string(with_recent ? kStatus : kStatusWithoutRecent);
    };
    providers.rule_names = [] { return std::vector<std::string>{"a", "b", "slow calls"}; };
    server_ = std::make_unique<AdminServer>(std::move(providers), options);
    Result<uint16_t> port = server_->Start(listen);
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
    ASSERT_NE(port_, 0);
  }

  Metrics metrics_{"0.1.0-test"};
  std::atomic<bool> broker_{false};
  std::atomic<bool> partitions_{false};
  std::unique_ptr<AdminServer> server_;
  uint16_t port_ = 0;
};

TEST(AdminListenTest, ParsesHostAndPort) {
  Result<boost::asio::ip::tcp::endpoint> ep = ParseListenAddress("127.0.0.1:9464");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->address().to_string(), "127.0.0.1");
  EXPECT_EQ(ep->port(), 9464);
  ep = ParseListenAddress("[::1]:80");
  ASSERT_TRUE(ep.ok());
  EXPECT_TRUE(ep->address().is_v6());
  ep = ParseListenAddress(":9000");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->address().to_string(), "0.0.0.0");
  EXPECT_EQ(ParseListenAddress("localhost:0")->address().to_string(), "127.0.0.1");
  EXPECT_FALSE(ParseListenAddress("127.0.0.1").ok());
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:99999").ok());
  EXPECT_FALSE(ParseListenAddress("127.0.0.1:x").ok());
  EXPECT_FALSE(ParseListenAddress("not-an-ip:80").ok());
}

TEST(LogThrottleTest, LetsALineThroughOncePerIntervalAndCountsTheOthers) {
  LogThrottle throttle(std::chrono::seconds(1));
  const LogThrottle::TimePoint t0{};
  uint64_t held_back = 99;
  EXPECT_TRUE(throttle.Allow(t0, held_back));
  EXPECT_EQ(held_back, 0u);
  // Every 100 ms, as the accept loop retries: nine held back in the next second.
  for (int i = 1; i < 10; ++i) {
    EXPECT_FALSE(throttle.Allow(t0 + std::chrono::milliseconds(100 * i), held_back)) << i;
  }
  EXPECT_TRUE(throttle.Allow(t0 + std::chrono::seconds(1), held_back));
  EXPECT_EQ(held_back, 9u);
  EXPECT_FALSE(throttle.Allow(t0 + std::chrono::milliseconds(1500), held_back));
  EXPECT_TRUE(throttle.Allow(t0 + std::chrono::seconds(5), held_back));
  EXPECT_EQ(held_back, 1u);
}

TEST(AdminListenTest, StartFailsOnPortInUse) {
  AdminServer first{AdminProviders{}};
  Result<uint16_t> port = first.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok());
  AdminServer second{AdminProviders{}};
  Result<uint16_t> again = second.Start("127.0.0.1:" + std::to_string(*port));
  EXPECT_FALSE(again.ok());
}

TEST_F(AdminServerTest, Healthz) {
  StartServer();
  std::optional<Reply> r = Fetch(port_, Get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
}

TEST_F(AdminServerTest, Metrics) {
  StartServer();
  metrics_.EventConsumed("spans", 3);
  std::optional<Reply> r = Fetch(port_, Get("/metrics"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(r->body, HasSubstr("triaged_build_info{version=\"0.1.0-test\"} 1"));
  EXPECT_THAT(r->body, HasSubstr("triaged_events_consumed_total{input=\"spans\"} 3"));
}

// The first scrape of a fresh server: every family, those still without a series too, with its
// HELP and TYPE; the process collector's among them.
TEST_F(AdminServerTest, FirstScrapeHasEveryFamilyWithHelpAndType) {
  StartServer();
  std::optional<Reply> r = Fetch(port_, Get("/metrics"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  size_t families = 0;
  for (const prometheus::MetricFamily& family : metrics_.Collect()) {
    ++families;
    EXPECT_THAT(r->body, HasSubstr("# HELP " + family.name + " ")) << family.name;
    EXPECT_THAT(r->body, HasSubstr("# TYPE " + family.name + " ")) << family.name;
  }
  EXPECT_GE(families, 33u);
  EXPECT_THAT(r->body, HasSubstr("# TYPE triaged_events_invalid_total counter\n"));
  EXPECT_THAT(r->body, HasSubstr("# TYPE triaged_routed_total counter\n"));
  EXPECT_THAT(r->body, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
  EXPECT_THAT(r->body, Not(HasSubstr("triaged_events_invalid_total{")));
}

TEST_F(AdminServerTest, MetricsPassPromtool) {
  if (!std::filesystem::exists("/usr/bin/promtool")) GTEST_SKIP() << "promtool not installed";
  StartServer();
  // Give every labelled family a series, so promtool sees them all.
  metrics_.EventConsumed("spans");
  metrics_.EventInvalid("spans", "bad_json");
  metrics_.DeadLettered();
  metrics_.SetTracesOpen(2);
  metrics_.Routed("errors", "review");
  metrics_.ProduceError("review", "MSG_TIMED_OUT");
  metrics_.ObserveDecisionLatency(0.5);
  metrics_.SetConsumerLag("llm.spans", 0, 10);
  metrics_.ConfigReload(true);
  RuleSet rules;
  rules.rules.emplace_back().name = "errors";
  metrics_.AddRuleCounts("errors", RuleCounters{1, 0, 0, 1});
  metrics_.RuleTotals(rules);
  std::optional<Reply> r = Fetch(port_, Get("/metrics"));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);

  const std::string out =
      (std::filesystem::temp_directory_path() / ("promtool." + std::to_string(::getpid())))
          .string();
  const std::string command = "/usr/bin/promtool check metrics > " + out + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "w");
  ASSERT_NE(pipe, nullptr);
  ASSERT_EQ(std::fwrite(r->body.data(), 1, r->body.size(), pipe), r->body.size());
  const int status = ::pclose(pipe);
  std::ifstream in(out);
  std::stringstream report;
  report << in.rdbuf();
  std::filesystem::remove(out);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << report.str() << "\n--- input ---\n" << r->body;
}

TEST_F(AdminServerTest, ReadyzFlipsFrom503To200) {
  StartServer();
  std::optional<Reply> r = Fetch(port_, Get("/readyz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_EQ(r->body, R"({"ready":false,"failed":["broker_reachable","partitions_assigned"]})");

  broker_ = true;
  r = Fetch(port_, Get("/readyz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, R"({"ready":false,"failed":["partitions_assigned"]})");

  partitions_ = true;
  r = Fetch(port_, Get("/readyz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ready":true,"failed":[]})");
}

TEST_F(AdminServerTest, Rules) {
  StartServer();
  std::optional<Reply> r = Fetch(port_, Get("/v1/rules"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_EQ(r->body, R"({"rules":[{"name":"a"}]})");
}

TEST_F(AdminServerTest, StatusPageAndItsDocument) {
  StartServer();
  std::optional<Reply> page = Fetch(port_, Get("/"));
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->headers["content-type"], "text/html; charset=utf-8");
  // Self-contained: it reads its two documents and loads nothing from elsewhere.
  EXPECT_THAT(page->body, HasSubstr("fetch(path"));
  EXPECT_THAT(page->body, HasSubstr(R"(get("/v1/status"), get("/v1/rules"))"));
  EXPECT_THAT(page->body, Not(HasSubstr("http://")));
  EXPECT_THAT(page->body, Not(HasSubstr("https://")));
  std::optional<Reply> status = Fetch(port_, Get("/v1/status"));
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
  EXPECT_EQ(status->headers["content-type"], "application/json");
  EXPECT_EQ(status->body, kStatus);  // a loopback listener without a token shows routed items
}

TEST_F(AdminServerTest, UnknownPathIs404) {
  StartServer();
  std::optional<Reply> r = Fetch(port_, Get("/nope"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = Fetch(port_, Get("/metricsx?a=b"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(AdminServerTest, PostIs405) {
  StartServer();
  std::optional<Reply> r =
      Fetch(port_, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->headers["allow"], "GET");
}

TEST_F(AdminServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  Client client(port_);
  ASSERT_TRUE(client.connected());
  // Pipelined, with a body on the refused POST that must not desync the stream.
  ASSERT_TRUE(client.Send(Get("/healthz") +
                          "DELETE /v1/rules HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" +
                          Get("/v1/rules")));
  std::optional<Reply> r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"rules":[{"name":"a"}]})");
  // And again after a pause in the conversation.
  ASSERT_TRUE(client.Send(Get("/healthz", /*close=*/true)));
  r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(client.ReadToEof(), "");  // the server honoured Connection: close
}

TEST_F(AdminServerTest, MalformedRequestsGet400AndTheServerGoesOn) {
  StartServer();
  for (std::string_view junk :
       {std::string_view("GARBAGE\r\n\r\n"), std::string_view("GET /healthz HTTP/9\r\n\r\n"),
        std::string_view("\x01\x02\x03 \xff\xfe\r\n\r\n", 11),
        std::string_view("GET /healthz HTTP/1.1\r\nContent-Length: zz\r\n\r\n"),
        std::string_view("GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n")}) {
    Client client(port_);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Send(junk));
    const std::string answer = client.ReadToEof();  // the server closes the connection
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 400")) << junk;
  }
  // Oversized headers.
  {
    Client client(port_);
    ASSERT_TRUE(client.connected());
    client.Send("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(64 * 1024, 'x') + "\r\n\r\n");
    EXPECT_THAT(client.ReadToEof(), StartsWith("HTTP/1.1 400"));
  }
  // A client that hangs up half-way through a request.
  {
    Client client(port_);
    ASSERT_TRUE(client.connected());
    client.Send("GET /heal");
  }
  std::optional<Reply> r = Fetch(port_, Get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(AdminServerTest, TapStreamsOnlyTheRequestedRule) {
  StartServer();
  Client tap(port_);
  ASSERT_TRUE(tap.connected());
  ASSERT_TRUE(tap.Send(Get("/v1/tap?rule=a")));
  std::optional<Reply> head = tap.ReadHead();
  ASSERT_TRUE(head);  // the tap is registered before its header is sent
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["transfer-encoding"], "chunked");
  EXPECT_EQ(head->headers["content-type"], "application/x-ndjson");
  EXPECT_EQ(server_->tap_clients(), 1u);

  server_->Publish("b", R"({"rule":"b","n":1})");
  server_->Publish("a", R"({"rule":"a","n":2})");
  std::optional<std::string> line = tap.ReadLine();
  ASSERT_TRUE(line);
  EXPECT_EQ(*line, R"({"rule":"a","n":2})");

  server_->Publish("ab", R"({"rule":"ab"})");
  server_->Publish("a", R"({"rule":"a","n":3})");
  line = tap.ReadLine();
  ASSERT_TRUE(line);
  EXPECT_EQ(*line, R"({"rule":"a","n":3})");

  tap.Close();
  EXPECT_TRUE(WaitFor([&] { return server_->tap_clients() == 0; }));
  server_->Publish("a", "{}");  // no one listening: nothing happens
}

TEST_F(AdminServerTest, TapWithoutRuleStreamsEverythingAndDecodesTheName) {
  StartServer();
  Client all(port_), encoded(port_);
  ASSERT_TRUE(all.Send(Get("/v1/tap")));
  ASSERT_TRUE(encoded.Send(Get("/v1/tap?x=1&rule=slow%20calls")));
  ASSERT_TRUE(all.ReadHead());
  ASSERT_TRUE(encoded.ReadHead());

  server_->Publish("a", "1");
  server_->Publish("slow calls", "2");
  EXPECT_EQ(all.ReadLine(), "1");
  EXPECT_EQ(all.ReadLine(), "2");
  EXPECT_EQ(encoded.ReadLine(), "2");
}

TEST_F(AdminServerTest, SlowTapClientIsDroppedOnceItsBufferIsFull) {
  AdminOptions options;
  options.tap_queue_bytes = 256 * 1024;
  StartServer(options);
  Client stalled(port_, /*rcvbuf=*/4096);
  ASSERT_TRUE(stalled.Send(Get("/v1/tap")));
  ASSERT_TRUE(stalled.ReadHead());
  // It never reads again: 1,800 items of 50 KB (90 MB) are far more than the socket buffers
  // hold, and the server must not keep them for it.
  const std::string item = "{\"pad\":\"" + std::string(50 * 1024, 'x') + "\"}";
  size_t peak = 0;
  const auto start = Clock::now();
  for (int i = 0; i < 1800; ++i) {
    server_->Publish("a", item);
    peak = std::max(peak, server_->tap_queued_bytes());
  }
  EXPECT_LT(Clock::now() - start, kDeadline);  // Publish never waits on the client
  EXPECT_LE(peak, options.tap_queue_bytes);
  EXPECT_TRUE(WaitFor([&] { return server_->tap_clients() == 0; }));
  EXPECT_EQ(server_->tap_clients_dropped(), 1u);
  EXPECT_EQ(server_->tap_queued_bytes(), 0u);
  EXPECT_TRUE(stalled.ReadUntilClosed());

  // Everyone else is still served, and a new tap client gets lines.
  std::optional<Reply> r = Fetch(port_, Get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  Client tap(port_);
  ASSERT_TRUE(tap.Send(Get("/v1/tap")));
  ASSERT_TRUE(tap.ReadHead());
  server_->Publish("a", "1");
  EXPECT_EQ(tap.ReadLine(), "1");
}

TEST_F(AdminServerTest, ADroppedTapClientGetsEveryLineInOrderUntilItIsDropped) {
  AdminOptions options;
  options.tap_queue_bytes = 2 * 4200;
  StartServer(options);
  Client tap(port_, /*rcvbuf=*/4096);
  ASSERT_TRUE(tap.Send(Get("/v1/tap")));
  ASSERT_TRUE(tap.ReadHead());
  const std::string pad(4096, 'x');
  uint64_t published = 0;
  for (; published < 2; ++published) server_->Publish("a", std::to_string(published) + pad);
  for (uint64_t n = 0; n < 2; ++n) {
    std::optional<std::string> line = tap.ReadLine();
    ASSERT_TRUE(line);
    EXPECT_EQ(std::stoul(*line), n);
  }
  // Then it reads nothing until it has been dropped: the socket buffers fill, then its buffer
  // of two lines.
  while (server_->tap_clients_dropped() == 0 && published < 100'000) {
    server_->Publish("a", std::to_string(published++) + pad);
  }
  ASSERT_EQ(server_->tap_clients_dropped(), 1u);
  // What it gets is a gapless run of what was published, then the end of the connection.
  uint64_t next = 2;
  while (std::optional<std::string> line = tap.ReadLine()) {
    EXPECT_EQ(std::stoul(*line), next);
    ++next;
  }
  EXPECT_LT(next, published);
  EXPECT_TRUE(tap.ReadUntilClosed());
}

TEST_F(AdminServerTest, TapOnAnUnknownRuleIs404) {
  StartServer();
  std::optional<Reply> r = Fetch(port_, Get("/v1/tap?rule=doesnotexist"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  // It names the rule and lists the known ones; the connection is not kept as a tap.
  EXPECT_EQ(r->body, R"({"error":"no rule named \"doesnotexist\"","rule":"doesnotexist",)"
                     R"("rules":["a","b","slow calls"]})"
                     "\n");
  EXPECT_EQ(server_->tap_clients(), 0u);
  // A known rule (URL-encoded) is taken.
  Client tap(port_);
  EXPECT_EQ(OpenTap(tap, "/v1/tap?rule=slow%20calls"), 200);
}

TEST_F(AdminServerTest, TapClientsBeyondTheLimitGet503AndHealthzStillAnswers) {
  AdminOptions options;
  options.max_tap_clients = 2;
  StartServer(options);
  Client first(port_), second(port_), third(port_);
  EXPECT_EQ(OpenTap(first), 200);
  EXPECT_EQ(OpenTap(second), 200);
  ASSERT_TRUE(third.Send(Get("/v1/tap?rule=a")));
  std::optional<Reply> refused = third.ReadResponse();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(server_->tap_clients(), 2u);

  std::optional<Reply> r = Fetch(port_, Get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // A freed place is taken again.
  first.Close();
  ASSERT_TRUE(WaitFor([&] { return server_->tap_clients() == 1; }));
  EXPECT_EQ(OpenTap(third), 200);
}

TEST_F(AdminServerTest, ConnectionsBeyondTheLimitAreRefusedAndTheOthersServed) {
  AdminOptions options;
  options.max_connections = 3;
  StartServer(options);
  Client first(port_), second(port_), third(port_);
  ASSERT_TRUE(WaitFor([&] { return server_->connections() == 3; }));
  // The fourth is answered 503 and closed without a request.
  Client extra(port_);
  ASSERT_TRUE(extra.connected());
  std::optional<Reply> refused = extra.ReadResponse();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_TRUE(extra.ReadUntilClosed());
  EXPECT_EQ(server_->connections_refused(), 1u);
  // The connections it holds are served.
  ASSERT_TRUE(first.Send(Get("/healthz")));
  std::optional<Reply> r = first.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // And a new one is, once a place is free.
  second.Close();
  ASSERT_TRUE(WaitFor([&] { return server_->connections() == 2; }));
  r = Fetch(port_, Get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(AdminServerTest, IdleConnectionsAreClosedButTapsAreNot) {
  AdminOptions options;
  options.idle_timeout = std::chrono::milliseconds(200);
  StartServer(options);
  Client tap(port_);
  ASSERT_EQ(OpenTap(tap), 200);
  Client silent(port_);  // connects and never sends a request
  Client kept(port_);    // keep-alive, then nothing
  ASSERT_TRUE(kept.Send(Get("/healthz")));
  ASSERT_TRUE(kept.ReadResponse());
  EXPECT_TRUE(silent.ReadUntilClosed());
  EXPECT_TRUE(kept.ReadUntilClosed());
  EXPECT_TRUE(WaitFor([&] { return server_->connections() == 1; }));
  // The tap, older than both, outlived the timeout and still streams.
  server_->Publish("a", "1");
  EXPECT_EQ(tap.ReadLine(), "1");
}

TEST_F(AdminServerTest, WithATokenRoutedItemsAreServedOnlyToItsBearer) {
  AdminOptions options;
  options.token = "s3cret";
  StartServer(options);
  for (std::string_view request :
       {Get("/v1/tap"), GetWithToken("/v1/tap", "s3cre"), GetWithToken("/v1/tap", "s3cret!"),
        GetWithToken("/v1/status", "wrong")}) {
    std::optional<Reply> r = Fetch(port_, request);
    ASSERT_TRUE(r) << request;
    EXPECT_EQ(r->status, 401) << request;
    EXPECT_THAT(r->headers["www-authenticate"], StartsWith("Bearer")) << request;
  }
  EXPECT_EQ(server_->tap_clients(), 0u);
  // /v1/status without a token is the status page's: served, without the routed items.
  std::optional<Reply> r = Fetch(port_, Get("/v1/status"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, kStatusWithoutRecent);
  r = Fetch(port_, GetWithToken("/v1/status", "s3cret"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, kStatus);
  // The rest stays open.
  for (const char* path : {"/metrics", "/healthz", "/readyz", "/v1/rules", "/"}) {
    r = Fetch(port_, Get(path));
    ASSERT_TRUE(r) << path;
    EXPECT_NE(r->status, 401) << path;
  }

  Client tap(port_);
  ASSERT_TRUE(tap.Send(GetWithToken("/v1/tap?rule=a", "s3cret")));
  std::optional<Reply> head = tap.ReadHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  server_->Publish("a", "1");
  EXPECT_EQ(tap.ReadLine(), "1");
}

TEST_F(AdminServerTest, BeyondLoopbackWithoutATokenRoutedItemsAreOff) {
  StartServer({}, "0.0.0.0:0");  // reached through 127.0.0.1, bound to every address
  std::optional<Reply> r = Fetch(port_, Get("/v1/tap?rule=a"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_THAT(r->body, HasSubstr("admin.token_file"));
  EXPECT_EQ(server_->tap_clients(), 0u);
  r = Fetch(port_, Get("/v1/status"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, kStatusWithoutRecent);
  for (const char* path : {"/metrics", "/healthz", "/v1/rules", "/"}) {
    r = Fetch(port_, Get(path));
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
  }
}

TEST_F(AdminServerTest, BeyondLoopbackWithATokenItsBearerSeesRoutedItems) {
  AdminOptions options;
  options.token = "s3cret";
  StartServer(options, "0.0.0.0:0");
  std::optional<Reply> r = Fetch(port_, Get("/v1/tap"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = Fetch(port_, GetWithToken("/v1/status", "s3cret"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, kStatus);
  Client tap(port_);
  ASSERT_TRUE(tap.Send(GetWithToken("/v1/tap", "s3cret")));
  std::optional<Reply> head = tap.ReadHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
}

TEST(AdminServerTokenTest, AnEmptyTokenIsRefused) {
  AdminOptions options;
  options.token = "";
  AdminServer server{AdminProviders{}, options};
  EXPECT_FALSE(server.Start("127.0.0.1:0").ok());
}

TEST(AdminServerTokenTest, ReadTokenFileTrimsAndRefusesEmptyOrMissingFiles) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("admin_token." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const char* name, std::string_view content) {
    std::ofstream(dir / name) << content;
    return (dir / name).string();
  };
  Result<std::string> token = ReadTokenFile(write("token", "  s3cret\n"));
  ASSERT_TRUE(token.ok()) << token.error().message;
  EXPECT_EQ(*token, "s3cret");
  EXPECT_FALSE(ReadTokenFile(write("blank", " \n\t\n")).ok());
  Result<std::string> missing = ReadTokenFile((dir / "missing").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("missing"));
  std::filesystem::remove_all(dir);
}

TEST_F(AdminServerTest, StopClosesOpenConnections) {
  StartServer();
  Client idle(port_), tap(port_);
  ASSERT_TRUE(tap.Send(Get("/v1/tap")));
  ASSERT_TRUE(tap.ReadHead());
  ASSERT_TRUE(idle.Send(Get("/healthz")));
  ASSERT_TRUE(idle.ReadResponse());
  server_->Stop();
  EXPECT_EQ(idle.ReadToEof(), "");
  EXPECT_EQ(tap.ReadToEof(), "");
  server_->Stop();              // idempotent
  server_->Publish("a", "{}");  // harmless after Stop
}

TEST(AdminServerNoProvidersTest, MissingProvidersAnswer503) {
  AdminServer server{AdminProviders{}};
  Result<uint16_t> port = server.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok());
  for (const char* path : {"/metrics", "/readyz", "/v1/rules"}) {
    std::optional<Reply> r = Fetch(*port, Get(path));
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 503) << path;
  }
  std::optional<Reply> r = Fetch(*port, Get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Without rule_names, a tap on any rule is taken.
  Client tap(*port);
  EXPECT_EQ(OpenTap(tap, "/v1/tap?rule=anything"), 200);
}

TEST(AdminServerProviderErrorTest, AThrowingProviderIs500) {
  AdminProviders providers;
  providers.rules_json = []() -> std::string { throw std::runtime_error("boom"); };
  AdminServer server{std::move(providers)};
  Result<uint16_t> port = server.Start("127.0.0.1:0");
  ASSERT_TRUE(port.ok());
  std::optional<Reply> r = Fetch(*port, Get("/v1/rules"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  r = Fetch(*port, Get("/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace triaged
