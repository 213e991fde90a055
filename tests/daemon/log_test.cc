#include "daemon/log.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace triaged {
namespace {

// Every field keeps its type: numbers and booleans are JSON numbers and booleans.
TEST(LogTest, ValuesKeepTheirJsonTypes) {
  const std::string text =
      log::LineForTest("warn", "dead-lettered",
                       {{"topic", "llm.spans"},
                        {"partition", int32_t{3}},
                        {"offset", int64_t{-1}},
                        {"count", uint64_t{37}},
                        {"seconds", 0.25},
                        {"flushed", true},
                        {"reasons", log::Value::Json(R"({"invalid_json":30})")},
                        {"why", std::string("say \"no\"")}});
  rapidjson::Document line;
  line.Parse(text.c_str());
  ASSERT_FALSE(line.HasParseError()) << text;
  EXPECT_STREQ(line["level"].GetString(), "warn");
  EXPECT_STREQ(line["msg"].GetString(), "dead-lettered");
  EXPECT_TRUE(line["ts"].IsString());
  EXPECT_STREQ(line["topic"].GetString(), "llm.spans");
  ASSERT_TRUE(line["partition"].IsInt());
  EXPECT_EQ(line["partition"].GetInt(), 3);
  ASSERT_TRUE(line["offset"].IsInt64());
  EXPECT_EQ(line["offset"].GetInt64(), -1);
  ASSERT_TRUE(line["count"].IsUint64());
  EXPECT_EQ(line["count"].GetUint64(), 37u);
  ASSERT_TRUE(line["seconds"].IsDouble());
  EXPECT_EQ(line["seconds"].GetDouble(), 0.25);
  ASSERT_TRUE(line["flushed"].IsBool());
  EXPECT_TRUE(line["flushed"].GetBool());
  ASSERT_TRUE(line["reasons"].IsObject());
  EXPECT_EQ(line["reasons"]["invalid_json"].GetInt(), 30);
  EXPECT_STREQ(line["why"].GetString(), "say \"no\"");
  EXPECT_NE(text.find(R"("partition":3,"offset":-1,"count":37,"seconds":0.25,"flushed":true)"),
            std::string::npos)
      << text;
}

// In a child process, with stderr sent to `path`: what `run` logs as it stops on an error, then a
// line from a Kafka client's thread after the end.
[[noreturn]] void StopOnAnError(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) std::_Exit(2);
  log::Error("TLS certificate verification failed", {{"reason", "certificate verify failed"}});
  log::LibraryError("kafka client", {{"detail", "SSL handshake failed"}});
  log::Info("stopped");
  log::Finish(/*failed=*/true);
  log::LibraryError("kafka client", {{"detail", "1 identical error(s) suppressed"}});
  log::Error("an error after the end");
  std::fflush(stderr);
  std::_Exit(1);
}

std::vector<std::string> MessagesOf(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> msgs;
  for (std::string text; std::getline(in, text);) {
    rapidjson::Document line;
    line.Parse(text.c_str());
    msgs.push_back(line.IsObject() && line.HasMember("msg") ? line["msg"].GetString() : text);
  }
  return msgs;
}

// The log of a process that stops on an error ends with its reason: lines its Kafka client's
// threads write after it (as they do while the client is destroyed) come before it again, and
// nothing is written once the log is finished.
TEST(LogDeathTest, AProcessThatStopsOnAnErrorEndsItsLogWithTheReason) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  // The same in the child, which runs this test again up to EXPECT_EXIT.
  const std::string path = ::testing::TempDir() + "/triaged_log_finish_test.log";
  EXPECT_EXIT(StopOnAnError(path), ::testing::ExitedWithCode(1), "");
  const std::vector<std::string> expected = {"TLS certificate verification failed", "kafka client",
                                             "stopped", "TLS certificate verification failed"};
  EXPECT_EQ(MessagesOf(path), expected);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace triaged
