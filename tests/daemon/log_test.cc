#include "daemon/log.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <string>

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

}  // namespace
}  // namespace triaged
