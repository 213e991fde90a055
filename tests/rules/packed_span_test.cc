#include "rules/packed_span.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "rules/decode.h"
#include "rules/trace.h"

namespace triaged {
namespace {

Span Full() {
  Span s;
  s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  s.span_id = "00f067aa0ba902b7";
  s.parent_span_id = "";
  s.name = "rag.answer";
  s.start_ns = -5;
  s.end_ns = 1'793'527'201'250'000'000;
  s.status = SpanStatus::kError;
  s.status_message = "upstream timeout";
  s.kind = "LLM";
  s.attributes = {
      {"gen_ai.request.model", AttrValue::String("gpt-4o")},
      {"llm.input_messages", AttrValue::String(std::string(300, 'q'))},
      {"flag", AttrValue::Bool(true)},
      {"n", AttrValue::Number(-0.25)},
      {"none", AttrValue::Null()},
      {"tags", AttrValue::Array({AttrValue::String("a"), AttrValue::Number(2),
                                 AttrValue::Array({AttrValue::Bool(false)})})},
  };
  s.resource = {{"service.name", AttrValue::String("support-bot")}};
  s.model = "gpt-4o";               // the same as an attribute
  s.input = std::string(300, 'q');  // the same as an attribute
  s.output = "a native output";     // not an attribute
  s.user_id = "";                   // present but empty
  s.input_tokens = 812;
  s.retry_count = 0;
  s.bytes = 1234;
  return s;
}

TEST(PackedSpan, EveryFieldSurvives) {
  const Span span = Full();
  const PackedSpan packed(span);
  EXPECT_EQ(packed.Unpack(span.trace_id), span);
  // The 300-byte input is stored once, not again as the canonical copy of its attribute.
  EXPECT_LT(packed.size(), 2 * 300u);
}

TEST(PackedSpan, AnEmptySpanSurvives) {
  Span span;
  span.trace_id = "t";
  EXPECT_EQ(PackedSpan(span).Unpack("t"), span);
}

TEST(PackedSpan, EverySpanOfEveryInputShapeSurvives) {
  int spans = 0;
  for (const char* name : {"native_span.json", "otlp_request.json"}) {
    std::ifstream in(std::string(TRIAGED_SOURCE_DIR) + "/tests/data/shapes/" + name);
    std::stringstream text;
    text << in.rdbuf();
    auto decoded = DecodeSpans(text.str());
    ASSERT_TRUE(decoded.ok()) << name;
    for (const Span& span : decoded.value().spans) {
      EXPECT_EQ(PackedSpan(span).Unpack(span.trace_id), span) << name << " " << span.span_id;
      ++spans;
    }
  }
  EXPECT_GE(spans, 2);
}

TEST(PackedSpan, ATraceUnpacksAgainAfterRelease) {
  Trace trace("4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(trace.AddSpan(Full()));
  EXPECT_EQ(trace.spans().at(0), Full());
  ASSERT_NE(trace.summary().model, nullptr);
  EXPECT_EQ(*trace.summary().model, "gpt-4o");
  trace.Release();
  ASSERT_NE(trace.summary().model, nullptr);
  EXPECT_EQ(*trace.summary().model, "gpt-4o");
  EXPECT_EQ(trace.spans().at(0), Full());
  EXPECT_FALSE(trace.AddSpan(Full()));  // the same span id again
  EXPECT_EQ(trace.spans().size(), 1u);
}

}  // namespace
}  // namespace triaged
