// The rule language of DESIGN §2.1-§2.2: every operator, every field, the missing-value rules,
// and compile errors with their exact offsets.
#include <gtest/gtest.h>
#include <pthread.h>

#include <functional>

#include "rules/expr.h"
#include "rules/ruleset.h"
#include "tests/param_name.h"

namespace triaged {
namespace {

Span MakeSpan(std::string id, std::string parent, int64_t start_ms, int64_t end_ms) {
  Span s;
  s.trace_id = "abc123";
  s.span_id = std::move(id);
  s.parent_span_id = std::move(parent);
  s.start_ns = start_ms * 1'000'000;
  s.end_ns = end_ms * 1'000'000;
  s.status = SpanStatus::kOk;
  return s;
}

Annotation MakeAnnotation(std::string name, std::optional<double> score,
                          std::optional<std::string> label, std::string source, int64_t ts) {
  Annotation a;
  a.trace_id = "abc123";
  a.name = std::move(name);
  a.score = score;
  a.label = std::move(label);
  a.source = std::move(source);
  a.timestamp_ns = ts;
  return a;
}

// A trace with a root chat span, an LLM span, a failing tool span and some feedback.
Trace RichTrace() {
  Trace t("abc123");
  Span root = MakeSpan("r", "", 0, 6200);
  root.name = "chat";
  root.kind = "CHAIN";
  root.input = "How do I rotate my API key?";
  root.output = "As an AI, I cannot do that.";
  root.session_id = "sess-1";
  root.user_id = "u-1";
  root.prompt_version = "v12";
  root.attributes = {{"env", AttrValue::String("prod")},
                     {"tier", AttrValue::Number(3)},
                     {"beta", AttrValue::Bool(true)},
                     {"tags", AttrValue::Array({AttrValue::String("vip"), AttrValue::Number(7)})},
                     {"nothing", AttrValue::Null()},
                     {"llm.invocation_parameters.temperature", AttrValue::Number(0.2)}};
  root.resource = {{"service.name", AttrValue::String("support-bot")}};
  Span llm = MakeSpan("l", "r", 100, 2100);
  llm.name = "ChatOpenAI";
  llm.kind = "LLM";
  llm.model = "gpt-4o";
  llm.input_tokens = 1000;
  llm.output_tokens = 200;
  llm.attributes = {{"temperature", AttrValue::Number(0.2)}};
  Span tool = MakeSpan("t", "r", 2200, 6000);
  tool.name = "cancel_order";
  tool.kind = "TOOL";
  tool.status = SpanStatus::kError;
  tool.retry_count = 2;
  t.AddSpan(root);
  t.AddSpan(llm);
  t.AddSpan(tool);
  t.AddAnnotation(MakeAnnotation("thumbs", 0, "down", "end_user", 100));
  t.AddAnnotation(MakeAnnotation("faithfulness", 0.9, std::nullopt, "llm_judge", 100));
  t.AddAnnotation(MakeAnnotation("faithfulness", 0.3, "unfaithful", "llm_judge", 200));
  t.AddAnnotation(MakeAnnotation("tone-check", 0.75, "ok", "code", 50));
  return t;
}

// A trace that never got a span and has no feedback.
Trace EmptyTrace() { return Trace("empty"); }

bool Eval(const std::string& text, const Trace& trace) {
  auto r = CompileExpression(text);
  EXPECT_TRUE(r.ok()) << text.substr(0, 200) << ": " << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return false;
  return (*r)->Matches(trace);
}

ExprError CompileError(const std::string& text, ExprKind kind = ExprKind::kBoolean) {
  auto r = CompileExpression(text, kind);
  EXPECT_FALSE(r.ok()) << text.substr(0, 200) << (text.size() > 200 ? "..." : "") << " compiled";
  return r.ok() ? ExprError{} : r.error();
}

TEST(ExprFields, TraceFields) {
  const Trace t = RichTrace();
  EXPECT_TRUE(Eval(R"(trace.id == "abc123")", t));
  EXPECT_TRUE(Eval(R"(trace.name == "chat")", t));
  EXPECT_TRUE(Eval(R"(trace.status == "error")", t));
  EXPECT_TRUE(Eval("trace.error", t));
  EXPECT_TRUE(Eval("trace.error == true", t));
  EXPECT_TRUE(Eval("trace.error_count == 1", t));
  EXPECT_TRUE(Eval("trace.span_count == 3", t));
  EXPECT_TRUE(Eval("trace.duration_ms == 6200", t));
  EXPECT_TRUE(Eval(R"(trace.model == "gpt-4o")", t));
  EXPECT_TRUE(Eval("trace.input_tokens == 1000", t));
  EXPECT_TRUE(Eval("trace.output_tokens == 200", t));
  EXPECT_TRUE(Eval("trace.total_tokens == 1200", t));
  EXPECT_TRUE(Eval("trace.retry_count == 2", t));
  EXPECT_TRUE(Eval(R"(trace.session_id == "sess-1")", t));
  EXPECT_TRUE(Eval(R"(trace.user_id == "u-1")", t));
  EXPECT_TRUE(Eval(R"(trace.prompt_version == "v12")", t));
  EXPECT_TRUE(Eval(R"(trace.input contains "API key")", t));
  EXPECT_TRUE(Eval(R"(trace.output contains "As an AI")", t));
  EXPECT_TRUE(Eval(R"(trace.attributes["env"] == "prod")", t));
  EXPECT_TRUE(Eval("trace.attributes.tier == 3", t));
  EXPECT_TRUE(Eval("trace.attributes.llm.invocation_parameters.temperature < 0.5", t));
  EXPECT_TRUE(Eval(R"(trace.resource["service.name"] == "support-bot")", t));
}

TEST(ExprFields, OkTraceStatus) {
  Trace t("ok");
  t.AddSpan(MakeSpan("r", "", 0, 10));
  EXPECT_TRUE(Eval(R"(trace.status == "ok")", t));
  EXPECT_TRUE(Eval("not trace.error", t));
  EXPECT_TRUE(Eval("trace.retry_count == 0", t));
}

TEST(ExprFields, FeedbackUsesTheLatestAnnotationOfAName) {
  const Trace t = RichTrace();
  EXPECT_TRUE(Eval(R"(feedback.thumbs.label == "down")", t));
  EXPECT_TRUE(Eval("feedback.thumbs.score == 0", t));
  EXPECT_TRUE(Eval(R"(feedback.thumbs.source == "end_user")", t));
  EXPECT_TRUE(Eval("feedback.faithfulness.score == 0.3", t));  // timestamp 200 beats 100
  EXPECT_TRUE(Eval("feedback.faithfulness.count == 2", t));
  EXPECT_TRUE(Eval(R"(feedback["tone-check"].score == 0.75)", t));
  EXPECT_TRUE(Eval("feedback.count == 4", t));
  EXPECT_TRUE(Eval("feedback.min_score == 0", t));
  EXPECT_TRUE(Eval("feedback.max_score == 0.9", t));
  EXPECT_TRUE(Eval("feedback.nothing.count == 0", t));
  EXPECT_FALSE(Eval("exists(feedback.faithfulness.explanation)", t));
}

TEST(ExprFields, SpanQuantifiers) {
  const Trace t = RichTrace();
  EXPECT_TRUE(Eval(R"(any_span(span.kind == "TOOL" and span.status == "error"))", t));
  EXPECT_FALSE(Eval(R"(any_span(span.kind == "RETRIEVER"))", t));
  EXPECT_TRUE(Eval("count_spans(span.duration_ms > 1000) == 3", t));
  EXPECT_TRUE(Eval(R"(count_spans(span.status == "ok") == 2)", t));
  EXPECT_TRUE(
      Eval(R"(any_span(span.name == "ChatOpenAI" and span.attributes["temperature"] < 0.5))", t));
  EXPECT_TRUE(Eval(R"(any_span(span.model == "gpt-4o"))", t));
  EXPECT_FALSE(Eval("any_span(true)", EmptyTrace()));
  EXPECT_TRUE(Eval("count_spans(true) == 0", EmptyTrace()));
}

TEST(ExprOperators, Comparisons) {
  const Trace t = RichTrace();
  EXPECT_TRUE(Eval("trace.duration_ms > 5000", t));
  EXPECT_FALSE(Eval("trace.duration_ms < 5000", t));
  EXPECT_TRUE(Eval("trace.duration_ms >= 6200", t));
  EXPECT_TRUE(Eval("trace.duration_ms <= 6200", t));
  EXPECT_FALSE(Eval("trace.duration_ms > 6200", t));
  EXPECT_TRUE(Eval("trace.duration_ms != 1", t));
  EXPECT_TRUE(Eval(R"(trace.model < "gpt-5")", t));  // strings compare by bytes
  EXPECT_TRUE(Eval(R"(trace.model >= "gpt-4o")", t));
  EXPECT_TRUE(Eval("-1.5e3 < 0", t));
  EXPECT_TRUE(Eval(".5 == 0.5", t));
}

TEST(ExprOperators, InContainsMatches) {
  const Trace t = RichTrace();
  EXPECT_TRUE(Eval(R"(trace.model in ["gpt-4o", "gpt-4o-mini"])", t));
  EXPECT_FALSE(Eval(R"(trace.model in ["claude"])", t));
  EXPECT_TRUE(Eval("trace.span_count in [1, 2, 3]", t));
  EXPECT_TRUE(Eval(R"("rotate" in trace.input)", t));
  EXPECT_TRUE(Eval(R"(trace.attributes["tags"] contains "vip")", t));
  EXPECT_TRUE(Eval(R"(trace.attributes["tags"] contains 7)", t));
  EXPECT_FALSE(Eval(R"(trace.attributes["tags"] contains "gold")", t));
  EXPECT_TRUE(Eval(R"("vip" in trace.attributes["tags"])", t));
  EXPECT_TRUE(Eval(R"(trace.output matches "(?i)as an ai")", t));
  EXPECT_FALSE(Eval(R"(trace.output matches "^I can")", t));
  EXPECT_TRUE(Eval(R"(trace.name matches 'ch.t')", t));  // single quotes too
}

TEST(ExprOperators, LogicAndPrecedence) {
  const Trace t = RichTrace();
  EXPECT_TRUE(Eval("true or false and false", t));  // and binds tighter
  EXPECT_FALSE(Eval("(true or false) and false", t));
  EXPECT_TRUE(Eval("not false and true", t));  // not binds tighter than and
  EXPECT_FALSE(Eval("not (false or true)", t));
  EXPECT_TRUE(Eval("not not true", t));
  EXPECT_TRUE(Eval("trace.error and trace.retry_count > 0 or trace.span_count == 0", t));
}

TEST(ExprOperators, NullAndExists) {
  const Trace t = RichTrace();
  EXPECT_TRUE(Eval(R"(trace.attributes["nothing"] == null)", t));
  EXPECT_TRUE(Eval(R"(exists(trace.attributes["nothing"]))", t));  // null is a value
  EXPECT_FALSE(Eval(R"(exists(trace.attributes["absent"]))", t));
  EXPECT_FALSE(Eval(R"(trace.attributes["absent"] == null)", t));  // missing is not null
  EXPECT_TRUE(Eval("exists(trace.model)", t));
  EXPECT_TRUE(Eval(R"(trace.attributes["beta"])", t));  // an any-typed boolean
  EXPECT_FALSE(Eval(R"(trace.attributes["env"])", t));  // a string is not true
}

// DESIGN §2.2: a comparison with a missing value is false, `!=` included.
TEST(ExprMissing, EveryComparisonWithAMissingValueIsFalse) {
  const Trace e = EmptyTrace();
  for (const char* text : {"feedback.thumbs.score < 0.5",
                           "feedback.thumbs.score <= 0.5",
                           "feedback.thumbs.score > 0.5",
                           "feedback.thumbs.score >= 0.5",
                           "feedback.thumbs.score == 0",
                           "feedback.thumbs.score != 1",
                           R"(feedback.thumbs.label != "down")",
                           R"(trace.model == "gpt-4o")",
                           R"(trace.model != "gpt-4o")",
                           "trace.duration_ms > 0",
                           "trace.duration_ms != 0",
                           R"(trace.name in ["chat"])",
                           R"(trace.input contains "x")",
                           R"(trace.output matches ".*")",
                           R"("x" in trace.input)",
                           R"(trace.attributes["k"] == "v")",
                           R"(trace.attributes["k"] != "v")",
                           "feedback.min_score < 1",
                           "feedback.max_score >= 0",
                           "trace.input_tokens > 0",
                           R"(trace.session_id == trace.user_id)",
                           R"(trace.resource["service.name"] != "x")",
                           R"(trace.attributes["k"])"}) {
    EXPECT_FALSE(Eval(text, e)) << text;
  }
  EXPECT_TRUE(Eval("not (feedback.thumbs.score < 0.5)", e));  // plain boolean not
  EXPECT_TRUE(Eval("feedback.count == 0 and feedback.thumbs.count == 0", e));
  EXPECT_TRUE(Eval("trace.span_count == 0 and not trace.error", e));
}

TEST(ExprMissing, RuntimeTypeMismatchIsFalse) {
  const Trace t = RichTrace();
  EXPECT_FALSE(Eval(R"(trace.attributes["env"] > 3)", t));
  EXPECT_FALSE(Eval(R"(trace.attributes["tier"] == "3")", t));
  EXPECT_TRUE(Eval(R"(trace.attributes["tier"] != "3")", t));  // both present, different
  EXPECT_FALSE(Eval(R"(trace.attributes["tier"] matches "3")", t));
  EXPECT_FALSE(Eval(R"(trace.attributes["tier"] contains "3")", t));
}

TEST(ExprEvaluate, ReturnsValues) {
  const Trace t = RichTrace();
  auto value = [&](const char* text) {
    auto r = CompileExpression(text, ExprKind::kAny);
    EXPECT_TRUE(r.ok()) << text;
    return r.ok() ? FormatExprValue((*r)->Evaluate(t)) : "";
  };
  EXPECT_EQ(value("trace.session_id"), "\"sess-1\"");
  EXPECT_EQ(value("trace.duration_ms"), "6200");
  EXPECT_EQ(value("feedback.faithfulness.score"), "0.3");
  EXPECT_EQ(value("trace.attributes.tags"), "[\"vip\", 7]");
  EXPECT_EQ(value("trace.attributes.nothing"), "null");
  EXPECT_EQ(value("trace.attributes.absent"), "<missing>");
  EXPECT_EQ(value("trace.error"), "true");
  EXPECT_EQ(value("count_spans(true)"), "3");
  EXPECT_EQ(value(R"("a\"b\\c\n")"), R"("a\"b\\c\n")");
}

TEST(ExprEvaluate, TypeNames) {
  EXPECT_EQ(CompileExpression("trace.error").value()->type_name(), "bool");
  EXPECT_EQ(CompileExpression("trace.model", ExprKind::kAny).value()->type_name(), "string");
  EXPECT_EQ(CompileExpression("trace.span_count", ExprKind::kAny).value()->type_name(), "number");
  EXPECT_EQ(CompileExpression("trace.attributes.x").value()->type_name(), "any");
  EXPECT_EQ(CompileExpression("[1]", ExprKind::kAny).value()->type_name(), "list");
}

TEST(ExprExplain, RecordsEachEvaluatedLeafWithItsValues) {
  const Trace t = RichTrace();
  auto r = CompileExpression(
      R"(feedback.thumbs.label == "down" and (trace.duration_ms > 9000 or trace.model == "gpt-4o"))");
  ASSERT_TRUE(r.ok());
  std::vector<ExplainStep> steps;
  EXPECT_TRUE((*r)->Explain(t, steps));
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].text, R"(feedback.thumbs.label == "down")");
  EXPECT_EQ(steps[0].detail, R"(feedback.thumbs.label = "down")");
  EXPECT_TRUE(steps[0].result);
  EXPECT_EQ(steps[1].detail, "trace.duration_ms = 6200");
  EXPECT_FALSE(steps[1].result);
  EXPECT_TRUE(steps[2].result);
  // Short circuit: a false left side of `and` is the only step.
  steps.clear();
  EXPECT_FALSE(
      CompileExpression("trace.span_count > 5 and trace.error").value()->Explain(t, steps));
  EXPECT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].detail, "trace.span_count = 3");
}

TEST(ExprExplain, AgreesWithMatches) {
  const Trace t = RichTrace();
  for (const char* text : {"trace.error and not trace.error", "feedback.thumbs.score < 0.5",
                           R"(any_span(span.kind == "TOOL"))", "exists(trace.user_id)",
                           "feedback.nothing.score != 1 or trace.span_count == 3"}) {
    auto compiled = CompileExpression(text);
    ASSERT_TRUE(compiled.ok()) << text;
    const auto& expr = *compiled;
    std::vector<ExplainStep> steps;
    EXPECT_EQ(expr->Explain(t, steps), expr->Matches(t)) << text;
    EXPECT_FALSE(steps.empty()) << text;
  }
}

TEST(ExprCompile, DeepNestingIsAnErrorNotACrash) {
  EXPECT_TRUE(CompileExpression(std::string(150, '(') + "true" + std::string(150, ')')).ok());
  const ExprError parens = CompileError(std::string(10000, '(') + "true" + std::string(10000, ')'));
  EXPECT_NE(parens.message.find("nested too deeply"), std::string::npos) << parens.message;
  std::string nots;
  for (int i = 0; i < 10000; ++i) nots += "not ";
  const ExprError n = CompileError(nots + "true");
  EXPECT_NE(n.message.find("nested too deeply"), std::string::npos) << n.message;
  // Past the token limit, the length is what is reported.
  const ExprError longer =
      CompileError(std::string(100000, '(') + "true" + std::string(100000, ')'));
  EXPECT_NE(longer.message.find("expression too long"), std::string::npos) << longer.message;
}

// `n` terms joined by `op`; term(i) gives the i-th.
template <typename F>
std::string Chain(size_t n, const char* op, F term) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += op;
    out += term(i);
  }
  return out;
}

TEST(ExprLimits, LongFlatChainsCompileEvaluateAndExplain) {
  const Trace t = RichTrace();  // 3 spans
  auto other = [](size_t i) { return "trace.span_count == " + std::to_string(i + 10); };
  auto three_last = [&](size_t i) {
    return i == 4999 ? std::string("trace.span_count == 3") : other(i);
  };
  EXPECT_FALSE(Eval(Chain(5000, " or ", other), t));
  EXPECT_TRUE(Eval(Chain(5000, " or ", three_last), t));
  auto positive = [](size_t i) { return "trace.span_count > -" + std::to_string(i); };
  auto last_false = [&](size_t i) {
    return i == 4999 ? std::string("trace.span_count > 3") : positive(i);
  };
  EXPECT_TRUE(Eval(Chain(5000, " and ", positive), t));
  EXPECT_FALSE(Eval(Chain(5000, " and ", last_false), t));
  // Mixed: `a and b or c and d or ...`, true only through its last pair.
  auto pair = [&](size_t i) { return other(i) + " and trace.error"; };
  EXPECT_FALSE(Eval(Chain(2500, " or ", pair), t));
  EXPECT_TRUE(Eval(Chain(2500, " or ", pair) + " or trace.error and trace.span_count == 3", t));

  // Explain walks the flat chain, one step per evaluated term, and stops where the value is known.
  auto compiled = CompileExpression(Chain(5000, " or ", three_last));
  ASSERT_TRUE(compiled.ok());
  std::vector<ExplainStep> steps;
  EXPECT_TRUE((*compiled)->Explain(t, steps));
  ASSERT_EQ(steps.size(), 5000u);
  EXPECT_EQ(steps[0].text, "trace.span_count == 10");
  EXPECT_FALSE(steps[0].result);
  EXPECT_EQ(steps[4999].text, "trace.span_count == 3");
  EXPECT_TRUE(steps[4999].result);
  steps.clear();
  EXPECT_FALSE(CompileExpression(Chain(5000, " and ", last_false)).value()->Explain(t, steps));
  EXPECT_EQ(steps.size(), 5000u);
  steps.clear();
  EXPECT_TRUE(CompileExpression(Chain(5000, " or ", positive)).value()->Explain(t, steps));
  EXPECT_EQ(steps.size(), 1u);
}

// Runs `fn` on a thread with a 512 KiB stack, which a recursion as deep as a long chain overflows.
void OnSmallStack(const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t{512} << 10);
  auto run = [](void* arg) -> void* {
    (*static_cast<const std::function<void()>*>(arg))();
    return nullptr;
  };
  pthread_t thread;
  const int created = pthread_create(&thread, &attr, run, const_cast<std::function<void()>*>(&fn));
  pthread_attr_destroy(&attr);
  ASSERT_EQ(created, 0);
  pthread_join(thread, nullptr);
}

TEST(ExprLimits, ChainsJustUnderTheTokenLimitAreFlat) {
  // 45,000 terms, 89,999 tokens: compiled, evaluated, explained and freed without a recursion
  // as deep as the chain is long.
  OnSmallStack([] {
    const std::string text =
        Chain(45000, " or ", [](size_t i) { return i == 44999 ? "true" : "false"; });
    auto compiled = CompileExpression(text);
    ASSERT_TRUE(compiled.ok());
    EXPECT_TRUE((*compiled)->Matches(EmptyTrace()));
    std::vector<ExplainStep> steps;
    EXPECT_TRUE((*compiled)->Explain(EmptyTrace(), steps));
    EXPECT_EQ(steps.size(), 45000u);
    auto nots = CompileExpression(Chain(30000, " and ", [](size_t) { return "not false"; }));
    ASSERT_TRUE(nots.ok());
    EXPECT_TRUE((*nots)->Matches(EmptyTrace()));
  });
}

TEST(ExprLimits, TooManyTokensIsAnErrorAtTheFirstTokenPastTheLimit) {
  // 100,000 `trace.error` terms: 4 tokens a term with its `or`.
  const std::string text = Chain(100000, " or ", [](size_t) { return "trace.error"; });
  const ExprError e = CompileError(text);
  EXPECT_EQ(e.message, "expression too long (more than " + std::to_string(kMaxExpressionTokens) +
                           " tokens); split it into several rules");
  // Token kMaxExpressionTokens (0-based) is the `trace` of term kMaxExpressionTokens / 4.
  EXPECT_EQ(e.offset, kMaxExpressionTokens / 4 * std::string("trace.error or ").size());
  // A million terms: refused as fast, without holding a million tokens.
  const ExprError big = CompileError(Chain(1000000, " or ", [](size_t) { return "true"; }));
  EXPECT_NE(big.message.find("expression too long"), std::string::npos) << big.message;
  // A long list of literals counts its tokens too.
  const ExprError list = CompileError(
      "trace.user_id in [" + Chain(60000, ", ", [](size_t i) { return std::to_string(i); }) + "]");
  EXPECT_NE(list.message.find("expression too long"), std::string::npos) << list.message;
}

TEST(ExprCompile, SampleKeyMustBeAString) {
  EXPECT_TRUE(CompileExpression("trace.session_id", ExprKind::kString).ok());
  EXPECT_TRUE(CompileExpression("trace.attributes.tenant", ExprKind::kString).ok());
  const ExprError e = CompileError("trace.span_count", ExprKind::kString);
  EXPECT_EQ(e.offset, 0u);
  EXPECT_NE(e.message.find("string"), std::string::npos) << e.message;
}

struct ErrorCase {
  const char* text;
  size_t offset;
  const char* message;  // a substring
};

class ExprCompileError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ExprCompileError, PointsAtTheFault) {
  const ErrorCase& c = GetParam();
  const ExprError e = CompileError(c.text);
  EXPECT_EQ(e.offset, c.offset) << c.text << ": " << e.message;
  EXPECT_NE(e.message.find(c.message), std::string::npos) << c.text << ": " << e.message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ExprCompileError,
    ::testing::Values(
        ErrorCase{"trace.duraton_ms > 5000", 0, "did you mean \"trace.duration_ms\"?"},
        ErrorCase{"trace.error and trace.modle == \"x\"", 16, "unknown field \"trace.modle\""},
        ErrorCase{"tracee.error", 0, "unknown field"},
        ErrorCase{"trace.duration_ms == \"slow\"", 21, "cannot compare number with string"},
        ErrorCase{"trace.model > 3", 14, "cannot compare string with number"},
        ErrorCase{"trace.error and 5", 16, "needs a boolean"},
        ErrorCase{"not trace.model", 4, "needs a boolean"},
        ErrorCase{"trace.duration_ms", 0, "must be a boolean"},
        ErrorCase{"trace.error < true", 0, "needs numbers or strings"},
        ErrorCase{"trace.duration_ms >", 19, "expected a value, got end of expression"},
        ErrorCase{"(trace.error", 12, "expected ')'"},
        ErrorCase{"trace.error trace.error", 12, "unexpected 'trace'"},
        ErrorCase{"trace.error && trace.error", 12, "use 'and' instead of '&&'"},
        ErrorCase{"trace.error || true", 12, "use 'or' instead of '||'"},
        ErrorCase{"!trace.error", 0, "use 'not'"}, ErrorCase{"trace.model = \"x\"", 12, "use '=='"},
        ErrorCase{"trace.model == \"x", 15, "unterminated string"},
        ErrorCase{"trace.model == \"\\q\"", 16, "unknown escape"},
        ErrorCase{"trace.output matches \"(unclosed\"", 21, "invalid regular expression"},
        ErrorCase{"trace.output matches trace.input", 21, "string literal"},
        ErrorCase{"trace.span_count matches \"1\"", 0, "needs a string"},
        ErrorCase{"span.kind == \"TOOL\"", 0, "only be used inside any_span"},
        ErrorCase{"any_span(any_span(true))", 9, "cannot be nested"},
        ErrorCase{"any_span(span.kind)", 9, "needs a boolean"},
        ErrorCase{"any_span(span.knd == \"x\")", 9, "did you mean \"span.kind\"?"},
        ErrorCase{"sum(trace.error)", 0, "unknown function"},
        ErrorCase{"feedback.thumbs.lable == \"down\"", 16, "unknown feedback field \"lable\""},
        ErrorCase{"feedback.thumbs == \"down\"", 9, "needs a field"},
        ErrorCase{"trace.attributes == 1", 17, "needs a key"},
        ErrorCase{"trace.model in [trace.name]", 16, "list elements must be literals"},
        ErrorCase{"trace.model in 3", 15, "needs a list or a string"},
        ErrorCase{"trace.span_count contains 1", 0, "needs a string or a list"},
        ErrorCase{"trace.attributes.x == [1]", 0, "lists cannot be compared"},
        ErrorCase{"1abc == 1", 1, "after a number"},
        ErrorCase{"trace.model == #", 15, "unexpected character '#'"},
        ErrorCase{"   ", 0, "empty expression"}),
    // The index keeps apart texts that differ only in punctuation ("&&" and " ").
    [](const ::testing::TestParamInfo<ErrorCase>& p) {
      return std::to_string(p.index) + "_" + testing::ParamName(p.param.text);
    });

// ---------------------------------------------------------------------------------------------
// feedback.NAME.expected_output / metadata, session.* (DESIGN §2.1)

TEST(ExprFields, FeedbackExpectedOutputAndMetadata) {
  Trace t = RichTrace();
  Annotation review = MakeAnnotation("review", std::nullopt, "wrong", "human", 300);
  review.expected_output = "Rotate it under Settings > Keys.";
  review.metadata_json =
      R"({"queue":"support","priority":2,"urgent":true,"nothing":null,"tags":["a",3,["b"]],)"
      R"("annotator":{"team":"eu","id":7},"a.b":"flat","mixed":[{"x":1}],"esc":"q\"t\u00e9"})";
  t.AddAnnotation(review);
  EXPECT_TRUE(Eval(R"(feedback.review.expected_output contains "Settings")", t));
  EXPECT_FALSE(Eval("exists(feedback.thumbs.expected_output)", t));
  EXPECT_TRUE(Eval(R"(feedback.review.metadata["queue"] == "support")", t));
  EXPECT_TRUE(Eval("feedback.review.metadata.priority == 2", t));
  EXPECT_TRUE(Eval("feedback.review.metadata.urgent", t));
  EXPECT_TRUE(Eval("feedback.review.metadata.nothing == null", t));
  EXPECT_TRUE(Eval(R"(feedback.review.metadata.tags contains "a")", t));
  EXPECT_TRUE(Eval("feedback.review.metadata.tags contains 3", t));
  // Nested objects are reached by dotted keys; an exact key with a dot comes first.
  EXPECT_TRUE(Eval(R"(feedback.review.metadata.annotator.team == "eu")", t));
  EXPECT_TRUE(Eval(R"(feedback.review.metadata["annotator.id"] == 7)", t));
  EXPECT_TRUE(Eval(R"(feedback.review.metadata["a.b"] == "flat")", t));
  EXPECT_TRUE(Eval(R"(feedback.review.metadata.esc == "q\"t)"
                   "\xc3\xa9"
                   R"(")",
                   t));
  // An object, an array holding one, a key that is not there: missing.
  EXPECT_FALSE(Eval("exists(feedback.review.metadata.annotator)", t));
  EXPECT_FALSE(Eval("exists(feedback.review.metadata.mixed)", t));
  EXPECT_FALSE(Eval("exists(feedback.review.metadata.absent)", t));
  EXPECT_FALSE(Eval("exists(feedback.thumbs.metadata.queue)", t));  // "{}"
  EXPECT_FALSE(Eval("exists(feedback.nothing.metadata.queue)", t));
  EXPECT_TRUE(Eval(R"(feedback["review"].metadata["queue"] in ["support", "sales"])", t));
  // Values live as long as an evaluation needs them: both sides from metadata.
  EXPECT_FALSE(Eval("feedback.review.metadata.queue == feedback.review.metadata.esc", t));
  auto value = [&](const std::string& text) {
    auto r = CompileExpression(text, ExprKind::kAny);
    EXPECT_TRUE(r.ok()) << text;
    return r.ok() ? FormatExprValue((*r)->Evaluate(t)) : "";
  };
  EXPECT_EQ(value("feedback.review.metadata.tags"), R"(["a", 3, ["b"]])");
  EXPECT_EQ(value("feedback.review.metadata.queue"), R"("support")");
  std::vector<ExplainStep> steps;
  auto r = CompileExpression(R"(feedback.review.metadata.queue == "sales")");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)->Explain(t, steps));
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].detail, R"(feedback.review.metadata.queue = "support")");
}

TEST(ExprFields, SessionFeedbackAndTraceCount) {
  const Trace t = RichTrace();
  Annotation early;
  early.session_id = "sess-1";
  early.name = "resolved";
  early.label = "no";
  early.score = 0;
  early.source = "human";
  early.explanation = "asked three times";
  early.timestamp_ns = 100;
  Annotation late = early;
  late.label = "yes";
  late.score = 1;
  late.expected_output = "escalate";
  late.metadata_json = R"({"queue":"csat"})";
  late.timestamp_ns = 200;
  Annotation dashed = early;
  dashed.name = "csat-score";
  dashed.score = 4;
  SessionView view;
  view.annotations = {&late, &early, &dashed};
  view.trace_count = 3;

  const char* const session_paths[] = {
      "session.trace_count == 3",
      R"(session.feedback.resolved.label == "yes")",  // the latest by timestamp
      "session.feedback.resolved.score == 1",
      R"(session.feedback.resolved.source == "human")",
      R"(session.feedback.resolved.explanation == "asked three times")",
      R"(session.feedback.resolved.expected_output == "escalate")",
      R"(session.feedback.resolved.metadata["queue"] == "csat")",
      "session.feedback.resolved.count == 2",
      R"(session.feedback["csat-score"].score == 4)",
      "session.feedback.nothing.count == 0",
  };
  // Without a session (the engine set none) every session path is missing.
  for (const char* text : session_paths) EXPECT_FALSE(Eval(text, t)) << text;
  EXPECT_FALSE(Eval("exists(session.trace_count)", t));
  EXPECT_FALSE(Eval("exists(session.feedback.resolved.count)", t));
  t.set_session(&view);
  for (const char* text : session_paths) EXPECT_TRUE(Eval(text, t)) << text;
  // The trace's own feedback is not the session's, nor the other way round.
  EXPECT_FALSE(Eval("exists(session.feedback.thumbs.label)", t));
  EXPECT_TRUE(Eval("feedback.resolved.count == 0", t));
  t.set_session(nullptr);
}

TEST(ExprFields, SessionFieldsAreTypeChecked) {
  EXPECT_EQ(CompileError(R"(session.trace_count == "3")").message,
            "cannot compare number with string using '=='");
  EXPECT_EQ(CompileError("session.feedback.x.label > 1").message,
            "cannot compare string with number using '>'");
  EXPECT_EQ(CompileError(R"(feedback.x.expected_output == 1)").offset, 30u);
  const ExprError field = CompileError("session.feedback.x.scor < 1");
  EXPECT_EQ(field.offset, 19u);
  EXPECT_NE(field.message.find("did you mean \"score\"?"), std::string::npos) << field.message;
  const ExprError root = CompileError("session.trace_cont > 1");
  EXPECT_EQ(root.offset, 0u);
  EXPECT_NE(root.message.find("did you mean \"session.trace_count\"?"), std::string::npos)
      << root.message;
  EXPECT_NE(CompileError("session.feedback.count > 1").message.find("needs a field"),
            std::string::npos);
  EXPECT_NE(CompileError("feedback.x.metadata == 1")
                .message.find("feedback.x.metadata needs a key: feedback.x.metadata[\"key\"]"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Annotation schemas at compile time (DESIGN §1.5)

AnnotationSchemas DeclaredSchemas() {
  AnnotationSchemas s;
  s.declared = true;
  AnnotationSchema thumbs;
  thumbs.name = "thumbs";
  thumbs.type = AnnotationSchema::Type::kCategorical;
  thumbs.values = {"up", "down"};
  AnnotationSchema faithfulness;
  faithfulness.name = "faithfulness";
  faithfulness.type = AnnotationSchema::Type::kScore;
  faithfulness.min = 0;
  faithfulness.max = 1;
  AnnotationSchema tone;
  tone.name = "tone-check";
  tone.type = AnnotationSchema::Type::kText;
  s.schemas = {thumbs, faithfulness, tone};
  return s;
}

TEST(ExprSchemas, RulesThatKeepToTheSchemasCompile) {
  const AnnotationSchemas s = DeclaredSchemas();
  for (const char* text : {
           R"(feedback.thumbs.label == "down")",
           R"(feedback.thumbs.label != "up")",
           R"("down" == feedback.thumbs.label)",
           R"(feedback.thumbs.label in ["up", "down"])",
           R"(["down"] contains feedback.thumbs.label)",
           R"(feedback.thumbs.label contains "dow")",  // a substring, not a value
           R"(feedback.thumbs.label matches "^d")",
           "feedback.thumbs.label == null",
           "feedback.thumbs.score < 7",  // a categorical's score has no range
           "feedback.faithfulness.score < 0.5 and feedback.faithfulness.score >= 0",
           "feedback.faithfulness.score <= 1 and 0 <= feedback.faithfulness.score",
           R"(feedback.faithfulness.label == "anything")",
           R"(feedback["tone-check"].label == "anything")",
           R"(session.feedback.thumbs.label == "up")",
           "feedback.count > 0 and feedback.min_score < 7 and feedback.max_score > -1",
       }) {
    auto r = CompileExpression(text, ExprKind::kBoolean, &s);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  }
  // Without schemas (or with none declared) nothing is checked.
  AnnotationSchemas none;
  EXPECT_TRUE(
      CompileExpression(R"(feedback.thmbs.label == "dwn")", ExprKind::kBoolean, &none).ok());
  EXPECT_TRUE(CompileExpression(R"(feedback.thmbs.label == "dwn")").ok());
}

class ExprSchemaError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ExprSchemaError, PointsAtTheNameOrLiteral) {
  const ErrorCase& c = GetParam();
  const AnnotationSchemas s = DeclaredSchemas();
  auto r = CompileExpression(c.text, ExprKind::kBoolean, &s);
  ASSERT_FALSE(r.ok()) << c.text << " compiled";
  EXPECT_EQ(r.error().offset, c.offset) << c.text << ": " << r.error().message;
  EXPECT_EQ(r.error().message, c.message) << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ExprSchemaError,
    ::testing::Values(
        ErrorCase{"feedback.thmbs.score < 0.5", 9,
                  "feedback \"thmbs\" is not declared in annotations; did you mean \"thumbs\"?"},
        ErrorCase{R"(feedback["tone_check"].label == "x")", 9,
                  "feedback \"tone_check\" is not declared in annotations; did you mean "
                  "\"tone-check\"?"},
        ErrorCase{"trace.error or session.feedback.helpful.count > 0", 32,
                  "feedback \"helpful\" is not declared in annotations (declared: thumbs, "
                  "faithfulness, tone-check)"},
        ErrorCase{"feedback.thmbs.count > 0", 9,
                  "feedback \"thmbs\" is not declared in annotations; did you mean \"thumbs\"?"},
        ErrorCase{R"(feedback.thumbs.label == "dwn")", 25,
                  "label \"dwn\" is not one of annotations.thumbs's values [up, down]; did you "
                  "mean \"down\"?"},
        ErrorCase{R"(feedback.thumbs.label != "sideways")", 25,
                  "label \"sideways\" is not one of annotations.thumbs's values [up, down]"},
        ErrorCase{R"("dwn" == feedback.thumbs.label)", 0,
                  "label \"dwn\" is not one of annotations.thumbs's values [up, down]; did you "
                  "mean \"down\"?"},
        ErrorCase{R"(feedback.thumbs.label in ["up", "dwn"])", 32,
                  "label \"dwn\" is not one of annotations.thumbs's values [up, down]; did you "
                  "mean \"down\"?"},
        ErrorCase{R"(["uo"] contains feedback.thumbs.label)", 1,
                  "label \"uo\" is not one of annotations.thumbs's values [up, down]; did you "
                  "mean \"up\"?"},
        ErrorCase{R"(session.feedback.thumbs.label == "Down")", 33,
                  "label \"Down\" is not one of annotations.thumbs's values [up, down]; did you "
                  "mean \"down\"?"},
        ErrorCase{"feedback.faithfulness.score < 7", 30,
                  "score 7 is outside annotations.faithfulness's range [0, 1]"},
        ErrorCase{"feedback.faithfulness.score >= -0.5", 31,
                  "score -0.5 is outside annotations.faithfulness's range [0, 1]"},
        ErrorCase{"50 > feedback.faithfulness.score", 0,
                  "score 50 is outside annotations.faithfulness's range [0, 1]"},
        ErrorCase{"session.feedback.faithfulness.score == 1.5", 39,
                  "score 1.5 is outside annotations.faithfulness's range [0, 1]"}),
    [](const ::testing::TestParamInfo<ErrorCase>& p) {
      return std::to_string(p.index) + "_" + testing::ParamName(p.param.text);
    });

}  // namespace
}  // namespace triaged
