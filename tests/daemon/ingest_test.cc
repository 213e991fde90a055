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

namespace triaged {
namespace {

// Replay of binary payloads: a `kcat -J`-style envelope may give its payload as standard base64
// in "payload_base64", as the dead letters write payloads that are not UTF-8.
TEST(ParseReplayLine, PayloadBase64IsDecoded) {
  const ReplayLine line = ParseReplayLine(
      R"({"topic":"llm.spans","partition":3,"offset":17,"ts":1714564800000,"key":null,)"
      R"("payload_base64":"CgD/"})",
      9);
  EXPECT_FALSE(line.error);
  EXPECT_FALSE(line.null_payload);
  EXPECT_EQ(line.payload, std::string("\x0a\x00\xff", 3));
  EXPECT_EQ(line.origin.topic, "llm.spans");
  EXPECT_EQ(line.origin.partition, 3);
  EXPECT_EQ(line.origin.offset, 17);
  EXPECT_EQ(line.origin.timestamp_ms, 1714564800000);
  EXPECT_EQ(line.origin.line, 9u);
  // Every padding, and the empty payload; EVP_DecodeBlock's length counts the padding bytes.
  for (const auto& [b64, bytes] : {std::pair<std::string, std::string>{"/w==", "\xff"},
                                   {"//4=", "\xff\xfe"},
                                   {"//79", "\xff\xfe\xfd"},
                                   {"//79/A==", "\xff\xfe\xfd\xfc"},
                                   {"", ""}}) {
    const ReplayLine l = ParseReplayLine(R"({"topic":"t","payload_base64":")" + b64 + R"("})", 1);
    EXPECT_FALSE(l.error) << b64;
    EXPECT_EQ(l.payload, bytes) << b64;
  }
  // A tombstone, as with "payload".
  EXPECT_TRUE(ParseReplayLine(R"({"topic":"t","payload_base64":null})", 1).null_payload);
}

TEST(ParseReplayLine, InvalidBase64IsAnErrorNotAnEvent) {
  for (const char* b64 : {"abc", "ab=c", "a===", "ab!d", "ab\\ncd==", "=AAA"}) {
    const ReplayLine line =
        ParseReplayLine(std::string(R"({"topic":"t","payload_base64":")") + b64 + R"("})", 4);
    ASSERT_TRUE(line.error) << b64;
    EXPECT_EQ(line.error->reason, "invalid_base64");
    EXPECT_EQ(line.error->message.rfind("payload_base64 is not standard base64: ", 0), 0u)
        << line.error->message;
    EXPECT_TRUE(line.payload.empty());
    EXPECT_EQ(line.origin.topic, "t");  // the dead letter says where the line claims it is from
  }
}

// A dead letter of an OTLP protobuf message replays as the message it was: in payload_base64
// when its bytes are not UTF-8, and in payload (escaped) when, by chance, they are.
TEST(ParseReplayLine, ADeadLetteredProtobufMessageReplays) {
  for (const char id_byte : {'\xab', '\x01'}) {
    // ExportTraceServiceRequest{resource_spans{scope_spans{spans{trace_id(16), span_id(8)}}}}
    const std::string span =
        "\x0a\x10" + std::string(16, id_byte) + "\x12\x08" + std::string(8, '\x02');
    const std::string scope = "\x12" + std::string(1, static_cast<char>(span.size())) + span;
    const std::string resource = "\x12" + std::string(1, static_cast<char>(scope.size())) + scope;
    const std::string request =
        "\x0a" + std::string(1, static_cast<char>(resource.size())) + resource;
    MessageOrigin origin;
    origin.topic = "llm.spans";
    origin.partition = 0;
    origin.offset = 5;
    const std::string dead_letter = DeadLetterToJson({"trace_too_large", "m", origin, request});
    EXPECT_EQ(dead_letter.find("\"payload_base64\"") != std::string::npos, id_byte == '\xab');
    const ReplayLine line = ParseReplayLine(dead_letter, 1);
    ASSERT_FALSE(line.error);
    EXPECT_EQ(line.payload, request);
    EXPECT_EQ(line.origin.topic, "llm.spans");
    EXPECT_EQ(line.origin.offset, 5);
    InputsConfig inputs;
    inputs.spans_topic = "llm.spans";
    Result<DecodedMessage> decoded = DecodeInput(inputs, line.origin, line.payload);
    ASSERT_TRUE(decoded.ok()) << decoded.error().reason << ": " << decoded.error().message;
    ASSERT_EQ(decoded->spans.size(), 1u);
    EXPECT_EQ(decoded->spans[0].trace_id, id_byte == '\xab' ? "abababababababababababababababab"
                                                            : "01010101010101010101010101010101");
    EXPECT_EQ(decoded->spans[0].span_id, "0202020202020202");
  }
}

}  // namespace
}  // namespace triaged
