#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>
#include <xxhash.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "rules/routed_item.h"

namespace triaged {
namespace {

rapidjson::SchemaDocument LoadSchema() {
  std::ifstream in(std::string(TRIAGED_SOURCE_DIR) + "/schemas/routed_item.v1.json");
  std::stringstream s;
  s << in.rdbuf();
  rapidjson::Document d;
  d.Parse(s.str().c_str());
  EXPECT_FALSE(d.HasParseError());
  return rapidjson::SchemaDocument(d);
}

bool Valid(const rapidjson::SchemaDocument& schema, const std::string& json, std::string* why) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  if (doc.HasParseError()) {
    *why = "not JSON";
    return false;
  }
  rapidjson::SchemaValidator v(schema);
  if (doc.Accept(v)) return true;
  *why = std::string(v.GetInvalidSchemaKeyword()) + " at " +
         [&] {
           rapidjson::StringBuffer b;
           v.GetInvalidDocumentPointer().StringifyUriFragment(b);
           return std::string(b.GetString());
         }();
  return false;
}

struct Fixture {
  Fixture() {
    rule.name = "thumbs-down";
    rule.priority = "high";
    dest.name = "support-review";
    dest.kind = DestinationKind::kQueue;
    dest.topic = "annotations.support-review";
  }
  RuleSpec rule;
  DestinationSpec dest;
  std::string version = std::string(64, 'a');
  RoutedItem Item(const Trace& t) const {
    return RoutedItem{&t, &rule, &dest, Trigger::kClose, 1'793'527'200'123'000'000, version};
  }
};

Trace FullTrace() {
  Trace t("7f3a9c2e41b04d5a8e6f1c2b3d4e5f01");
  Span child;
  child.trace_id = t.id();
  child.span_id = "b";
  child.parent_span_id = "a";
  child.name = "llm";
  child.kind = "LLM";
  child.start_ns = 1'793'527'200'500'000'000;
  child.end_ns = 1'793'527'201'000'000'000;
  child.model = "gpt-4o";
  child.input_tokens = 812;
  child.attributes = {{"gen_ai.usage.input_tokens", AttrValue::Number(812)},
                      {"temperature", AttrValue::Number(0.2)},
                      {"tags", AttrValue::Array({AttrValue::String("x"), AttrValue::Bool(true)})},
                      {"nan", AttrValue::Number(std::numeric_limits<double>::quiet_NaN())}};
  Span root;
  root.trace_id = t.id();
  root.span_id = "a";
  root.name = "chat";
  root.status = SpanStatus::kError;
  root.status_message = "tool failed";
  root.start_ns = 1'793'527'200'000'000'000;
  root.end_ns = 1'793'527'201'250'000'000;
  root.input = "How do I rotate my key?";
  root.output = "Settings \"API keys\"";
  root.resource = {{"service.name", AttrValue::String("bot")}};
  t.AddSpan(child);  // arrives first, starts later
  t.AddSpan(root);
  Annotation a;
  a.trace_id = t.id();
  a.name = "thumbs";
  a.score = 0;
  a.label = "down";
  a.source = "end_user";
  a.metadata_json = R"({"ticket":"ZD-1"})";
  a.timestamp_ns = 1'793'527'205'000'000'000;
  t.AddAnnotation(a);
  return t;
}

TEST(RoutedItemId, IsXxh64OfTheThreeNamesWithNulSeparators) {
  const std::string bytes("abc\0r\0d", 7);
  char want[17];
  std::snprintf(want, sizeof want, "%016llx",
                static_cast<unsigned long long>(XXH64(bytes.data(), bytes.size(), 0)));
  EXPECT_EQ(RoutedItemId("abc", "r", "d"), want);
  EXPECT_NE(RoutedItemId("abc", "r", "d"), RoutedItemId("abc", "rd", ""));
}

TEST(RoutedItemId, IsAlwaysSixteenLowercaseHexDigits) {
  for (int i = 0; i < 2000; ++i) {
    const std::string id = RoutedItemId("t" + std::to_string(i), "r", "d");
    ASSERT_EQ(id.size(), 16u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  }
}

TEST(RoutedItem, CarriesTheWholeTraceAndItsFeedback) {
  Fixture f;
  const Trace t = FullTrace();
  const std::string json = SerializeRoutedItem(f.Item(t));
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  EXPECT_STREQ(d["schema"].GetString(), "triaged.routed_item/v1");
  EXPECT_EQ(d["id"].GetString(), RoutedItemId(t.id(), "thumbs-down", "support-review"));
  EXPECT_STREQ(d["kind"].GetString(), "queue");
  EXPECT_STREQ(d["priority"].GetString(), "high");
  EXPECT_DOUBLE_EQ(d["sample_rate"].GetDouble(), 1.0);
  EXPECT_STREQ(d["trigger"].GetString(), "close");
  EXPECT_STREQ(d["routed_at"].GetString(), "2026-11-01T10:00:00.123Z");
  EXPECT_STREQ(d["input"].GetString(), "How do I rotate my key?");
  EXPECT_STREQ(d["output"].GetString(), "Settings \"API keys\"");
  const auto& trace = d["trace"];
  EXPECT_STREQ(trace["name"].GetString(), "chat");
  EXPECT_STREQ(trace["status"].GetString(), "error");
  EXPECT_DOUBLE_EQ(trace["duration_ms"].GetDouble(), 1250.0);
  EXPECT_STREQ(trace["resource"]["service.name"].GetString(), "bot");
  ASSERT_EQ(trace["spans"].Size(), 2u);
  EXPECT_STREQ(trace["spans"][0]["span_id"].GetString(), "a");  // start-time order
  EXPECT_TRUE(trace["spans"][0]["parent_span_id"].IsNull());
  const auto& attrs = trace["spans"][1]["attributes"];
  EXPECT_TRUE(attrs["gen_ai.usage.input_tokens"].IsInt64());
  EXPECT_TRUE(attrs["nan"].IsNull());
  EXPECT_EQ(attrs["tags"].Size(), 2u);
  ASSERT_EQ(d["feedback"].Size(), 1u);
  EXPECT_STREQ(d["feedback"][0]["metadata"]["ticket"].GetString(), "ZD-1");
  EXPECT_STREQ(d["feedback"][0]["timestamp"].GetString(), "2026-11-01T10:00:05.000Z");
  EXPECT_STREQ(d["annotation"]["status"].GetString(), "pending");
  EXPECT_FALSE(d.HasMember("context"));
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
}

TEST(RoutedItem, FeedbackWithoutSpansHasMissingContext) {
  Fixture f;
  Trace t("feedbeef");
  Annotation a;
  a.trace_id = t.id();
  a.name = "thumbs";
  a.score = std::numeric_limits<double>::infinity();
  t.AddAnnotation(a);
  RoutedItem item = f.Item(t);
  item.trigger = Trigger::kLateFeedback;
  const std::string json = SerializeRoutedItem(item);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  EXPECT_TRUE(d["trace"].IsNull());
  EXPECT_STREQ(d["context"].GetString(), "missing");
  EXPECT_STREQ(d["trigger"].GetString(), "late_feedback");
  EXPECT_TRUE(d["feedback"][0]["score"].IsNull());  // never Infinity
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
}

TEST(RoutedItemSchema, RejectsBrokenDocuments) {
  Fixture f;
  const Trace t = FullTrace();
  const std::string good = SerializeRoutedItem(f.Item(t));
  const auto schema = LoadSchema();
  std::string why;
  ASSERT_TRUE(Valid(schema, good, &why)) << why;
  auto mutate = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  EXPECT_FALSE(Valid(schema, mutate("\"kind\":\"queue\"", "\"kind\":\"inbox\""), &why));
  EXPECT_FALSE(Valid(schema, mutate("\"trigger\":\"close\",", ""), &why));
  EXPECT_FALSE(Valid(schema, mutate("\"schema\":", "\"extra\":1,\"schema\":"), &why));
  EXPECT_FALSE(Valid(schema, mutate("\"source\":\"end_user\"", "\"source\":\"robot\""), &why));
  EXPECT_FALSE(Valid(schema, mutate("\"routed_at\":\"2026-11-01T10:00:00.123Z\"",
                                    "\"routed_at\":\"yesterday\""), &why));
}

}  // namespace
}  // namespace triaged
