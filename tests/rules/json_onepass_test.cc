#include "rules/json_onepass.h"

#include <gtest/gtest.h>
#include <rapidjson/reader.h>

#include <random>
#include <string>
#include <vector>

namespace triaged {
namespace {

// Every string and key of a walk, in order, each behind a tag; "error" when the walk fails.
struct Strings : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Strings> {
  std::vector<std::string> seen;
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    seen.push_back("key " + std::string(s, n));
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    seen.push_back("string " + std::string(s, n));
    return true;
  }
};

// The walk of the one-pass decoder: in place, its strings scanned a word at a time.
std::vector<std::string> Walked(const std::string& json) {
  std::string buf = json;  // and its NUL
  Strings h;
  if (!decode::onepass::WalkInsitu(buf.data(), buf.size(), h)) h.seen.push_back("error");
  return h.seen;
}

// RapidJSON's own reader, reading a byte at a time from an unmodified copy.
std::vector<std::string> Read(const std::string& json) {
  rapidjson::StringStream in(json.c_str());
  rapidjson::Reader reader;
  Strings h;
  if (reader.Parse<rapidjson::kParseIterativeFlag>(in, h).IsError()) h.seen.push_back("error");
  return h.seen;
}

// `s` as a key and a value, and as the last value of the text (so that it ends within the
// buffer's last sixteen bytes), each after `pad` bytes.
std::vector<std::string> Texts(const std::string& s, size_t pad) {
  const std::string p(pad, 'p');
  return {"{\"" + p + "\":\"" + s + "\",\"" + s + "\":0}", "[\"" + p + s + "\"]",
          "\"" + p + s + "\""};
}

TEST(WalkInsitu, EveryEscapeAtEveryPlaceIsReadAsRapidJsonReadsIt) {
  const std::vector<std::string> escapes = {"\\\"",
                                            "\\\\",
                                            "\\/",
                                            "\\b",
                                            "\\f",
                                            "\\n",
                                            "\\r",
                                            "\\t",
                                            "\\u0041",
                                            "\\u00e9",
                                            "\\ud83d\\ude00",
                                            "\\u001f",
                                            "\\x",
                                            "\\u12",
                                            "\\ud83d",
                                            "\\",
                                            "\"",
                                            std::string(1, '\x01'),
                                            std::string(1, '\x1a'),
                                            std::string(1, '\x1f'),
                                            "\\\\\\\""};
  for (size_t length = 0; length <= 40; ++length) {
    for (size_t at = 0; at <= length; ++at) {
      for (const std::string& e : escapes) {
        std::string s(length, 'a');
        s.insert(at, e);
        for (size_t pad = 0; pad < 16; ++pad) {
          for (const std::string& text : Texts(s, pad)) {
            ASSERT_EQ(Walked(text), Read(text)) << text;
          }
        }
      }
    }
  }
  EXPECT_EQ(Walked(R"(["a\"b\\c\/d\n\u0041\u00e9"])"),
            std::vector<std::string>{"string a\"b\\c/d\nA\xc3\xa9"});
}

TEST(WalkInsitu, RandomStringsDenseInEscapesAreReadAsRapidJsonReadsThem) {
  std::mt19937 rng(11);
  const std::vector<std::string> pieces = {
      "a",   "b",       " ",       "\\\"",           "\\\\", "\\n", "\\t",
      "\\/", "\\u0022", "\\u005c", "\\ud83d\\ude00", "\"",   "\\"};
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    for (size_t n = rng() % 40; n > 0; --n) s += pieces[rng() % pieces.size()];
    for (const std::string& text : Texts(s, rng() % 16)) {
      ASSERT_EQ(Walked(text), Read(text)) << text;
    }
  }
}

}  // namespace
}  // namespace triaged
