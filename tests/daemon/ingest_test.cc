// Dead-letter records: a payload that is not UTF-8 is written as standard, padded Base64.
#include "daemon/ingest.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

namespace triaged {
namespace {

std::string PayloadBase64(const std::string& payload) {
  DeadLetter record;
  record.reason = "invalid_json";
  record.message = "m";
  record.payload = payload;
  rapidjson::Document doc;
  doc.Parse(DeadLetterToJson(record).c_str());
  EXPECT_TRUE(doc.IsObject() && doc.HasMember("payload_base64"));
  if (!doc.IsObject() || !doc.HasMember("payload_base64")) return "";
  return doc["payload_base64"].GetString();
}

TEST(DeadLetterToJson, BytesThatAreNotUtf8AreBase64) {
  EXPECT_EQ(PayloadBase64("\xff"), "/w==");
  EXPECT_EQ(PayloadBase64("\xff\xfe"), "//4=");
  EXPECT_EQ(PayloadBase64("\xff\xfe\xfd"), "//79");
  EXPECT_EQ(PayloadBase64("\xff\xfe\xfd\xfc"), "//79/A==");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(PayloadBase64(all),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"
            "P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9"
            "fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8"
            "vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7"
            "/P3+/w==");
  EXPECT_EQ(std::string(DeadLetterToJson({"r", "m", {}, "ok"})).find("payload_base64"),
            std::string::npos);
}

}  // namespace
}  // namespace triaged

namespace triaged {
namespace {

// A 400 KB span of \x01 bytes used to become a 2.4 MB dead letter (each byte escaped as
// \u0001), which the broker refuses. Within the bound, the payload's first bytes are kept and
// the whole is described by its length and hash.
TEST(DeadLetterToJson, AHostilePayloadIsCutToTheBoundWithItsLengthAndHash) {
  const std::string payload(400'000, '\x01');
  MessageOrigin origin;
  origin.topic = "llm.spans";
  origin.partition = 2;
  origin.offset = 41;
  const DeadLetter record{"invalid_json", "Invalid value.", origin, payload};
  ASSERT_GT(DeadLetterToJson(record).size(), 2'000'000u);
  const std::string json = DeadLetterToJson(record, 900 * 1024);
  EXPECT_LE(json.size(), 900u * 1024);
  EXPECT_GT(json.size(), 900u * 1024 - 64);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_TRUE(d.IsObject());
  EXPECT_EQ(d["payload_truncated"]["bytes"].GetUint64(), 400'000u);
  EXPECT_EQ(std::string(d["payload_truncated"]["xxh64"].GetString()).size(), 16u);
  EXPECT_EQ(d["offset"].GetInt64(), 41);
  const std::string kept = d["payload"].GetString();
  EXPECT_EQ(kept, payload.substr(0, kept.size()));
  // Under the bound, the record is whole.
  const DeadLetter small{"invalid_json", "Invalid value.", origin, "nope"};
  EXPECT_EQ(DeadLetterToJson(small, 900 * 1024), DeadLetterToJson(small));
}

}  // namespace
}  // namespace triaged
