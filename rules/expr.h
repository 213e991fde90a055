// The rule expression language (DESIGN §2.2): parsed and type-checked once, evaluated per trace.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rules/result.h"
#include "rules/trace.h"

namespace triaged {

struct AnnotationSchemas;  // rules/ruleset.h

// A compile error at byte `offset` of the expression text.
struct ExprError {
  size_t offset = 0;
  std::string message;
};

// A runtime value of the language.
struct ExprValue {
  enum class Kind { kMissing, kNull, kBool, kNumber, kString, kList };
  Kind kind = Kind::kMissing;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<ExprValue> items;
};

// Renders a value for `explain` output: `"text"`, `12.5`, `true`, `null`, `<missing>`, `[..]`.
std::string FormatExprValue(const ExprValue& v);

// One step of an explanation: a comparison (or other leaf) with its operand values.
struct ExplainStep {
  std::string text;    // the source text of the sub-expression
  std::string detail;  // e.g. `feedback.thumbs.label = "down"`
  bool result = false;
};

class CompiledExpr {
 public:
  virtual ~CompiledExpr() = default;
  // Boolean expressions (`when:`).
  virtual bool Matches(const Trace& trace) const = 0;
  // Any expression: its value (kMissing when a path is absent).
  virtual ExprValue Evaluate(const Trace& trace) const = 0;
  // Like Matches, recording each leaf's values.
  virtual bool Explain(const Trace& trace, std::vector<ExplainStep>& steps) const = 0;
  // The static type: "bool", "number", "string", "list", "any".
  virtual std::string_view type_name() const = 0;
};

enum class ExprKind { kBoolean, kString, kAny };

// The most tokens an expression may have (a 5,000-term `or` chain of comparisons has 30,000; a
// list of 40,000 literals about 80,000). Nesting (parentheses, `not`) is bounded separately.
inline constexpr size_t kMaxExpressionTokens = 100'000;

// A feedback name an expression reads (`feedback.NAME...`, `session.feedback.NAME...`), at byte
// `offset` of its text.
struct FeedbackRead {
  std::string name;
  size_t offset = 0;
};

// Parses and type-checks `text`. kBoolean requires a bool expression (rule `when:`); kString a
// string-typed one (`sample_key:`). The compiled expression is never null.
// With `schemas` declared (a config's `annotations:`, DESIGN §1.5), reading a feedback name it
// does not declare, comparing a categorical label with a value not in its `values`, or a score
// with a literal outside its `[min, max]` is a compile error at that name or literal. Only
// compilation reads `schemas`; the compiled expression does not keep it. With `feedback_reads`,
// the feedback names read are appended to it in text order.
Result<std::shared_ptr<const CompiledExpr>, ExprError> CompileExpression(
    std::string_view text, ExprKind kind = ExprKind::kBoolean,
    const AnnotationSchemas* schemas = nullptr,
    std::vector<FeedbackRead>* feedback_reads = nullptr);

// "; did you mean \"CANDIDATE\"?" for the candidate closest to `word` (within two edits and
// fewer than the longer one's length), or "".
std::string SuggestClosest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace triaged
