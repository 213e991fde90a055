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
