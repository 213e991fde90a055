#include "rules/routed_item.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>
#include <xxhash.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

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
  *why = std::string(v.GetInvalidSchemaKeyword()) + " at " + [&] {
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
  EXPECT_FALSE(Valid(
      schema, mutate("\"routed_at\":\"2026-11-01T10:00:00.123Z\"", "\"routed_at\":\"yesterday\""),
      &why));
}

std::string Hex16(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<std::string> Keys(const rapidjson::Value& obj) {
  std::vector<std::string> keys;
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it)
    keys.emplace_back(it->name.GetString());
  return keys;
}

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

TEST(RoutedItemId, KnownVectors) {
  // XXH64 of the literal bytes, computed by a separate one-shot call.
  EXPECT_EQ(RoutedItemId("abc", "r", "d"), Hex16(XXH64("abc\0r\0d", 7, 0)));
  EXPECT_EQ(RoutedItemId("", "", ""), Hex16(XXH64("\0\0", 2, 0)));
  static constexpr char kLong[] = "7f3a9c2e41b04d5a8e6f1c2b3d4e5f01\0thumbs-down\0support-review";
  EXPECT_EQ(RoutedItemId("7f3a9c2e41b04d5a8e6f1c2b3d4e5f01", "thumbs-down", "support-review"),
            Hex16(XXH64(kLong, sizeof kLong - 1, 0)));
  // Pinned values (checked against a separate XXH64 implementation): ids are a wire contract
  // consumers deduplicate on, so they must never change.
  EXPECT_EQ(RoutedItemId("abc", "r", "d"), "2fd6a4983e449cd8");
  EXPECT_EQ(RoutedItemId("", "", ""), "9aaba41ffa2da101");
  EXPECT_EQ(RoutedItemId("7f3a9c2e41b04d5a8e6f1c2b3d4e5f01", "thumbs-down", "support-review"),
            "7a3b4d6ca8eaf35a");
  // XXH64 of the empty input with seed 0 is a published constant.
  EXPECT_EQ(Hex16(XXH64("", 0, 0)), "ef46db3751d8e999");
  // The separators keep the three names apart.
  EXPECT_NE(RoutedItemId("ab", "c", "d"), RoutedItemId("a", "bc", "d"));
  EXPECT_NE(RoutedItemId("a", "b", "cd"), RoutedItemId("a", "bc", "d"));
}

TEST(RoutedItemId, ZeroPadsSmallHashes) {
  // Find trace ids whose hash has leading zero digits, independently of RoutedItemId.
  int found = 0;
  for (int i = 0; i < 100000 && found < 3; ++i) {
    const std::string trace = "trace-" + std::to_string(i);
    const std::string bytes = trace + std::string("\0r\0d", 4);
    const uint64_t h = XXH64(bytes.data(), bytes.size(), 0);
    if (h >> 56 != 0) continue;  // two leading zero digits
    ++found;
    const std::string id = RoutedItemId(trace, "r", "d");
    EXPECT_EQ(id.size(), 16u);
    EXPECT_EQ(id.substr(0, 2), "00") << id;
    EXPECT_EQ(std::stoull(id, nullptr, 16), h);
  }
  EXPECT_EQ(found, 3);
}

TEST(RoutedItem, FieldOrderAndNullConventions) {
  Fixture f;
  const Trace t = FullTrace();
  const rapidjson::Document d = Parse(SerializeRoutedItem(f.Item(t)));
  EXPECT_EQ(Keys(d), (std::vector<std::string>{"schema", "id", "trace_id", "destination", "kind",
                                               "rule", "priority", "sample_rate", "trigger",
                                               "routed_at", "config_version", "input", "output",
                                               "trace", "feedback", "annotation"}));
  const auto& trace = d["trace"];
  EXPECT_EQ(Keys(trace),
            (std::vector<std::string>{"name", "duration_ms", "model", "status", "error_count",
                                      "span_count", "input_tokens", "output_tokens", "total_tokens",
                                      "retry_count", "session_id", "user_id", "prompt_version",
                                      "attributes", "resource", "spans"}));
  const std::vector<std::string> span_keys{
      "span_id",  "parent_span_id", "name",  "kind",  "status", "status_message", "start_time",
      "end_time", "duration_ms",    "model", "input", "output", "attributes"};
  for (const auto& span : trace["spans"].GetArray()) EXPECT_EQ(Keys(span), span_keys);
  EXPECT_EQ(Keys(d["feedback"][0]),
            (std::vector<std::string>{"trace_id", "span_id", "name", "score", "label",
                                      "explanation", "source", "metadata", "timestamp"}));
  EXPECT_EQ(Keys(d["annotation"]), (std::vector<std::string>{"status", "score", "label",
                                                             "explanation", "expected_output"}));

  // Trace-level values: counts are integers, absent canonical fields are null.
  EXPECT_EQ(trace["error_count"].GetInt64(), 1);
  EXPECT_EQ(trace["span_count"].GetInt64(), 2);
  EXPECT_STREQ(trace["model"].GetString(), "gpt-4o");  // from the child: the root has none
  EXPECT_EQ(trace["input_tokens"].GetInt64(), 812);
  EXPECT_TRUE(trace["output_tokens"].IsNull());
  EXPECT_EQ(trace["total_tokens"].GetInt64(), 812);
  EXPECT_EQ(trace["retry_count"].GetInt64(), 0);
  EXPECT_TRUE(trace["session_id"].IsNull());
  EXPECT_TRUE(trace["user_id"].IsNull());
  EXPECT_TRUE(trace["prompt_version"].IsNull());
  EXPECT_TRUE(trace["attributes"].IsObject());
  EXPECT_EQ(trace["attributes"].MemberCount(), 0u);  // the root has no attributes

  // Root span: error with a message, no kind, no model.
  const auto& root = trace["spans"][0];
  EXPECT_STREQ(root["status"].GetString(), "error");
  EXPECT_STREQ(root["status_message"].GetString(), "tool failed");
  EXPECT_TRUE(root["kind"].IsNull());
  EXPECT_TRUE(root["model"].IsNull());
  EXPECT_STREQ(root["start_time"].GetString(), "2026-11-01T10:00:00.000Z");
  EXPECT_STREQ(root["end_time"].GetString(), "2026-11-01T10:00:01.250Z");
  EXPECT_EQ(root["duration_ms"].GetInt64(), 1250);
  // Child span: unset status has a null message, a parent id, the canonical fields.
  const auto& child = trace["spans"][1];
  EXPECT_STREQ(child["parent_span_id"].GetString(), "a");
  EXPECT_STREQ(child["status"].GetString(), "unset");
  EXPECT_TRUE(child["status_message"].IsNull());
  EXPECT_STREQ(child["kind"].GetString(), "LLM");
  EXPECT_TRUE(child["input"].IsNull());
  EXPECT_TRUE(child["output"].IsNull());
  EXPECT_DOUBLE_EQ(child["attributes"]["temperature"].GetDouble(), 0.2);
  EXPECT_TRUE(child["attributes"]["tags"][1].IsTrue());

  const auto& fb = d["feedback"][0];
  EXPECT_STREQ(fb["trace_id"].GetString(), t.id().c_str());
  EXPECT_TRUE(fb["span_id"].IsNull());
  EXPECT_EQ(fb["score"].GetInt64(), 0);
  EXPECT_TRUE(fb["explanation"].IsNull());
  EXPECT_STREQ(fb["source"].GetString(), "end_user");
  for (const char* k : {"score", "label", "explanation", "expected_output"}) {
    EXPECT_TRUE(d["annotation"][k].IsNull()) << k;
  }
}

TEST(RoutedItem, MissingContextDocumentHasNullInputOutputAndFeedbackInArrivalOrder) {
  Fixture f;
  Trace t("feedbeef");
  for (const char* name : {"second-by-time", "first-by-time"}) {
    Annotation a;
    a.trace_id = t.id();
    a.span_id = "c0ffee";
    a.name = name;
    a.label = "bad";
    a.explanation = "wrong answer";
    a.source = "llm_judge";
    a.timestamp_ns = name[0] == 's' ? 2'000'000'000 : 1'000'000'000;
    t.AddAnnotation(a);
  }
  const std::string json = SerializeRoutedItem(f.Item(t));
  const rapidjson::Document d = Parse(json);
  EXPECT_EQ(Keys(d), (std::vector<std::string>{"schema", "id", "trace_id", "destination", "kind",
                                               "rule", "priority", "sample_rate", "trigger",
                                               "routed_at", "config_version", "input", "output",
                                               "trace", "context", "feedback", "annotation"}));
  EXPECT_TRUE(d["input"].IsNull());
  EXPECT_TRUE(d["output"].IsNull());
  EXPECT_TRUE(d["trace"].IsNull());
  EXPECT_STREQ(d["context"].GetString(), "missing");
  ASSERT_EQ(d["feedback"].Size(), 2u);
  EXPECT_STREQ(d["feedback"][0]["name"].GetString(), "second-by-time");
  EXPECT_STREQ(d["feedback"][0]["span_id"].GetString(), "c0ffee");
  EXPECT_TRUE(d["feedback"][0]["score"].IsNull());
  EXPECT_STREQ(d["feedback"][0]["timestamp"].GetString(), "1970-01-01T00:00:02.000Z");
  EXPECT_STREQ(d["feedback"][1]["name"].GetString(), "first-by-time");
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
}

TEST(RoutedItem, NeverWritesNanOrInfinity) {
  Fixture f;
  f.rule.sample_rate = std::numeric_limits<double>::quiet_NaN();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Trace t("0123abcd");
  Span s;
  s.trace_id = t.id();
  s.span_id = "a";
  s.name = "root";
  s.input_tokens = nan;
  s.output_tokens = inf;
  s.retry_count = -inf;
  s.attributes = {{"x", AttrValue::Number(inf)},
                  {"xs", AttrValue::Array({AttrValue::Number(nan), AttrValue::Number(1.5)})}};
  t.AddSpan(s);
  Annotation a;
  a.trace_id = t.id();
  a.name = "judge";
  a.score = nan;
  t.AddAnnotation(a);
  const std::string json = SerializeRoutedItem(f.Item(t));
  for (const char* bad : {"NaN", "nan", "Inf", "inf"}) {
    EXPECT_EQ(json.find(bad), std::string::npos) << bad << " in " << json;
  }
  const rapidjson::Document d = Parse(json);
  EXPECT_TRUE(d["sample_rate"].IsNull());
  EXPECT_TRUE(d["trace"]["input_tokens"].IsNull());
  EXPECT_TRUE(d["trace"]["output_tokens"].IsNull());
  EXPECT_TRUE(d["trace"]["total_tokens"].IsNull());
  EXPECT_TRUE(d["trace"]["retry_count"].IsNull());
  EXPECT_TRUE(d["trace"]["duration_ms"].IsNull());  // no times at all
  const auto& span = d["trace"]["spans"][0];
  EXPECT_TRUE(span["start_time"].IsNull());
  EXPECT_TRUE(span["end_time"].IsNull());
  EXPECT_TRUE(span["duration_ms"].IsNull());
  EXPECT_TRUE(span["attributes"]["x"].IsNull());
  EXPECT_TRUE(span["attributes"]["xs"][0].IsNull());
  EXPECT_DOUBLE_EQ(span["attributes"]["xs"][1].GetDouble(), 1.5);
  EXPECT_TRUE(d["feedback"][0]["score"].IsNull());
}

TEST(RoutedItem, NumbersAreIntegersOnlyWhenExact) {
  Fixture f;
  Trace t("0123abcd");
  Span s;
  s.trace_id = t.id();
  s.span_id = "a";
  s.name = "root";
  s.start_ns = 0;
  s.end_ns = 1'500'000;  // 1.5 ms
  s.attributes = {{"int", AttrValue::Number(42)},
                  {"neg", AttrValue::Number(-7)},
                  {"big", AttrValue::Number(9007199254740993.0 * 4)},  // beyond 2^53
                  {"frac", AttrValue::Number(0.1)},
                  {"null", AttrValue::Null()},
                  {"bool", AttrValue::Bool(false)},
                  {"str", AttrValue::String("s")},
                  {"empty", AttrValue::Array({})}};
  t.AddSpan(s);
  const std::string json = SerializeRoutedItem(f.Item(t));
  EXPECT_NE(json.find(R"("int":42,"neg":-7,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("frac":0.1,"null":null,"bool":false,"str":"s","empty":[])"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("duration_ms":1.5)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("sample_rate":1.0,)"), std::string::npos) << json;
  const rapidjson::Document d = Parse(json);
  EXPECT_DOUBLE_EQ(d["trace"]["spans"][0]["attributes"]["big"].GetDouble(), 9007199254740993.0 * 4);
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
}

TEST(RoutedItem, EscapesStringsIntoValidJson) {
  Fixture f;
  f.rule.name = "rule \"quoted\"";
  f.dest.name = "dest\\slash";
  f.dest.kind = DestinationKind::kDataset;
  f.rule.sample_rate = 0.25;
  const std::string nasty =
      std::string("line\nbreak\ttab \x01 nul:") + '\0' + " é 日本 🙂 </script>";
  Trace t("abc");
  Span s;
  s.trace_id = t.id();
  s.span_id = "a";
  s.name = nasty;
  s.input = nasty;
  s.attributes = {{nasty, AttrValue::String(nasty)}};
  t.AddSpan(s);
  Annotation a;
  a.trace_id = t.id();
  a.name = "n";
  a.explanation = nasty;
  a.metadata_json = R"({"k":"v\n","n":[1,2.5,{"x":null}]})";
  t.AddAnnotation(a);
  const std::string json = SerializeRoutedItem(f.Item(t));
  EXPECT_EQ(json.find('\n'), std::string::npos);  // compact, no raw control characters
  EXPECT_EQ(json.find('\0'), std::string::npos);
  const rapidjson::Document d = Parse(json);
  auto str = [](const rapidjson::Value& v) {
    return std::string(v.GetString(), v.GetStringLength());
  };
  EXPECT_EQ(str(d["rule"]), f.rule.name);
  EXPECT_EQ(str(d["destination"]), f.dest.name);
  EXPECT_STREQ(d["kind"].GetString(), "dataset");
  EXPECT_DOUBLE_EQ(d["sample_rate"].GetDouble(), 0.25);
  EXPECT_EQ(str(d["input"]), nasty);
  EXPECT_EQ(str(d["trace"]["spans"][0]["name"]), nasty);
  const auto& attrs = d["trace"]["spans"][0]["attributes"];
  ASSERT_EQ(attrs.MemberCount(), 1u);
  EXPECT_EQ(str(attrs.MemberBegin()->name), nasty);
  EXPECT_EQ(str(attrs.MemberBegin()->value), nasty);
  EXPECT_EQ(str(d["feedback"][0]["explanation"]), nasty);
  EXPECT_STREQ(d["feedback"][0]["metadata"]["k"].GetString(), "v\n");
  EXPECT_TRUE(d["feedback"][0]["metadata"]["n"][2]["x"].IsNull());
  EXPECT_EQ(d["id"].GetString(), RoutedItemId("abc", f.rule.name, f.dest.name));
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
}

TEST(RoutedItem, MetadataThatIsNotAnObjectIsWrittenAsEmptyObject) {
  Fixture f;
  Trace t("abc");
  for (const char* meta : {"", "[1,2]", "null", "{\"open\":", "{} trailing", "\"s\""}) {
    Annotation a;
    a.trace_id = t.id();
    a.name = "n";
    a.metadata_json = meta;
    t.AddAnnotation(a);
  }
  const std::string json = SerializeRoutedItem(f.Item(t));
  const rapidjson::Document d = Parse(json);
  ASSERT_EQ(d["feedback"].Size(), 6u);
  for (const auto& fb : d["feedback"].GetArray()) {
    ASSERT_TRUE(fb["metadata"].IsObject()) << json;
    EXPECT_EQ(fb["metadata"].MemberCount(), 0u) << json;
  }
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
}

TEST(RoutedItem, SpansInStartOrderStableAmongEqualsUntimedLast) {
  Fixture f;
  Trace t("abc");
  auto add = [&](const char* id, std::optional<int64_t> start) {
    Span s;
    s.trace_id = t.id();
    s.span_id = id;
    s.parent_span_id = std::string(id) == "root" ? "" : "root";
    s.name = id;
    s.start_ns = start;
    t.AddSpan(s);
  };
  add("untimed-1", std::nullopt);
  add("late", 300);
  add("tie-1", 200);
  add("root", 100);
  add("tie-2", 200);
  add("untimed-2", std::nullopt);
  const rapidjson::Document d = Parse(SerializeRoutedItem(f.Item(t)));
  std::vector<std::string> order;
  for (const auto& s : d["trace"]["spans"].GetArray()) order.emplace_back(s["span_id"].GetString());
  EXPECT_EQ(order,
            (std::vector<std::string>{"root", "tie-1", "tie-2", "late", "untimed-1", "untimed-2"}));
}

TEST(RoutedItemSchema, RejectsMissingFieldsWrongTypesAndContextMismatch) {
  Fixture f;
  const auto schema = LoadSchema();
  const std::string good = SerializeRoutedItem(f.Item(FullTrace()));
  Trace orphan("feedbeef");
  Annotation a;
  a.trace_id = orphan.id();
  a.name = "thumbs";
  orphan.AddAnnotation(a);
  const std::string missing = SerializeRoutedItem(f.Item(orphan));
  std::string why;
  ASSERT_TRUE(Valid(schema, good, &why)) << why;
  ASSERT_TRUE(Valid(schema, missing, &why)) << why;
  auto mutate = [](const std::string& doc, const std::string& from, const std::string& to) {
    std::string s = doc;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  // Each of these documents breaks one rule of the schema.
  const std::vector<std::pair<std::string, std::string>> broken{
      {"missing id", mutate(good, "\"id\":", "\"ident\":")},
      {"short id", mutate(good, "\"id\":\"", "\"id\":\"x")},
      {"wrong schema", mutate(good, "routed_item/v1", "routed_item/v2")},
      {"sample_rate string", mutate(good, "\"sample_rate\":1.0", "\"sample_rate\":\"1.0\"")},
      {"trigger unknown", mutate(good, "\"trigger\":\"close\"", "\"trigger\":\"open\"")},
      {"span without status", mutate(good, "\"status\":\"unset\",", "")},
      {"span extra field", mutate(good, "\"span_id\":\"a\",", "\"span_id\":\"a\",\"x\":1,")},
      {"trace status",
       mutate(good, "\"status\":\"error\",\"error_count\"", "\"status\":\"bad\",\"error_count\"")},
      {"annotation extra",
       mutate(good, "\"status\":\"pending\",", "\"status\":\"pending\",\"x\":1,")},
      {"annotation done", mutate(good, "\"status\":\"pending\"", "\"status\":\"done\"")},
      {"metadata array", mutate(good, "{\"ticket\":\"ZD-1\"}", "[]")},
      {"context with trace",
       mutate(good, "\"feedback\":", "\"context\":\"missing\",\"feedback\":")},
      {"null trace without context", mutate(missing, "\"context\":\"missing\",", "")},
      {"context other value", mutate(missing, "\"context\":\"missing\"", "\"context\":\"gone\"")},
  };
  for (const auto& [what, doc] : broken) {
    EXPECT_NE(doc, good) << what;
    EXPECT_FALSE(Valid(schema, doc, &why)) << what << ": " << doc;
  }
}

}  // namespace
}  // namespace triaged

namespace triaged {
namespace {

// DESIGN §4 Size: a trace of three 600 KB spans and a thumbs-down (1.8 MB of JSON) is published
// within max_item_bytes, its largest strings cut, and says so.
TEST(RoutedItemSize, TheLargestStringsAreCutFirst) {
  Fixture f;
  Trace t = FullTrace();
  for (const char* id : {"c", "d", "e"}) {
    Span big;
    big.trace_id = t.id();
    big.span_id = id;
    big.parent_span_id = "a";
    big.name = "retrieve";
    big.start_ns = 1'793'527'200'600'000'000;
    big.output = std::string(600'000, 'x');
    t.AddSpan(big);
  }
  const std::string whole = SerializeRoutedItem(f.Item(t));
  ASSERT_GT(whole.size(), 1'800'000u);
  const std::string json = SerializeRoutedItem(f.Item(t), kDefaultMaxItemBytes);
  EXPECT_LE(json.size(), kDefaultMaxItemBytes);
  EXPECT_GT(json.size(), kDefaultMaxItemBytes - 4096);  // cut no more than needed
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why;
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_EQ(d["truncated"]["bytes_before"].GetUint64(), whole.size());
  EXPECT_FALSE(d.HasMember("spans_omitted"));
  ASSERT_EQ(d["trace"]["spans"].Size(), 5u);
  const std::string out = d["trace"]["spans"][2]["output"].GetString();
  EXPECT_LT(out.size(), 600'000u);
  EXPECT_EQ(out.substr(out.size() - 3), "\u2026");
  // Short values are whole.
  EXPECT_STREQ(d["trace"]["spans"][0]["input"].GetString(), "How do I rotate my key?");
  EXPECT_STREQ(d["id"].GetString(), RoutedItemId(t.id(), "thumbs-down", "support-review").c_str());
  // Within the bound, nothing changes.
  EXPECT_EQ(SerializeRoutedItem(f.Item(t), whole.size()), whole);
}

TEST(RoutedItemSize, ThenSpansPastTheFirstOnesAreLeftOut) {
  Fixture f;
  Trace t = FullTrace();
  for (int i = 0; i < 20'000; ++i) {
    Span s;
    s.trace_id = t.id();
    s.span_id = "s" + std::to_string(i);
    s.parent_span_id = "a";
    s.name = "tool";
    s.start_ns = 1'793'527'200'600'000'000 + i;
    t.AddSpan(s);
  }
  const std::string json = SerializeRoutedItem(f.Item(t), 256 * 1024);
  EXPECT_LE(json.size(), 256u * 1024);
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why;
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_TRUE(d.HasMember("spans_omitted"));
  const uint64_t kept = d["trace"]["spans"].Size();
  EXPECT_GT(kept, 100u);
  EXPECT_EQ(kept + d["spans_omitted"].GetUint64(), 20'002u);
  EXPECT_STREQ(d["trace"]["spans"][0]["span_id"].GetString(), "a");  // the first ones stay
}

TEST(RoutedItemSize, CutsNeverSplitAUtf8Character) {
  Fixture f;
  Trace t = FullTrace();
  Span big;
  big.trace_id = t.id();
  big.span_id = "c";
  big.name = "llm";
  std::string text;
  while (text.size() < 300'000) text += "\xc3\xa9\xe2\x82\xac";  // é€
  big.output = text;
  t.AddSpan(big);
  const std::string json = SerializeRoutedItem(f.Item(t), 64 * 1024);
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(json.c_str());
  EXPECT_FALSE(d.HasParseError());
  EXPECT_LE(json.size(), 64u * 1024);
}

}  // namespace
}  // namespace triaged
