#include "rules/json_string.h"

#include <gtest/gtest.h>
#include <rapidjson/writer.h>

#include <random>
#include <string>

namespace triaged {
namespace {

// The string as RapidJSON's Writer writes it.
std::string Rapid(const std::string& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

std::string Ours(const std::string& s) {
  rapidjson::StringBuffer buf;
  AppendJsonString(buf, s);
  return std::string(buf.GetString(), buf.GetSize());
}

TEST(AppendJsonString, EveryByteAtEveryPlaceOfEveryLengthIsWrittenAsRapidJsonWritesIt) {
  for (size_t length = 1; length <= 40; ++length) {
    for (size_t at = 0; at < length; ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string s(length, 'a');
        s[at] = static_cast<char>(byte);
        ASSERT_EQ(Ours(s), Rapid(s)) << "length " << length << ", byte " << byte << " at " << at;
      }
    }
  }
  EXPECT_EQ(Ours(""), "\"\"");
  EXPECT_EQ(Ours(std::string("q\"\\\b\f\n\r\t\x01\x1f\x7f/\xe2\x80\xa6", 15)),
            "\"q\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F\x7f/\xe2\x80\xa6\"");
}

TEST(AppendJsonString, RandomStringsDenseInEscapesAreWrittenAsRapidJsonWritesThem) {
  std::mt19937 rng(7);
  const std::string alphabet =
      std::string("ab \"\\\n\t\x01\x1f\x7f\x80\xff", 13) + std::string(1, '\0');
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 70, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    ASSERT_EQ(Ours(s), Rapid(s)) << i;
  }
}

TEST(AppendJsonString, AppendsAfterWhatTheBufferHolds) {
  rapidjson::StringBuffer buf;
  buf.Put('[');
  AppendJsonString(buf, "x\ny");
  buf.Put(',');
  AppendJsonString(buf, std::string(100000, '"'));
  const std::string out(buf.GetString(), buf.GetSize());
  EXPECT_EQ(out.substr(0, 8), "[\"x\\ny\",");
  EXPECT_EQ(out.size(), 8 + 2 + 200000u);
}

}  // namespace
}  // namespace triaged
