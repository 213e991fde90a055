// `triaged tap` against a real admin server in the test's process: what it writes, when it
// stops, and how it fails; and the same through the binary.
#include "tools/tap.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/admin_server.h"
#include "tests/tools/cli_test_util.h"
#include "tools/commands.h"

namespace triaged {
namespace {

using ::testing::HasSubstr;
using ::triaged::testing::Lines;
using ::triaged::testing::RunTriaged;
using ::triaged::testing::SourcePath;

constexpr std::chrono::seconds kDeadline{10};

// Polls `pred` until it holds or the deadline passes.
template <typename Pred>
bool WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// A port nothing listens on: bound, then let go.
uint16_t ClosedPort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(
      ioc, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

struct TapRun {
  int exit_code = -1;
  std::string out, err;
};

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AdminProviders providers;
    providers.rule_names = [] { return std::vector<std::string>{"a", "b", "slow calls"}; };
    server_ = std::make_unique<AdminServer>(std::move(providers));
    Result<uint16_t> port = server_->Start("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.error().message;
    admin_ = "127.0.0.1:" + std::to_string(*port);
  }

  // Runs the command on a thread of its own, as it blocks while it streams. The fixture keeps
  // a share of every run: a test that fails while a run still streams ends without waiting
  // for it, and the run ends when the server stops (server_ goes before runs_).
  std::shared_future<TapRun> Start(TapOptions options) {
    std::shared_future<TapRun> run = std::async(std::launch::async, [options = std::move(options)] {
                                       TapRun result;
                                       std::ostringstream out, err;
                                       result.exit_code = RunTap(options, out, err);
                                       result.out = out.str();
                                       result.err = err.str();
                                       return result;
                                     }).share();
    runs_.push_back(run);
    return run;
  }

  // Waits for `n` tap clients, or for `run` to end early (then the test sees why).
  void WaitForTaps(size_t n, const std::shared_future<TapRun>& run) {
    ASSERT_TRUE(WaitFor([&] {
      return server_->tap_clients() >= n ||
             run.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }));
    ASSERT_EQ(server_->tap_clients(), n);
  }

  std::vector<std::shared_future<TapRun>> runs_;
  std::unique_ptr<AdminServer> server_;
  std::string admin_;
};

TEST_F(TapTest, WritesTheItemsOfItsRuleOneALineAndStopsAtTheLimit) {
  TapOptions options;
  options.admin = admin_;
  options.rules = {"a"};
  options.limit = 2;
  std::shared_future<TapRun> run = Start(options);
  ASSERT_NO_FATAL_FAILURE(WaitForTaps(1, run));
  server_->Publish("b", R"({"rule":"b","n":0})");  // another rule's: not followed
  server_->Publish("a", R"({"rule":"a","n":1})");
  server_->Publish("a", R"({"rule":"a","n":2})");
  server_->Publish("a", R"({"rule":"a","n":3})");  // past the limit
  ASSERT_EQ(run.wait_for(kDeadline), std::future_status::ready);
  const TapRun r = run.get();
  EXPECT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "{\"rule\":\"a\",\"n\":1}\n{\"rule\":\"a\",\"n\":2}\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(TapTest, FollowsSeveralRulesAndEveryRuleWithoutOne) {
  TapOptions options;
  options.admin = admin_;
  options.rules = {"a", "slow calls"};
  options.limit = 2;
  std::shared_future<TapRun> run = Start(options);
  ASSERT_NO_FATAL_FAILURE(WaitForTaps(2, run));
  server_->Publish("b", R"({"rule":"b"})");
  server_->Publish("slow calls", R"({"rule":"slow calls"})");
  server_->Publish("a", R"({"rule":"a"})");
  ASSERT_EQ(run.wait_for(kDeadline), std::future_status::ready);
  TapRun r = run.get();
  EXPECT_EQ(r.exit_code, kExitOk) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()),
            (std::set<std::string>{R"({"rule":"slow calls"})", R"({"rule":"a"})"}));

  // The server sees the first run's streams close in its own time; a tap counted now could
  // be one of those, and "b" published to it would be lost.
  ASSERT_TRUE(WaitFor([&] { return server_->tap_clients() == 0; }));
  options.rules.clear();
  options.limit = 1;
  run = Start(options);
  ASSERT_NO_FATAL_FAILURE(WaitForTaps(1, run));
  server_->Publish("b", R"({"rule":"b"})");
  ASSERT_EQ(run.wait_for(kDeadline), std::future_status::ready);
  r = run.get();
  EXPECT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "{\"rule\":\"b\"}\n");
}

TEST_F(TapTest, AnUnknownRuleExitsOneNamingItAndTheKnownRules) {
  TapOptions options;
  options.admin = admin_;
  options.rules = {"a", "nope"};
  std::shared_future<TapRun> run = Start(options);
  ASSERT_EQ(run.wait_for(kDeadline), std::future_status::ready);
  const TapRun r = run.get();
  EXPECT_EQ(r.exit_code, kExitFailure);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "tap: no rule named \"nope\" (rules: a, b, slow calls)\n");
}

TEST_F(TapTest, TheServerEndingTheStreamExitsOne) {
  TapOptions options;
  options.admin = admin_;
  options.rules = {"a"};
  std::shared_future<TapRun> run = Start(options);
  ASSERT_NO_FATAL_FAILURE(WaitForTaps(1, run));
  server_->Publish("a", R"({"rule":"a"})");
  // Written to the connection before the server goes.
  ASSERT_TRUE(WaitFor([&] { return server_->tap_queued_bytes() == 0; }));
  server_->Stop();
  ASSERT_EQ(run.wait_for(kDeadline), std::future_status::ready);
  const TapRun r = run.get();
  EXPECT_EQ(r.exit_code, kExitFailure);
  EXPECT_EQ(r.out, "{\"rule\":\"a\"}\n");
  EXPECT_THAT(r.err, HasSubstr("tap: the admin server ended the stream of rule \"a\""));
}

// -c takes admin.listen from the daemon's config (the example's comes from $TRIAGED_ADMIN).
TEST_F(TapTest, TakesTheAdminAddressFromTheConfig) {
  ::setenv("TRIAGED_ADMIN", admin_.c_str(), 1);
  TapOptions options;
  options.config_path = SourcePath("config/examples/rules.yaml");
  options.rules = {"b"};
  options.limit = 1;
  std::shared_future<TapRun> run = Start(options);
  ASSERT_NO_FATAL_FAILURE(WaitForTaps(1, run));
  ::unsetenv("TRIAGED_ADMIN");
  server_->Publish("b", R"({"rule":"b"})");
  ASSERT_EQ(run.wait_for(kDeadline), std::future_status::ready);
  const TapRun r = run.get();
  EXPECT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "{\"rule\":\"b\"}\n");
}

TEST(TapCommandTest, ConnectionRefusedExits69) {
  TapOptions options;
  options.admin = "127.0.0.1:" + std::to_string(ClosedPort());
  options.rules = {"a"};
  std::ostringstream out, err;
  EXPECT_EQ(RunTap(options, out, err), 69);
  EXPECT_THAT(err.str(), HasSubstr("tap: cannot connect to the admin server at " + options.admin +
                                   ": Connection refused"));
}

TEST(TapCommandTest, WithoutAnAddressIsAUsageError) {
  std::ostringstream out, err;
  EXPECT_EQ(RunTap(TapOptions{}, out, err), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--admin HOST:PORT"));
  TapOptions options;
  options.admin = "nocolon";
  EXPECT_EQ(RunTap(options, out, err), kExitUsage);
}

// Through the binary: the subcommand is wired, listed in the help, and fails the same way.
TEST_F(TapTest, TheBinaryFollowsAndFails) {
  const auto help = RunTriaged("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("tap"));
  const auto tap_help = RunTriaged("tap --help");
  EXPECT_EQ(tap_help.exit_code, 0);
  EXPECT_THAT(tap_help.out, HasSubstr("--limit"));
  const auto unknown = RunTriaged("tap --admin " + admin_ + " nope");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err, "tap: no rule named \"nope\" (rules: a, b, slow calls)\n");
  const auto refused = RunTriaged("tap --admin 127.0.0.1:" + std::to_string(ClosedPort()) + " a");
  EXPECT_EQ(refused.exit_code, 69);
  EXPECT_THAT(refused.err, HasSubstr("Connection refused"));
}

}  // namespace
}  // namespace triaged
