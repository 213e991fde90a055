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

TEST(RoutedItem, EveryControlByteOfEveryStringIsEscapedWhereverItIs) {
  // The document is compact JSON: no raw byte below 0x20 may appear in it, in short strings or
  // inside the 16-byte blocks a vectorized writer copies (Debian's RapidJSON's SSE2 scan let
  // 0x1A-0x1F through).
  Fixture f;
  for (int byte = 0; byte < 0x20; ++byte) {
    Trace t("7f3a9c2e41b04d5a8e6f1c2b3d4e5f01");
    for (size_t i = 0; i < 40; ++i) {
      Span s;
      s.trace_id = t.id();
      s.span_id = "s" + std::to_string(i);
      s.name = std::string(40, 'n');
      s.name[i] = static_cast<char>(byte);
      s.attributes = {{s.name, AttrValue::String(s.name)}};
      t.AddSpan(s);
    }
    const std::string json = SerializeRoutedItem(f.Item(t));
    for (size_t k = 0; k < json.size(); ++k) {
      ASSERT_GE(static_cast<unsigned char>(json[k]), 0x20) << "byte " << byte << " at " << k;
    }
    rapidjson::Document d;
    d.Parse<rapidjson::kParseStopWhenDoneFlag>(json.c_str());
    ASSERT_FALSE(d.HasParseError()) << byte;
    const rapidjson::Value& spans = d["trace"]["spans"];
    ASSERT_EQ(spans.Size(), 40u);
    for (rapidjson::SizeType i = 0; i < spans.Size(); ++i) {
      std::string name(40, 'n');
      name[i] = static_cast<char>(byte);
      ASSERT_EQ(std::string(spans[i]["name"].GetString(), spans[i]["name"].GetStringLength()),
                name);
    }
  }
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
                                      "explanation", "source", "metadata", "timestamp", "id",
                                      "session_id", "annotator", "expected_output", "version"}));
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
  for (const char* k : {"id", "session_id", "annotator", "expected_output", "version"}) {
    EXPECT_TRUE(fb[k].IsNull()) << k;
  }
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

// ---------------------------------------------------------------------------------------------
// What the feedback says about review (DESIGN §1.2 "Every annotation also keeps ...", §4)

Annotation Feedback(const Trace& t, const char* name, const char* source,
                    std::optional<int64_t> ts) {
  Annotation a;
  a.trace_id = t.id();
  a.name = name;
  a.source = source;
  a.timestamp_ns = ts;
  return a;
}

TEST(RoutedItem, FeedbackCarriesIdAnnotatorCorrectionAndVersion) {
  Fixture f;
  Trace t = FullTrace();
  Annotation a = Feedback(t, "correctness", "human", 1'793'527'206'000'000'000);
  a.id = "fb-1";
  a.annotator_json = R"({"user_id":"u-7","queue_id":"q"})";
  a.expected_output = "Settings, then Security";
  a.schema_version = 3;
  t.AddAnnotation(a);
  Annotation bad_annotator = Feedback(t, "n", "code", std::nullopt);
  bad_annotator.annotator_json = "[1]";  // a hand-built annotation: never invalid JSON out
  t.AddAnnotation(bad_annotator);
  const std::string json = SerializeRoutedItem(f.Item(t));
  const rapidjson::Document d = Parse(json);
  ASSERT_EQ(d["feedback"].Size(), 3u);
  const auto& fb = d["feedback"][1];
  EXPECT_STREQ(fb["id"].GetString(), "fb-1");
  EXPECT_TRUE(fb["session_id"].IsNull());
  EXPECT_STREQ(fb["annotator"]["user_id"].GetString(), "u-7");
  EXPECT_STREQ(fb["annotator"]["queue_id"].GetString(), "q");
  EXPECT_STREQ(fb["expected_output"].GetString(), "Settings, then Security");
  EXPECT_EQ(fb["version"].GetInt64(), 3);
  EXPECT_TRUE(d["feedback"][2]["annotator"].IsNull());
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
}

TEST(RoutedItem, AnnotationIsPendingWithoutHumanFeedback) {
  Fixture f;
  Trace t = FullTrace();  // a thumbs-down from an end user
  Annotation judge = Feedback(t, "faithfulness", "llm_judge", 1'793'527'209'000'000'000);
  judge.score = 0.2;
  judge.label = "unfaithful";
  t.AddAnnotation(judge);
  const rapidjson::Document d = Parse(SerializeRoutedItem(f.Item(t)));
  EXPECT_STREQ(d["annotation"]["status"].GetString(), "pending");
  for (const char* k : {"score", "label", "explanation", "expected_output"}) {
    EXPECT_TRUE(d["annotation"][k].IsNull()) << k;
  }
}

TEST(RoutedItem, AnnotationSummarizesTheLatestHumanAnnotation) {
  Fixture f;
  Trace t("abc");
  Annotation early = Feedback(t, "review", "human", 2'000);
  early.score = 1;
  early.label = "early";
  early.explanation = "first look";
  Annotation late = Feedback(t, "review", "human", 5'000);
  late.score = 0;
  late.label = "late";
  late.explanation = "second look";
  Annotation untimed = Feedback(t, "review", "human", std::nullopt);  // never the latest
  untimed.label = "untimed";
  Annotation judge = Feedback(t, "review", "llm_judge", 9'000);  // later, but not human
  judge.label = "judge";
  t.AddAnnotation(late);
  t.AddAnnotation(early);
  t.AddAnnotation(untimed);
  t.AddAnnotation(judge);
  std::string json = SerializeRoutedItem(f.Item(t));
  rapidjson::Document d = Parse(json);
  const auto& s = d["annotation"];
  EXPECT_STREQ(s["status"].GetString(), "annotated");
  EXPECT_EQ(s["score"].GetInt64(), 0);
  EXPECT_STREQ(s["label"].GetString(), "late");
  EXPECT_STREQ(s["explanation"].GetString(), "second look");
  EXPECT_TRUE(s["expected_output"].IsNull());
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
  // A tie goes to the annotation added last.
  Annotation tie = Feedback(t, "review", "human", 5'000);
  tie.label = "tie";
  t.AddAnnotation(tie);
  d = Parse(SerializeRoutedItem(f.Item(t)));
  EXPECT_STREQ(d["annotation"]["label"].GetString(), "tie");
  EXPECT_TRUE(d["annotation"]["score"].IsNull());  // the tie has none: nothing mixed in
}

// expected_output comes from the latest correction of any source: a human correction, or a
// later one by a judge or a correction score.
TEST(RoutedItem, ExpectedOutputIsTheLatestCorrectionOfAnySource) {
  Fixture f;
  Trace t("abc");
  Annotation human = Feedback(t, "review", "human", 5'000);
  human.label = "wrong";
  human.expected_output = "human fix";
  t.AddAnnotation(human);
  Annotation older = Feedback(t, "fix", "llm_judge", 1'000);
  older.expected_output = "older judge fix";
  t.AddAnnotation(older);
  rapidjson::Document d = Parse(SerializeRoutedItem(f.Item(t)));
  EXPECT_STREQ(d["annotation"]["expected_output"].GetString(), "human fix");
  Annotation later = Feedback(t, "fix", "code", 8'000);
  later.expected_output = "later fix";
  t.AddAnnotation(later);
  d = Parse(SerializeRoutedItem(f.Item(t)));
  EXPECT_STREQ(d["annotation"]["expected_output"].GetString(), "later fix");
  EXPECT_STREQ(d["annotation"]["label"].GetString(), "wrong");  // still the human's
  // Without any human annotation, a correction still gives the expected output.
  Trace judged("def");
  Annotation only = Feedback(judged, "fix", "llm_judge", 1'000);
  only.expected_output = "judge fix";
  judged.AddAnnotation(only);
  d = Parse(SerializeRoutedItem(f.Item(judged)));
  EXPECT_STREQ(d["annotation"]["status"].GetString(), "pending");
  EXPECT_STREQ(d["annotation"]["expected_output"].GetString(), "judge fix");
}

TEST(RoutedItem, DatasetItemsAreRows) {
  Fixture f;
  f.dest.kind = DestinationKind::kDataset;
  Trace t = FullTrace();  // thumbs "down" at ...205 s
  Annotation review = Feedback(t, "correctness", "human", 1'793'527'210'000'000'000);
  review.label = "partially_correct";
  review.expected_output = "Settings, then Security, then API keys";
  t.AddAnnotation(review);
  Annotation unlabeled = Feedback(t, "faithfulness", "llm_judge", 1'793'527'220'000'000'000);
  unlabeled.score = 0.9;  // later, but no label: not a category
  t.AddAnnotation(unlabeled);
  const std::string json = SerializeRoutedItem(f.Item(t));
  const rapidjson::Document d = Parse(json);
  EXPECT_EQ(Keys(d), (std::vector<std::string>{
                         "schema", "id", "trace_id", "destination", "kind", "rule", "priority",
                         "sample_rate", "trigger", "routed_at", "config_version", "input", "output",
                         "expected_output", "annotation_status", "feedback_category", "trace",
                         "feedback", "annotation"}));
  EXPECT_STREQ(d["input"].GetString(), "How do I rotate my key?");
  EXPECT_STREQ(d["expected_output"].GetString(), "Settings, then Security, then API keys");
  EXPECT_STREQ(d["annotation_status"].GetString(), "annotated");
  EXPECT_STREQ(d["feedback_category"].GetString(), "partially_correct");
  EXPECT_STREQ(d["priority"].GetString(), "high");
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
  // A row without review: pending, nulls; the category of the thumbs-down.
  const Trace plain = FullTrace();
  const rapidjson::Document p = Parse(SerializeRoutedItem(f.Item(plain)));
  EXPECT_TRUE(p["expected_output"].IsNull());
  EXPECT_STREQ(p["annotation_status"].GetString(), "pending");
  EXPECT_STREQ(p["feedback_category"].GetString(), "down");
  // No labeled feedback at all: null.
  Trace bare("abc");
  Span s;
  s.trace_id = bare.id();
  s.span_id = "a";
  s.name = "root";
  bare.AddSpan(s);
  const std::string bare_json = SerializeRoutedItem(f.Item(bare));
  const rapidjson::Document b = Parse(bare_json);
  EXPECT_TRUE(b["feedback_category"].IsNull());
  EXPECT_TRUE(Valid(LoadSchema(), bare_json, &why)) << why << "\n" << bare_json;
  // Queue items carry none of the row fields.
  f.dest.kind = DestinationKind::kQueue;
  const rapidjson::Document q = Parse(SerializeRoutedItem(f.Item(t)));
  for (const char* k : {"expected_output", "annotation_status", "feedback_category"}) {
    EXPECT_FALSE(q.HasMember(k)) << k;
  }
}

// While the engine evaluates a trace, its session's feedback is part of what the item says.
TEST(RoutedItem, SessionFeedbackJoinsTheFeedbackAndTheSummary) {
  Fixture f;
  f.dest.kind = DestinationKind::kDataset;
  const Trace t = FullTrace();
  Annotation session;
  session.session_id = "sess-1";
  session.name = "resolved";
  session.label = "no";
  session.source = "human";
  session.expected_output = "escalate after the second repeat";
  session.timestamp_ns = 1'793'527'300'000'000'000;
  SessionView view;
  view.annotations = {&session};
  view.trace_count = 2;
  t.set_session(&view);
  const std::string json = SerializeRoutedItem(f.Item(t));
  t.set_session(nullptr);
  const rapidjson::Document d = Parse(json);
  ASSERT_EQ(d["feedback"].Size(), 2u);
  const auto& fb = d["feedback"][1];
  EXPECT_STREQ(fb["trace_id"].GetString(), t.id().c_str());  // the trace it applies to
  EXPECT_STREQ(fb["session_id"].GetString(), "sess-1");
  EXPECT_STREQ(fb["name"].GetString(), "resolved");
  EXPECT_STREQ(d["annotation"]["status"].GetString(), "annotated");
  EXPECT_STREQ(d["annotation"]["label"].GetString(), "no");
  EXPECT_STREQ(d["expected_output"].GetString(), "escalate after the second repeat");
  EXPECT_STREQ(d["feedback_category"].GetString(), "no");
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why << "\n" << json;
  // Outside an evaluation the trace has no session: its own feedback only.
  EXPECT_EQ(Parse(SerializeRoutedItem(f.Item(t)))["feedback"].Size(), 1u);
}

TEST(RoutedItemSchema, RejectsBrokenReviewFields) {
  Fixture f;
  f.dest.kind = DestinationKind::kDataset;
  Trace t = FullTrace();
  Annotation a = Feedback(t, "correctness", "human", 1'793'527'206'000'000'000);
  a.label = "wrong";
  a.id = "fb-1";
  a.annotator_json = R"({"user_id":"u-7"})";
  a.expected_output = "fixed";
  a.schema_version = 3;
  t.AddAnnotation(a);
  const std::string good = SerializeRoutedItem(f.Item(t));
  const auto schema = LoadSchema();
  std::string why;
  ASSERT_TRUE(Valid(schema, good, &why)) << why << "\n" << good;
  auto mutate = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  for (const auto& [what, doc] : std::vector<std::pair<std::string, std::string>>{
           {"annotator array", mutate(R"("annotator":{"user_id":"u-7"})", R"("annotator":[])")},
           {"version string", mutate(R"("version":3)", R"("version":"3")")},
           {"id number", mutate(R"("id":"fb-1")", R"("id":1)")},
           {"row status unknown",
            mutate(R"("annotation_status":"annotated")", R"("annotation_status":"done")")},
           {"summary score string",
            mutate(R"("status":"annotated","score":null)", R"("status":"annotated","score":"1")")},
           {"category number",
            mutate(R"("feedback_category":"wrong")", R"("feedback_category":1)")},
       }) {
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
// The items of one evaluation share one writing of the trace and its feedback: each is the
// document it would be on its own, a dataset row and an item cut to size included.
TEST(RoutedItem, ItemsOfOneEvaluationShareOneWritingOfTheTrace) {
  Fixture f;
  Trace t = FullTrace();
  DestinationSpec dataset;
  dataset.name = "regressions";
  dataset.kind = DestinationKind::kDataset;
  dataset.topic = "datasets.regressions";
  RoutedItem queue_item = f.Item(t);
  RoutedItem dataset_item = f.Item(t);
  dataset_item.destination = &dataset;
  RoutedItemBody body;
  const std::string first = SerializeRoutedItem(queue_item, kDefaultMaxItemBytes, &body);
  EXPECT_EQ(first, SerializeRoutedItem(queue_item));
  ASSERT_FALSE(body.trace.empty());
  ASSERT_FALSE(body.feedback.empty());
  EXPECT_NE(first.find(body.trace), std::string::npos);
  EXPECT_NE(first.find("\"feedback\":" + body.feedback), std::string::npos);
  EXPECT_EQ(SerializeRoutedItem(dataset_item, kDefaultMaxItemBytes, &body),
            SerializeRoutedItem(dataset_item));
  // The second item copies what the first wrote: a changed cache shows in it.
  RoutedItemBody marked = body;
  marked.feedback = "[\"marked\"]";
  EXPECT_NE(SerializeRoutedItem(dataset_item, kDefaultMaxItemBytes, &marked)
                .find("\"feedback\":[\"marked\"]"),
            std::string::npos);
  // A document cut to size is written without the cache.
  const size_t small = first.size() - 1;
  EXPECT_EQ(SerializeRoutedItem(queue_item, small, &body), SerializeRoutedItem(queue_item, small));
  // Without spans there is no trace body to share.
  Trace bare("0123456789abcdef0123456789abcdef");
  RoutedItemBody none;
  EXPECT_EQ(SerializeRoutedItem(f.Item(bare), kDefaultMaxItemBytes, &none),
            SerializeRoutedItem(f.Item(bare)));
  EXPECT_TRUE(none.trace.empty());
}

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

TEST(RoutedItemSize, ALongCorrectionIsCutLikeAnyString) {
  Fixture f;
  f.dest.kind = DestinationKind::kDataset;
  Trace t = FullTrace();
  Annotation a;
  a.trace_id = t.id();
  a.name = "correctness";
  a.source = "human";
  a.expected_output = std::string(300'000, 'y');
  t.AddAnnotation(a);
  const std::string json = SerializeRoutedItem(f.Item(t), 64 * 1024);
  EXPECT_LE(json.size(), 64u * 1024);
  std::string why;
  EXPECT_TRUE(Valid(LoadSchema(), json, &why)) << why;
  const rapidjson::Document d = Parse(json);
  ASSERT_TRUE(d.HasMember("truncated"));
  for (const std::string& cut : {std::string(d["expected_output"].GetString()),
                                 std::string(d["annotation"]["expected_output"].GetString()),
                                 std::string(d["feedback"][1]["expected_output"].GetString())}) {
    EXPECT_LT(cut.size(), 300'000u);
    EXPECT_EQ(cut.substr(cut.size() - 3), "\u2026");
  }
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
