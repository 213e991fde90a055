#include "rules/packed_span.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

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

TEST(PackedSpan, UnpackingIntoASpanInUseGivesWhatUnpackGives) {
  // One span after another into the same Span: what the previous one left (more attributes,
  // longer strings, an array, optional fields) must not show through.
  Span small;
  small.span_id = "01";
  small.name = "tool";
  small.attributes = {{"k", AttrValue::Number(1)}};
  Span other = Full();
  other.attributes[0].second = AttrValue::Array({AttrValue::String("x")});
  other.model.reset();
  other.end_ns.reset();
  Span into;
  for (const Span& span : {Full(), small, other, Span{}, Full(), small}) {
    PackedSpan(span).UnpackInto("t", into);
    EXPECT_EQ(into, PackedSpan(span).Unpack("t")) << span.span_id;
  }
}

TEST(PackedSpan, PeekReadsTheSummaryFieldsWithoutUnpacking) {
  const Span span = Full();
  const PackedSpan packed(span);
  const PackedSpan::Fields f = packed.Peek();
  EXPECT_EQ(f.status, SpanStatus::kError);
  EXPECT_TRUE(f.root);
  EXPECT_EQ(f.name, "rag.answer");
  EXPECT_EQ(f.start_ns, span.start_ns);
  EXPECT_EQ(f.end_ns, span.end_ns);
  EXPECT_EQ(f.input_tokens, span.input_tokens);
  EXPECT_EQ(f.output_tokens, std::nullopt);
  EXPECT_EQ(f.retry_count, span.retry_count);
  // model and input are the attributes' values, output a string of its own, user_id empty.
  EXPECT_EQ(f.canonical(0), std::optional<std::string_view>("gpt-4o"));
  EXPECT_EQ(f.canonical(1), std::optional<std::string_view>(std::string(300, 'q')));
  EXPECT_EQ(f.canonical(2), std::optional<std::string_view>("a native output"));
  EXPECT_EQ(f.canonical(3), std::nullopt);
  EXPECT_EQ(f.canonical(4), std::optional<std::string_view>(""));
  EXPECT_EQ(f.canonical(5), std::nullopt);
  Span child;
  child.parent_span_id = "00f067aa0ba902b7";
  EXPECT_FALSE(PackedSpan(child).Peek().root);
}

// Rebuilds attribute lists from what PackedSpan::Attrs visits.
struct Rebuild : PackedSpan::Attrs::Visitor {
  Attributes attrs;
  std::vector<AttrValue*> open;
  void Put(AttrValue v) {
    if (open.empty()) {
      attrs.back().second = std::move(v);
    } else {
      open.back()->items.push_back(std::move(v));
    }
  }
  void Key(std::string_view key) override { attrs.emplace_back(std::string(key), AttrValue()); }
  void Null() override { Put(AttrValue::Null()); }
  void Bool(bool b) override { Put(AttrValue::Bool(b)); }
  void Number(double n) override { Put(AttrValue::Number(n)); }
  void String(std::string_view v) override { Put(AttrValue::String(std::string(v))); }
  void StartArray() override {
    open.push_back(open.empty() ? &(attrs.back().second = AttrValue::Array({}))
                                : &open.back()->items.emplace_back(AttrValue::Array({})));
  }
  void EndArray() override { open.pop_back(); }
};

TEST(PackedSpan, PeekGivesEveryFieldInPlace) {
  const Span span = Full();
  const PackedSpan packed(span);
  const PackedSpan::Fields f = packed.Peek();
  EXPECT_EQ(f.span_id(), span.span_id);
  EXPECT_EQ(f.parent_span_id(), "");
  EXPECT_EQ(f.status_message, span.status_message);
  EXPECT_EQ(f.kind, "LLM");
  EXPECT_EQ(f.duration_ms(), span.duration_ms());
  EXPECT_EQ(packed.start_ns(), span.start_ns);
  Rebuild attrs;
  f.attributes().Visit(attrs);
  EXPECT_EQ(attrs.attrs, span.attributes);
  EXPECT_EQ(f.attributes().size(), span.attributes.size());
  Rebuild resource;
  f.resource().Visit(resource);
  EXPECT_EQ(resource.attrs, span.resource);
  for (const auto& [key, value] : span.attributes) {
    AttrValue found = AttrValue::String("left over");
    ASSERT_TRUE(f.attributes().Find(key, found)) << key;
    EXPECT_EQ(found, value) << key;
  }
  AttrValue none;
  EXPECT_FALSE(f.attributes().Find("absent", none));
  EXPECT_TRUE(PackedSpan::Attrs().empty());
  Span untimed;
  EXPECT_EQ(PackedSpan(untimed).start_ns(), std::nullopt);
  // A canonical field that is an attribute far into the attributes (a code of several bytes).
  Span far = Full();
  far.attributes.emplace_back("llm.model_name", AttrValue::String("far-model"));
  far.model = "far-model";
  const PackedSpan packed_far(far);
  EXPECT_EQ(packed_far.Peek().canonical(0), std::optional<std::string_view>("far-model"));
  EXPECT_EQ(packed_far.Unpack(far.trace_id), far);
  EXPECT_LT(packed_far.size(), packed.size() + 40);  // stored once
}

TEST(PackedSpan, ATraceUnpacksAgainAfterRelease) {
  Trace trace("4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(trace.AddSpan(Full()));
  EXPECT_EQ(trace.spans().at(0), Full());
  ASSERT_TRUE(trace.summary().model);
  EXPECT_EQ(*trace.summary().model, "gpt-4o");
  trace.Release();
  ASSERT_TRUE(trace.summary().model);
  EXPECT_EQ(*trace.summary().model, "gpt-4o");
  EXPECT_EQ(trace.spans().at(0), Full());
  EXPECT_FALSE(trace.AddSpan(Full()));  // the same span id again
  EXPECT_EQ(trace.spans().size(), 1u);
}

TEST(PackedSpan, SpanIdsOfHexDigitsAreHeldAsEightBytesAndComeBackAsTheyCame) {
  Span span;
  span.trace_id = "t";
  span.span_id = "00f067aa0ba902b7";
  span.parent_span_id = "ffffffffffffffff";
  const PackedSpan packed(span);
  EXPECT_EQ(packed.Unpack("t"), span);
  const PackedSpan::Fields f = packed.Peek();
  EXPECT_EQ(f.span_id(), "00f067aa0ba902b7");
  EXPECT_EQ(f.parent_span_id(), "ffffffffffffffff");
  EXPECT_FALSE(f.root);
  // A copy's views are its own.
  const PackedSpan::Fields copy = f;
  EXPECT_EQ(copy.span_id(), "00f067aa0ba902b7");
  EXPECT_EQ(copy.parent_span_id(), "ffffffffffffffff");
  // Both ids in 8 bytes each: two 16-digit ids written out would take 34.
  Span plain;
  plain.trace_id = "t";
  EXPECT_LE(packed.size(), PackedSpan(plain).size() + 2 * 8);

  // Anything else is held as its text, exactly: uppercase, other lengths, a stray byte, and the
  // empty parent of a root.
  for (const std::string& id : std::vector<std::string>{
           "00F067AA0BA902B7", "00f067aa0ba902b", "00f067aa0ba902b70", "00f067aa0ba902g7", "0a0b",
           "", std::string(16, '\0'), "0000000000000000"}) {
    Span s = span;
    s.span_id = id;
    s.parent_span_id = id;
    const PackedSpan p(s);
    EXPECT_EQ(p.Unpack("t"), s) << id;
    EXPECT_EQ(p.Peek().span_id(), id);
    EXPECT_EQ(p.Peek().parent_span_id(), id);
    EXPECT_EQ(p.Peek().root, id.empty());
    EXPECT_EQ(p.start_ns(), std::nullopt);
  }
  span.start_ns = 42;
  EXPECT_EQ(PackedSpan(span).start_ns(), 42);
}

Span WithKey(const std::string& key, AttrValue value) {
  Span s;
  s.trace_id = "t";
  s.span_id = "s";
  s.attributes = {{key, std::move(value)}};
  return s;
}

// The value of `key` as Peek's attributes find it, and the keys Visit walks.
struct Keys : PackedSpan::Attrs::Visitor {
  std::vector<std::string> keys;
  void Key(std::string_view key) override { keys.emplace_back(key); }
  void Null() override {}
  void Bool(bool) override {}
  void Number(double) override {}
  void String(std::string_view) override {}
  void StartArray() override {}
  void EndArray() override {}
};
std::vector<std::string> KeysOf(const PackedSpan& packed) {
  Keys keys;
  packed.Peek().attributes().Visit(keys);
  return keys.keys;
}

TEST(PackedSpan, AKeyIsHeldOnceNotInEverySpan) {
  const std::string key(PackedSpan::kTableKeyLength, 'k');  // the longest the table keeps
  const Span span = WithKey(key, AttrValue::String("v"));
  const PackedSpan first(span), second(span);
  EXPECT_LT(first.size(), key.size());
  EXPECT_EQ(second.size(), first.size());
  EXPECT_EQ(second.Unpack("t"), span);
  EXPECT_EQ(KeysOf(second), std::vector<std::string>{key});
  AttrValue found;
  ASSERT_TRUE(second.Peek().attributes().Find(key, found));
  EXPECT_EQ(found, AttrValue::String("v"));
  EXPECT_FALSE(second.Peek().attributes().Find(key + "k", found));

  // One byte longer, a key is held in the span; it reads back the same.
  const Span longer = WithKey(key + "k", AttrValue::Number(2));
  const PackedSpan held(longer);
  EXPECT_GT(held.size(), key.size() + 1);
  EXPECT_EQ(held.Unpack("t"), longer);
  ASSERT_TRUE(held.Peek().attributes().Find(key + "k", found));
  EXPECT_EQ(found, AttrValue::Number(2));
  EXPECT_FALSE(held.Peek().attributes().Find(key, found));

  // Short keys (below 8 bytes), the empty key, and keys in the resource.
  Span mixed = Full();
  mixed.attributes.push_back({"", AttrValue::Bool(true)});
  mixed.attributes.push_back({"k", AttrValue::Null()});
  mixed.resource.push_back({"k", AttrValue::Number(7)});
  EXPECT_EQ(PackedSpan(mixed).Unpack(mixed.trace_id), mixed);
  EXPECT_EQ(PackedSpan(mixed).Unpack(mixed.trace_id), mixed);
}

TEST(PackedSpan, KeysPackedOnOtherThreadsReadBackHere) {
  // Two threads meet the same new keys at once, in opposite orders.
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back("threads.key." + std::to_string(i));
  std::vector<PackedSpan> packed[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const int k = t == 0 ? i : 199 - i;
        packed[t].emplace_back(WithKey(keys[k], AttrValue::Number(k)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 2; ++t) {
    ASSERT_EQ(packed[t].size(), 200u);
    for (int i = 0; i < 200; ++i) {
      const int k = t == 0 ? i : 199 - i;
      EXPECT_EQ(packed[t][i].Unpack("t"), WithKey(keys[k], AttrValue::Number(k)));
      EXPECT_EQ(packed[t][i].size(), packed[1 - t][199 - i].size());
    }
  }
}

// The table is the process's: this test fills it in a child process of its own.
TEST(PackedSpanDeathTest, KeysPastAFullTableAreHeldInTheSpan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto fill = [] {
    auto fail = [](const char* what, uint32_t i) {
      std::fprintf(stderr, "FAILED: %s at key %u\n", what, i);
      std::exit(1);
    };
    const std::string pad(40, 'p');
    std::vector<PackedSpan> kept;
    int64_t first_held = -1;
    for (uint32_t i = 0; i <= PackedSpan::kTableKeys; ++i) {
      const Span span = WithKey(pad + std::to_string(i), AttrValue::Number(i));
      PackedSpan packed(span);
      if (!(packed.Unpack("t") == span)) fail("round trip", i);
      if (packed.size() > pad.size()) {
        first_held = static_cast<int64_t>(i);
        break;
      }
      if (i == 0) kept.push_back(std::move(packed));
    }
    // Some key within kTableKeys + 1 new ones found the table full (this process's earlier
    // keys count too).
    if (first_held <= 0) fail("no key was numbered, or none was held in its span", 0);
    // From then on new keys are held in their spans, and the table's keys still read back.
    for (uint32_t i = static_cast<uint32_t>(first_held); i < first_held + 100; ++i) {
      const Span span = WithKey(pad + std::to_string(i), AttrValue::Number(i));
      const PackedSpan packed(span);
      if (packed.size() <= pad.size()) fail("a key was numbered past the full table", i);
      if (!(packed.Unpack("t") == span)) fail("round trip past the full table", i);
      AttrValue found;
      if (!packed.Peek().attributes().Find(span.attributes[0].first, found)) fail("find", i);
    }
    const Span zero = WithKey(pad + "0", AttrValue::Number(0));
    if (!(kept.at(0).Unpack("t") == zero)) fail("the first key after the table filled", 0);
    if (PackedSpan(zero).size() >= pad.size()) fail("a key of the table is held again", 0);
    std::exit(0);
  };
  EXPECT_EXIT(fill(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace triaged
