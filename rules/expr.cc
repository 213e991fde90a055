// The rule expression language: lexer, recursive-descent parser, type checker and a tree of
// compiled nodes. Paths are resolved to accessors at compile time and regular expressions are
// compiled once, so evaluation does no name lookups and (for comparisons) no allocation: values
// are views into the trace.
#include "rules/expr.h"

#include <rapidjson/document.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>

#include "rules/ruleset.h"

namespace triaged {
namespace {

std::string FormatNumber(double v);

// ---------------------------------------------------------------------------------------------
// Values and types

enum class Type { kBool, kNumber, kString, kList, kNull, kAny };

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kBool: return "bool";
    case Type::kNumber: return "number";
    case Type::kString: return "string";
    case Type::kList: return "list";
    case Type::kNull: return "null";
    case Type::kAny: return "any";
  }
  return "any";
}

// A value during evaluation: a view into the trace or into the compiled expression.
struct Val {
  enum class K { kMissing, kNull, kBool, kNumber, kString, kAttrList, kLitList };
  K k = K::kMissing;
  bool b = false;
  double n = 0;
  std::string_view s;
  const std::vector<AttrValue>* attr_items = nullptr;
  const std::vector<Val>* lit_items = nullptr;

  static Val Bool(bool v) {
    Val x;
    x.k = K::kBool;
    x.b = v;
    return x;
  }
  static Val Number(double v) {
    Val x;
    x.k = K::kNumber;
    x.n = v;
    return x;
  }
  static Val String(std::string_view v) {
    Val x;
    x.k = K::kString;
    x.s = v;
    return x;
  }
  static Val Null() {
    Val x;
    x.k = K::kNull;
    return x;
  }
  bool missing() const { return k == K::kMissing; }
  bool truthy() const { return k == K::kBool && b; }
};

Val FromAttr(const AttrValue* v) {
  if (v == nullptr) return {};
  switch (v->kind) {
    case AttrValue::Kind::kNull: return Val::Null();
    case AttrValue::Kind::kBool: return Val::Bool(v->b);
    case AttrValue::Kind::kNumber: return Val::Number(v->n);
    case AttrValue::Kind::kString: return Val::String(v->s);
    case AttrValue::Kind::kArray: {
      Val x;
      x.k = Val::K::kAttrList;
      x.attr_items = &v->items;
      return x;
    }
  }
  return {};
}

Val FromOpt(const std::optional<std::string>& s) { return s ? Val::String(*s) : Val{}; }
Val FromOpt(const std::optional<std::string_view>& s) { return s ? Val::String(*s) : Val{}; }
Val FromOpt(const std::optional<double>& d) { return d ? Val::Number(*d) : Val{}; }

bool Equal(const Val& a, const Val& b);

template <typename F>
bool AnyItem(const Val& list, F&& f) {
  if (list.k == Val::K::kAttrList) {
    for (const AttrValue& item : *list.attr_items) {
      if (f(FromAttr(&item))) return true;
    }
  } else if (list.k == Val::K::kLitList) {
    for (const Val& item : *list.lit_items) {
      if (f(item)) return true;
    }
  }
  return false;
}

bool Equal(const Val& a, const Val& b) {
  if (a.missing() || b.missing()) return false;
  if (a.k != b.k) return false;
  switch (a.k) {
    case Val::K::kNull: return true;
    case Val::K::kBool: return a.b == b.b;
    case Val::K::kNumber: return a.n == b.n;
    case Val::K::kString: return a.s == b.s;
    default: return false;  // lists are not compared
  }
}

ExprValue ToExprValue(const Val& v) {
  ExprValue out;
  switch (v.k) {
    case Val::K::kMissing: out.kind = ExprValue::Kind::kMissing; break;
    case Val::K::kNull: out.kind = ExprValue::Kind::kNull; break;
    case Val::K::kBool:
      out.kind = ExprValue::Kind::kBool;
      out.b = v.b;
      break;
    case Val::K::kNumber:
      out.kind = ExprValue::Kind::kNumber;
      out.n = v.n;
      break;
    case Val::K::kString:
      out.kind = ExprValue::Kind::kString;
      out.s = std::string(v.s);
      break;
    case Val::K::kAttrList:
    case Val::K::kLitList:
      out.kind = ExprValue::Kind::kList;
      AnyItem(v, [&](const Val& item) {
        out.items.push_back(ToExprValue(item));
        return false;
      });
      break;
  }
  return out;
}

// Values an evaluation makes rather than finds in the trace (a metadata value parsed out of an
// annotation's metadata JSON): they live here, per thread, until the next evaluation starts, so
// a Val may point at them like at the trace. Deques: adding never moves what is there.
struct Scratch {
  std::deque<std::string> strings;
  std::deque<AttrValue> lists;
  void Clear() {
    strings.clear();
    lists.clear();
  }
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// ---------------------------------------------------------------------------------------------
// Compiled nodes

struct Ctx {
  const Trace* trace = nullptr;
  const PackedSpan::Fields* span = nullptr;  // inside any_span / count_spans
};

// The first value for `key` of packed attributes, unpacked into the evaluation's scratch.
Val FromPackedAttr(const PackedSpan::Attrs& attrs, std::string_view key) {
  AttrValue value;
  if (!attrs.Find(key, value)) return {};
  return FromAttr(&ThreadScratch().lists.emplace_back(std::move(value)));
}

struct Node {
  virtual ~Node() = default;
  virtual Val Eval(const Ctx& ctx) const = 0;
  // Boolean evaluation that records leaf steps; And/Or/Not override to recurse.
  virtual bool Explain(const Ctx& ctx, std::string_view text,
                       std::vector<ExplainStep>& steps) const;
  // Adds `path = value` for operands that are not literals.
  virtual void Describe(const Ctx& ctx, std::string_view text, std::string& out) const {
    if (is_literal) return;
    if (!out.empty()) out += ", ";
    out += std::string(text.substr(begin, end - begin)) + " = " +
           FormatExprValue(ToExprValue(Eval(ctx)));
  }
  Type type = Type::kAny;
  size_t begin = 0, end = 0;  // source range
  bool is_literal = false;
  bool is_path = false;
  // Compile time only: the declared schema of the feedback this path reads, and which of its
  // values (a categorical label, a score), for the checks of DESIGN §1.5.
  enum class SchemaValue { kNone, kLabel, kScore };
  const AnnotationSchema* schema = nullptr;
  SchemaValue schema_value = SchemaValue::kNone;
};

bool Node::Explain(const Ctx& ctx, std::string_view text, std::vector<ExplainStep>& steps) const {
  const bool result = Eval(ctx).truthy();
  ExplainStep step;
  step.text = std::string(text.substr(begin, end - begin));
  Describe(ctx, text, step.detail);
  step.result = result;
  steps.push_back(std::move(step));
  return result;
}

using NodePtr = std::unique_ptr<Node>;

struct Literal : Node {
  Val v;
  std::string storage;
  Val Eval(const Ctx&) const override { return v; }
};

struct ListLiteral : Node {
  std::vector<Val> items;
  std::vector<size_t> item_begins;  // each item's source offset
  std::deque<std::string> storage;
  Val Eval(const Ctx&) const override {
    Val x;
    x.k = Val::K::kLitList;
    x.lit_items = &items;
    return x;
  }
};

// A leaf that reads the trace or the current span.
struct Accessor : Node {
  std::function<Val(const Ctx&)> read;
  Val Eval(const Ctx& ctx) const override { return read(ctx); }
};

struct NotNode : Node {
  NodePtr child;
  Val Eval(const Ctx& ctx) const override { return Val::Bool(!child->Eval(ctx).truthy()); }
  bool Explain(const Ctx& ctx, std::string_view text,
               std::vector<ExplainStep>& steps) const override {
    return !child->Explain(ctx, text, steps);
  }
};

// A chain of one operator, `a and b and c` or `a or b or c`: one node holding every operand, so
// a long chain is walked in a loop, never by a recursion as deep as the chain is long.
struct AndOr : Node {
  bool is_and = true;
  std::vector<NodePtr> operands;  // two or more
  Val Eval(const Ctx& ctx) const override {
    for (const NodePtr& operand : operands) {
      if (operand->Eval(ctx).truthy() != is_and) return Val::Bool(!is_and);
    }
    return Val::Bool(is_and);
  }
  bool Explain(const Ctx& ctx, std::string_view text,
               std::vector<ExplainStep>& steps) const override {
    for (const NodePtr& operand : operands) {
      if (operand->Explain(ctx, text, steps) != is_and) return !is_and;
    }
    return is_and;
  }
};

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kContains, kMatches };

struct Binary : Node {
  Op op = Op::kEq;
  NodePtr lhs, rhs;
  std::unique_ptr<RE2> re;  // kMatches

  Val Eval(const Ctx& ctx) const override {
    const Val l = lhs->Eval(ctx);
    if (l.missing()) return Val::Bool(false);
    if (op == Op::kMatches) {
      return Val::Bool(l.k == Val::K::kString &&
                       RE2::PartialMatch(re2::StringPiece(l.s.data(), l.s.size()), *re));
    }
    const Val r = rhs->Eval(ctx);
    if (r.missing()) return Val::Bool(false);
    switch (op) {
      case Op::kEq: return Val::Bool(Equal(l, r));
      case Op::kNe: return Val::Bool(!Equal(l, r));
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe: {
        int cmp;
        if (l.k == Val::K::kNumber && r.k == Val::K::kNumber) {
          cmp = l.n < r.n ? -1 : (l.n > r.n ? 1 : 0);
        } else if (l.k == Val::K::kString && r.k == Val::K::kString) {
          cmp = l.s.compare(r.s);
        } else {
          return Val::Bool(false);
        }
        switch (op) {
          case Op::kLt: return Val::Bool(cmp < 0);
          case Op::kLe: return Val::Bool(cmp <= 0);
          case Op::kGt: return Val::Bool(cmp > 0);
          default: return Val::Bool(cmp >= 0);
        }
      }
      case Op::kIn:
        if (r.k == Val::K::kString) {
          return Val::Bool(l.k == Val::K::kString && r.s.find(l.s) != std::string_view::npos);
        }
        return Val::Bool(AnyItem(r, [&](const Val& item) { return Equal(l, item); }));
      case Op::kContains:
        if (l.k == Val::K::kString) {
          return Val::Bool(r.k == Val::K::kString && l.s.find(r.s) != std::string_view::npos);
        }
        return Val::Bool(AnyItem(l, [&](const Val& item) { return Equal(item, r); }));
      case Op::kMatches: break;
    }
    return Val::Bool(false);
  }
  void Describe(const Ctx& ctx, std::string_view text, std::string& out) const override {
    lhs->Describe(ctx, text, out);
    if (rhs) rhs->Describe(ctx, text, out);
  }
};

struct ExistsNode : Node {
  NodePtr arg;
  Val Eval(const Ctx& ctx) const override { return Val::Bool(!arg->Eval(ctx).missing()); }
  void Describe(const Ctx& ctx, std::string_view text, std::string& out) const override {
    arg->Describe(ctx, text, out);
  }
};

struct SpanQuantifier : Node {
  bool count = false;  // count_spans, else any_span
  NodePtr pred;
  Val Eval(const Ctx& ctx) const override {
    double n = 0;
    bool any = false;
    ctx.trace->ForEachSpan([&](const PackedSpan::Fields& span) {
      Ctx inner{ctx.trace, &span};
      if (!pred->Eval(inner).truthy()) return true;
      any = true;
      ++n;
      return count;  // any_span stops at the first
    });
    return count ? Val::Number(n) : Val::Bool(any);
  }
  void Describe(const Ctx& ctx, std::string_view /*text*/, std::string& out) const override {
    double n = 0;
    ctx.trace->ForEachSpan([&](const PackedSpan::Fields& span) {
      Ctx inner{ctx.trace, &span};
      if (pred->Eval(inner).truthy()) ++n;
      return true;
    });
    if (!out.empty()) out += ", ";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g of %zu spans match", n, ctx.trace->span_count());
    out += buf;
  }
};

// ---------------------------------------------------------------------------------------------
// Fields

struct FieldDef {
  const char* name;
  Type type;
  std::function<Val(const Ctx&)> read;
};

const std::vector<FieldDef>& TraceFields() {
  static const std::vector<FieldDef> kFields = {
      {"id", Type::kString, [](const Ctx& c) { return Val::String(c.trace->id()); }},
      {"name", Type::kString, [](const Ctx& c) { return FromOpt(c.trace->summary().name); }},
      {"status", Type::kString,
       [](const Ctx& c) { return Val::String(c.trace->summary().error ? "error" : "ok"); }},
      {"error", Type::kBool, [](const Ctx& c) { return Val::Bool(c.trace->summary().error); }},
      {"error_count", Type::kNumber,
       [](const Ctx& c) {
         return Val::Number(static_cast<double>(c.trace->summary().error_count));
       }},
      {"span_count", Type::kNumber,
       [](const Ctx& c) {
         return Val::Number(static_cast<double>(c.trace->summary().span_count));
       }},
      {"duration_ms", Type::kNumber,
       [](const Ctx& c) { return FromOpt(c.trace->summary().duration_ms); }},
      {"model", Type::kString, [](const Ctx& c) { return FromOpt(c.trace->summary().model); }},
      {"input_tokens", Type::kNumber,
       [](const Ctx& c) { return FromOpt(c.trace->summary().input_tokens); }},
      {"output_tokens", Type::kNumber,
       [](const Ctx& c) { return FromOpt(c.trace->summary().output_tokens); }},
      {"total_tokens", Type::kNumber,
       [](const Ctx& c) { return FromOpt(c.trace->summary().total_tokens); }},
      {"retry_count", Type::kNumber,
       [](const Ctx& c) { return Val::Number(c.trace->summary().retry_count); }},
      {"session_id", Type::kString,
       [](const Ctx& c) { return FromOpt(c.trace->summary().session_id); }},
      {"user_id", Type::kString, [](const Ctx& c) { return FromOpt(c.trace->summary().user_id); }},
      {"prompt_version", Type::kString,
       [](const Ctx& c) { return FromOpt(c.trace->summary().prompt_version); }},
      {"input", Type::kString, [](const Ctx& c) { return FromOpt(c.trace->summary().input); }},
      {"output", Type::kString, [](const Ctx& c) { return FromOpt(c.trace->summary().output); }},
  };
  return kFields;
}

const std::vector<FieldDef>& SpanFields() {
  static const std::vector<FieldDef> kFields = {
      {"name", Type::kString, [](const Ctx& c) { return Val::String(c.span->name); }},
      {"status", Type::kString,
       [](const Ctx& c) {
         switch (c.span->status) {
           case SpanStatus::kError: return Val::String("error");
           case SpanStatus::kOk: return Val::String("ok");
           case SpanStatus::kUnset: break;
         }
         return Val::String("unset");
       }},
      {"duration_ms", Type::kNumber, [](const Ctx& c) { return FromOpt(c.span->duration_ms()); }},
      {"kind", Type::kString,
       [](const Ctx& c) { return c.span->kind.empty() ? Val{} : Val::String(c.span->kind); }},
      {"model", Type::kString, [](const Ctx& c) { return FromOpt(c.span->canonical(0)); }},
      {"input", Type::kString, [](const Ctx& c) { return FromOpt(c.span->canonical(1)); }},
      {"output", Type::kString, [](const Ctx& c) { return FromOpt(c.span->canonical(2)); }},
  };
  return kFields;
}

const char* const kFeedbackFields[] = {"score",           "label", "source",  "explanation",
                                       "expected_output", "count", "metadata"};
constexpr const char* kFeedbackFieldList =
    "score, label, source, explanation, expected_output, count, metadata[\"key\"]";

// A metadata value as the language sees it: scalars as they are, an array as a list of its
// values (nested arrays as lists), an object or an array holding one as missing.
bool JsonToAttr(const rapidjson::Value& v, AttrValue& out) {
  switch (v.GetType()) {
    case rapidjson::kNullType: out = AttrValue::Null(); return true;
    case rapidjson::kFalseType: out = AttrValue::Bool(false); return true;
    case rapidjson::kTrueType: out = AttrValue::Bool(true); return true;
    case rapidjson::kNumberType: out = AttrValue::Number(v.GetDouble()); return true;
    case rapidjson::kStringType:
      out = AttrValue::String(std::string(v.GetString(), v.GetStringLength()));
      return true;
    case rapidjson::kArrayType: {
      std::vector<AttrValue> items(v.Size());
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        if (!JsonToAttr(v[i], items[i])) return false;
      }
      out = AttrValue::Array(std::move(items));
      return true;
    }
    case rapidjson::kObjectType: return false;
  }
  return false;
}

// `key` in the object `obj`: the member of that name, else, for a dotted key, the member named
// by its first parts holding an object where the rest is found (`review.queue` reaches
// {"review": {"queue": ...}}), as OTLP kvlists are flattened into dotted attribute keys.
const rapidjson::Value* FindMetadata(const rapidjson::Value& obj, std::string_view key) {
  for (auto m = obj.MemberBegin(); m != obj.MemberEnd(); ++m) {
    if (std::string_view(m->name.GetString(), m->name.GetStringLength()) == key) return &m->value;
  }
  for (size_t dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.', dot + 1)) {
    const std::string_view head = key.substr(0, dot);
    for (auto m = obj.MemberBegin(); m != obj.MemberEnd(); ++m) {
      if (!m->value.IsObject() ||
          std::string_view(m->name.GetString(), m->name.GetStringLength()) != head) {
        continue;
      }
      if (const rapidjson::Value* found = FindMetadata(m->value, key.substr(dot + 1))) {
        return found;
      }
    }
  }
  return nullptr;
}

// The annotation's metadata value at `key`, parsed when asked for (evaluations that never read
// metadata never parse it). Strings and lists are kept in the thread's scratch.
Val ReadMetadata(const Annotation* a, const std::string& key) {
  if (a == nullptr || a->metadata_json.size() <= 2) return {};  // none, or "{}"
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(a->metadata_json.data(), a->metadata_json.size());
  if (doc.HasParseError() || !doc.IsObject()) return {};
  const rapidjson::Value* v = FindMetadata(doc, key);
  if (v == nullptr) return {};
  switch (v->GetType()) {
    case rapidjson::kNullType: return Val::Null();
    case rapidjson::kFalseType: return Val::Bool(false);
    case rapidjson::kTrueType: return Val::Bool(true);
    case rapidjson::kNumberType: return Val::Number(v->GetDouble());
    case rapidjson::kStringType:
      return Val::String(
          ThreadScratch().strings.emplace_back(v->GetString(), v->GetStringLength()));
    case rapidjson::kArrayType: {
      AttrValue list;
      if (!JsonToAttr(*v, list)) return {};
      return FromAttr(&ThreadScratch().lists.emplace_back(std::move(list)));
    }
    case rapidjson::kObjectType: break;
  }
  return {};
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Every path the language knows, for "did you mean" suggestions.
std::vector<std::string> KnownPaths() {
  std::vector<std::string> out;
  for (const FieldDef& f : TraceFields()) out.push_back(std::string("trace.") + f.name);
  out.push_back("trace.attributes");
  out.push_back("trace.resource");
  for (const FieldDef& f : SpanFields()) out.push_back(std::string("span.") + f.name);
  out.push_back("span.attributes");
  out.push_back("feedback.count");
  out.push_back("feedback.min_score");
  out.push_back("feedback.max_score");
  out.push_back("session.trace_count");
  out.push_back("session.feedback");
  return out;
}

std::string Suggest(std::string_view path, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = 3;
  for (const std::string& c : candidates) {
    // The distance is at least the difference in length: no table for a hopeless pair.
    if (std::max(path.size(), c.size()) - std::min(path.size(), c.size()) >= best_d) continue;
    const size_t d = EditDistance(path, c);
    if (d < best_d && d < std::max(path.size(), c.size())) {
      best_d = d;
      best = c;
    }
  }
  return best.empty() ? "" : "; did you mean \"" + best + "\"?";
}

// ---------------------------------------------------------------------------------------------
// Lexer

enum class Tok {
  kEnd,
  kIdent,
  kNumber,
  kString,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kDot,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kMinus,
  kAnd,
  kOr,
  kNot,
  kIn,
  kContains,
  kMatches,
  kTrue,
  kFalse,
  kNull,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t begin = 0, end = 0;
  std::string text;  // identifier name or decoded string literal
  double number = 0;
};

// Compile errors unwind the recursive-descent parser as an ExprError exception; it never
// leaves this file: CompileExpression catches it and returns it as its Result's error.
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  // Every token and a final kEnd; more than kMaxExpressionTokens is an error at the first one
  // past the limit.
  std::vector<Token> Run() {
    std::vector<Token> out;
    while (true) {
      Token t = Next();
      if (t.kind != Tok::kEnd && out.size() == kMaxExpressionTokens) {
        Fail(t.begin, "expression too long (more than " + std::to_string(kMaxExpressionTokens) +
                          " tokens); split it into several rules");
      }
      out.push_back(std::move(t));
      if (out.back().kind == Tok::kEnd) return out;
    }
  }

 private:
  [[noreturn]] void Fail(size_t at, std::string message) {
    throw ExprError{at, std::move(message)};
  }

  Token Next() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
    Token t;
    t.begin = pos_;
    if (pos_ >= text_.size()) {
      t.end = pos_;
      return t;
    }
    const char c = text_[pos_];
    auto single = [&](Tok k, size_t len) {
      t.kind = k;
      pos_ += len;
      t.end = pos_;
      return t;
    };
    auto peek = [&](size_t ahead) {
      return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
    };
    switch (c) {
      case '(': return single(Tok::kLParen, 1);
      case ')': return single(Tok::kRParen, 1);
      case '[': return single(Tok::kLBracket, 1);
      case ']': return single(Tok::kRBracket, 1);
      case ',': return single(Tok::kComma, 1);
      case '.':
        if (!(peek(1) >= '0' && peek(1) <= '9')) return single(Tok::kDot, 1);
        break;
      case '-': return single(Tok::kMinus, 1);
      case '=':
        if (peek(1) == '=') return single(Tok::kEq, 2);
        Fail(pos_, "use '==' to compare");
      case '!':
        if (peek(1) == '=') return single(Tok::kNe, 2);
        Fail(pos_, "use 'not' instead of '!'");
      case '<': return peek(1) == '=' ? single(Tok::kLe, 2) : single(Tok::kLt, 1);
      case '>': return peek(1) == '=' ? single(Tok::kGe, 2) : single(Tok::kGt, 1);
      case '&':
        Fail(pos_, peek(1) == '&' ? "use 'and' instead of '&&'" : "unexpected character '&'");
      case '|':
        Fail(pos_, peek(1) == '|' ? "use 'or' instead of '||'" : "unexpected character '|'");
      case '"':
      case '\'': return String(c);
      default: break;
    }
    if ((c >= '0' && c <= '9') || c == '.') return Number();
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
      while (pos_ < text_.size()) {
        const char d = text_[pos_];
        if (!((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9') ||
              d == '_')) {
          break;
        }
        ++pos_;
      }
      t.end = pos_;
      t.text = std::string(text_.substr(t.begin, t.end - t.begin));
      static const std::pair<const char*, Tok> kKeywords[] = {
          {"and", Tok::kAnd},           {"or", Tok::kOr},
          {"not", Tok::kNot},           {"in", Tok::kIn},
          {"contains", Tok::kContains}, {"matches", Tok::kMatches},
          {"true", Tok::kTrue},         {"false", Tok::kFalse},
          {"null", Tok::kNull},
      };
      t.kind = Tok::kIdent;
      for (const auto& [word, kind] : kKeywords) {
        if (t.text == word) t.kind = kind;
      }
      return t;
    }
    Fail(pos_, std::string("unexpected character '") + c + "'");
  }

  Token Number() {
    Token t;
    t.kind = Tok::kNumber;
    t.begin = pos_;
    auto digits = [&] {
      const size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ - start;
    };
    size_t n = digits();
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      n += digits();
    }
    if (n == 0) Fail(t.begin, "malformed number");
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) Fail(t.begin, "malformed number");
    }
    t.end = pos_;
    const std::string s(text_.substr(t.begin, t.end - t.begin));
    t.number = std::strtod(s.c_str(), nullptr);
    if (!std::isfinite(t.number)) Fail(t.begin, "number out of range");
    if (pos_ < text_.size() &&
        (std::isalpha(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
      Fail(pos_, "unexpected character '" + std::string(1, text_[pos_]) + "' after a number");
    }
    return t;
  }

  Token String(char quote) {
    Token t;
    t.kind = Tok::kString;
    t.begin = pos_++;
    while (true) {
      if (pos_ >= text_.size()) Fail(t.begin, "unterminated string");
      const char c = text_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        t.text += c;
        continue;
      }
      if (pos_ >= text_.size()) Fail(t.begin, "unterminated string");
      const char e = text_[pos_++];
      switch (e) {
        case '"': t.text += '"'; break;
        case '\'': t.text += '\''; break;
        case '\\': t.text += '\\'; break;
        case '/': t.text += '/'; break;
        case 'n': t.text += '\n'; break;
        case 't': t.text += '\t'; break;
        case 'r': t.text += '\r'; break;
        default: Fail(pos_ - 2, std::string("unknown escape '\\") + e + "' in string");
      }
    }
    t.end = pos_;
    return t;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Parser and type checker

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens, const AnnotationSchemas* schemas,
         std::vector<FeedbackRead>* feedback_reads)
      : text_(text),
        tokens_(std::move(tokens)),
        schemas_(schemas != nullptr && schemas->declared ? schemas : nullptr),
        feedback_reads_(feedback_reads) {}

  NodePtr ParseAll() {
    NodePtr n = Or();
    if (Peek().kind != Tok::kEnd) Fail(Peek().begin, "unexpected " + Describe(Peek()));
    return n;
  }

  [[noreturn]] static void Fail(size_t at, std::string message) {
    throw ExprError{at, std::move(message)};
  }

 private:
  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& Take() { return tokens_[std::min(pos_++, tokens_.size() - 1)]; }
  bool Accept(Tok k) {
    if (Peek().kind != k) return false;
    ++pos_;
    return true;
  }
  const Token& Expect(Tok k, const char* what) {
    if (Peek().kind != k)
      Fail(Peek().begin, std::string("expected ") + what + ", got " + Describe(Peek()));
    return Take();
  }
  std::string Describe(const Token& t) const {
    if (t.kind == Tok::kEnd) return "end of expression";
    std::string out(1, '\'');
    out.append(text_.substr(t.begin, t.end - t.begin));
    out.push_back('\'');
    return out;
  }

  static void RequireBool(const Node& n, const char* context) {
    if (n.type != Type::kBool && n.type != Type::kAny) {
      Fail(n.begin,
           std::string(context) + " needs a boolean, got " + std::string(TypeName(n.type)));
    }
  }

  // Nesting is bounded so that a hostile config cannot overflow the stack.
  static constexpr int kMaxDepth = 200;
  struct Nest {
    explicit Nest(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxDepth) {
        Fail(parser.Peek().begin, "expression nested too deeply (more than 200 levels)");
      }
    }
    ~Nest() { --parser.depth_; }
    Parser& parser;
  };

  NodePtr Or() {
    Nest nest(*this);
    return Logical(false);
  }
  NodePtr And() { return Logical(true); }
  // A chain of `and` (of Not()s) or of `or` (of And()s), as one node.
  NodePtr Logical(bool is_and) {
    const Tok op = is_and ? Tok::kAnd : Tok::kOr;
    auto operand = [&] { return is_and ? Not() : And(); };
    NodePtr first = operand();
    if (Peek().kind != op) return first;
    const char* name = is_and ? "'and'" : "'or'";
    auto n = std::make_unique<AndOr>();
    n->is_and = is_and;
    n->begin = first->begin;
    n->type = Type::kBool;
    n->operands.push_back(std::move(first));
    while (Accept(op)) {
      NodePtr next = operand();
      if (n->operands.size() == 1) RequireBool(*n->operands[0], name);
      RequireBool(*next, name);
      n->operands.push_back(std::move(next));
    }
    n->end = n->operands.back()->end;
    return n;
  }
  NodePtr Not() {
    if (Peek().kind == Tok::kNot) {
      Nest nest(*this);
      const size_t begin = Take().begin;
      NodePtr child = Not();
      RequireBool(*child, "'not'");
      auto n = std::make_unique<NotNode>();
      n->begin = begin;
      n->end = child->end;
      n->type = Type::kBool;
      n->child = std::move(child);
      return n;
    }
    return Comparison();
  }

  NodePtr Comparison() {
    NodePtr lhs = Primary();
    Op op;
    switch (Peek().kind) {
      case Tok::kEq: op = Op::kEq; break;
      case Tok::kNe: op = Op::kNe; break;
      case Tok::kLt: op = Op::kLt; break;
      case Tok::kLe: op = Op::kLe; break;
      case Tok::kGt: op = Op::kGt; break;
      case Tok::kGe: op = Op::kGe; break;
      case Tok::kIn: op = Op::kIn; break;
      case Tok::kContains: op = Op::kContains; break;
      case Tok::kMatches: op = Op::kMatches; break;
      case Tok::kNot:
        if (Peek(1).kind == Tok::kIn)
          Fail(Peek().begin, "use 'not (x in y)' instead of 'x not in y'");
        return lhs;
      default: return lhs;
    }
    const Token& op_tok = Take();
    const std::string op_text(text_.substr(op_tok.begin, op_tok.end - op_tok.begin));
    NodePtr rhs = Primary();
    auto n = std::make_unique<Binary>();
    n->op = op;
    n->begin = lhs->begin;
    n->end = rhs->end;
    n->type = Type::kBool;
    const Type lt = lhs->type, rt = rhs->type;
    auto known = [](Type t) { return t != Type::kAny && t != Type::kNull; };
    switch (op) {
      case Op::kEq:
      case Op::kNe:
        if (known(lt) && known(rt) && lt != rt) {
          Fail(rhs->begin, "cannot compare " + std::string(TypeName(lt)) + " with " +
                               std::string(TypeName(rt)) + " using '" + op_text + "'");
        }
        if (lt == Type::kList || rt == Type::kList) {
          Fail(lhs->begin,
               "lists cannot be compared with '" + op_text + "'; use 'in' or 'contains'");
        }
        break;
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe:
        for (const Node* side : {lhs.get(), rhs.get()}) {
          if (side->type == Type::kBool || side->type == Type::kList || side->type == Type::kNull) {
            Fail(side->begin, "'" + op_text + "' needs numbers or strings, got " +
                                  std::string(TypeName(side->type)));
          }
        }
        if (known(lt) && known(rt) && lt != rt) {
          Fail(rhs->begin, "cannot compare " + std::string(TypeName(lt)) + " with " +
                               std::string(TypeName(rt)) + " using '" + op_text + "'");
        }
        break;
      case Op::kIn:
        if (rt != Type::kList && rt != Type::kString && rt != Type::kAny) {
          Fail(rhs->begin,
               "'in' needs a list or a string on its right, got " + std::string(TypeName(rt)));
        }
        if (rt == Type::kString && known(lt) && lt != Type::kString) {
          Fail(lhs->begin,
               "'in' a string needs a string on its left, got " + std::string(TypeName(lt)));
        }
        break;
      case Op::kContains:
        if (lt != Type::kList && lt != Type::kString && lt != Type::kAny) {
          Fail(lhs->begin,
               "'contains' needs a string or a list on its left, got " + std::string(TypeName(lt)));
        }
        if (lt == Type::kString && known(rt) && rt != Type::kString) {
          Fail(rhs->begin, "a string can only contain a string, got " + std::string(TypeName(rt)));
        }
        break;
      case Op::kMatches: {
        if (lt != Type::kString && lt != Type::kAny) {
          Fail(lhs->begin,
               "'matches' needs a string on its left, got " + std::string(TypeName(lt)));
        }
        const auto* lit = dynamic_cast<const Literal*>(rhs.get());
        if (lit == nullptr || lit->v.k != Val::K::kString) {
          Fail(rhs->begin, "'matches' needs a string literal (a regular expression) on its right");
        }
        RE2::Options options;
        options.set_log_errors(false);
        n->re = std::make_unique<RE2>(lit->storage, options);
        if (!n->re->ok()) Fail(rhs->begin, "invalid regular expression: " + n->re->error());
        break;
      }
    }
    if (schemas_ != nullptr && op != Op::kMatches) {
      // The path on either side: `label in [..]`, `[..] contains label`, `"down" == label`.
      if (op != Op::kContains) CheckSchemaValues(op, *lhs, *rhs);
      if (op != Op::kIn) CheckSchemaValues(op, *rhs, *lhs);
    }
    n->lhs = std::move(lhs);
    n->rhs = std::move(rhs);
    return n;
  }

  // DESIGN §1.5: a categorical label compared with a value its schema does not allow, or a
  // score with a literal outside its range, can never mean what the rule says.
  void CheckSchemaValues(Op op, const Node& path, const Node& other) {
    const AnnotationSchema* schema = path.schema;
    if (schema == nullptr) return;
    const std::string where = "annotations." + schema->name;
    if (path.schema_value == Node::SchemaValue::kLabel &&
        schema->type == AnnotationSchema::Type::kCategorical) {
      auto check = [&](std::string_view value, size_t at) {
        if (std::find(schema->values.begin(), schema->values.end(), value) !=
            schema->values.end()) {
          return;
        }
        std::string allowed;
        for (const std::string& v : schema->values) allowed += (allowed.empty() ? "" : ", ") + v;
        Fail(at, "label \"" + std::string(value) + "\" is not one of " + where + "'s values [" +
                     allowed + "]" + SuggestClosest(value, schema->values));
      };
      if (op == Op::kEq || op == Op::kNe) {
        if (const auto* lit = dynamic_cast<const Literal*>(&other);
            lit != nullptr && lit->v.k == Val::K::kString) {
          check(lit->v.s, lit->begin);
        }
      } else if (op == Op::kIn || op == Op::kContains) {
        // `label in [...]`, `[...] contains label`: list membership.
        if (const auto* list = dynamic_cast<const ListLiteral*>(&other)) {
          for (size_t i = 0; i < list->items.size(); ++i) {
            if (list->items[i].k == Val::K::kString) check(list->items[i].s, list->item_begins[i]);
          }
        }
      }
      return;
    }
    if (path.schema_value == Node::SchemaValue::kScore &&
        schema->type == AnnotationSchema::Type::kScore && op != Op::kIn && op != Op::kContains &&
        op != Op::kMatches) {
      const auto* lit = dynamic_cast<const Literal*>(&other);
      if (lit == nullptr || lit->v.k != Val::K::kNumber) return;
      const double v = lit->v.n;
      if ((schema->min && v < *schema->min) || (schema->max && v > *schema->max)) {
        Fail(lit->begin, "score " + FormatNumber(v) + " is outside " + where + "'s range [" +
                             (schema->min ? FormatNumber(*schema->min) : "-inf") + ", " +
                             (schema->max ? FormatNumber(*schema->max) : "inf") + "]");
      }
    }
  }

  NodePtr Primary() {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kNumber:
      case Tok::kString:
      case Tok::kTrue:
      case Tok::kFalse:
      case Tok::kNull:
      case Tok::kMinus: return LiteralValue();
      case Tok::kLParen: {
        const size_t begin = Take().begin;
        NodePtr inner = Or();
        const size_t end = Expect(Tok::kRParen, "')'").end;
        inner->begin = begin;
        inner->end = end;
        return inner;
      }
      case Tok::kLBracket: return List();
      case Tok::kIdent:
        if (Peek(1).kind == Tok::kLParen) return Call();
        return Path();
      default: Fail(t.begin, "expected a value, got " + Describe(t));
    }
  }

  NodePtr LiteralValue() {
    auto n = std::make_unique<Literal>();
    n->is_literal = true;
    const Token& t = Take();
    n->begin = t.begin;
    n->end = t.end;
    switch (t.kind) {
      case Tok::kMinus: {
        const Token& num = Peek();
        if (num.kind != Tok::kNumber || num.begin != t.end) {
          Fail(t.begin, "'-' must be followed by a number");
        }
        Take();
        n->v = Val::Number(-num.number);
        n->end = num.end;
        n->type = Type::kNumber;
        break;
      }
      case Tok::kNumber:
        n->v = Val::Number(t.number);
        n->type = Type::kNumber;
        break;
      case Tok::kString:
        n->storage = t.text;
        n->v = Val::String(n->storage);
        n->type = Type::kString;
        break;
      case Tok::kTrue:
        n->v = Val::Bool(true);
        n->type = Type::kBool;
        break;
      case Tok::kFalse:
        n->v = Val::Bool(false);
        n->type = Type::kBool;
        break;
      default:
        n->v = Val::Null();
        n->type = Type::kNull;
        break;
    }
    return n;
  }

  NodePtr List() {
    auto n = std::make_unique<ListLiteral>();
    n->is_literal = true;
    n->type = Type::kList;
    n->begin = Take().begin;
    if (!Accept(Tok::kRBracket)) {
      while (true) {
        const Tok k = Peek().kind;
        if (k != Tok::kNumber && k != Tok::kString && k != Tok::kTrue && k != Tok::kFalse &&
            k != Tok::kNull && k != Tok::kMinus) {
          Fail(Peek().begin,
               "list elements must be literals (numbers, strings, true, false, null)");
        }
        NodePtr item = LiteralValue();
        auto* lit = static_cast<Literal*>(item.get());
        Val v = lit->v;
        if (v.k == Val::K::kString) {
          n->storage.push_back(lit->storage);
          v.s = n->storage.back();
        }
        n->items.push_back(v);
        n->item_begins.push_back(item->begin);
        if (Accept(Tok::kComma)) continue;
        if (Peek().kind == Tok::kRBracket) break;
        Fail(Peek().begin, "expected ',' or ']' in list, got " + Describe(Peek()));
      }
      Take();
    }
    n->end = tokens_[pos_ - 1].end;
    return n;
  }

  NodePtr Call() {
    const Token& name = Take();
    Take();  // (
    if (name.text == "exists") {
      NodePtr arg = Or();
      const size_t end = Expect(Tok::kRParen, "')'").end;
      auto n = std::make_unique<ExistsNode>();
      n->begin = name.begin;
      n->end = end;
      n->type = Type::kBool;
      n->arg = std::move(arg);
      return n;
    }
    if (name.text == "any_span" || name.text == "count_spans") {
      if (in_span_)
        Fail(name.begin, name.text + " cannot be nested inside any_span or count_spans");
      in_span_ = true;
      NodePtr pred = Or();
      in_span_ = false;
      RequireBool(*pred, name.text.c_str());
      const size_t end = Expect(Tok::kRParen, "')'").end;
      auto n = std::make_unique<SpanQuantifier>();
      n->count = name.text == "count_spans";
      n->begin = name.begin;
      n->end = end;
      n->type = n->count ? Type::kNumber : Type::kBool;
      n->pred = std::move(pred);
      return n;
    }
    Fail(name.begin,
         "unknown function \"" + name.text + "\" (functions: exists, any_span, count_spans)");
  }

  // A bracketed string key (`["k"]`) or a dotted remainder (`.a.b`), for attribute maps.
  std::string AttributeKey(const std::string& prefix) {
    if (Accept(Tok::kLBracket)) {
      const Token& key = Expect(Tok::kString, "a quoted key");
      std::string k = key.text;
      Expect(Tok::kRBracket, "']'");
      return k;
    }
    if (Peek().kind == Tok::kDot) {
      std::string k;
      while (Accept(Tok::kDot)) {
        const Token& part = Take();
        if (part.kind == Tok::kEnd || part.text.empty()) {
          Fail(part.begin, "expected a key after '.'");
        }
        k += (k.empty() ? "" : ".") + part.text;
      }
      return k;
    }
    Fail(Peek().begin, prefix + " needs a key: " + prefix + "[\"key\"]");
  }

  NodePtr MakeAccessor(size_t begin, Type type, std::function<Val(const Ctx&)> read) {
    auto n = std::make_unique<Accessor>();
    n->begin = begin;
    n->end = tokens_[pos_ - 1].end;
    n->type = type;
    n->is_path = true;
    n->read = std::move(read);
    return n;
  }

  NodePtr UnknownField(const Token& root, size_t at, const std::string& path) {
    Fail(at == 0 ? root.begin : at, "unknown field \"" + path + "\"" + Suggest(path, KnownPaths()));
  }

  NodePtr Path() {
    const Token& root = Take();
    const size_t begin = root.begin;
    if (root.text == "trace") {
      Expect(Tok::kDot, "'.' after trace");
      const Token& field = Expect(Tok::kIdent, "a field name after 'trace.'");
      if (field.text == "attributes" || field.text == "resource") {
        const bool resource = field.text == "resource";
        std::string key = AttributeKey("trace." + field.text);
        return MakeAccessor(begin, Type::kAny, [key, resource](const Ctx& c) {
          return FromPackedAttr(resource ? c.trace->resource() : c.trace->root_attributes(), key);
        });
      }
      for (const FieldDef& f : TraceFields()) {
        if (field.text == f.name) return MakeAccessor(begin, f.type, f.read);
      }
      return UnknownField(root, begin, "trace." + field.text);
    }
    if (root.text == "span") {
      if (!in_span_)
        Fail(begin, "span fields can only be used inside any_span(...) or count_spans(...)");
      Expect(Tok::kDot, "'.' after span");
      const Token& field = Expect(Tok::kIdent, "a field name after 'span.'");
      if (field.text == "attributes") {
        std::string key = AttributeKey("span.attributes");
        return MakeAccessor(begin, Type::kAny, [key](const Ctx& c) {
          return FromPackedAttr(c.span->attributes(), key);
        });
      }
      for (const FieldDef& f : SpanFields()) {
        if (field.text == f.name) return MakeAccessor(begin, f.type, f.read);
      }
      return UnknownField(root, begin, "span." + field.text);
    }
    if (root.text == "feedback") return FeedbackPath(begin, false);
    if (root.text == "session") {
      Expect(Tok::kDot, "'.' after session");
      const Token& field = Expect(Tok::kIdent, "a field name after 'session.'");
      if (field.text == "feedback") return FeedbackPath(begin, true);
      if (field.text == "trace_count") {
        return MakeAccessor(begin, Type::kNumber, [](const Ctx& c) {
          const SessionView* s = c.trace->session();
          return s ? Val::Number(static_cast<double>(s->trace_count)) : Val{};
        });
      }
      return UnknownField(root, begin, "session." + field.text);
    }
    return UnknownField(root, begin, root.text);
  }

  // With `annotations:` declared, a feedback name it does not declare is an error at the name.
  void CheckDeclared(const std::string& name, size_t at) {
    if (schemas_ == nullptr || schemas_->Find(name) != nullptr) return;
    std::vector<std::string> names;
    for (const AnnotationSchema& s : schemas_->schemas) names.push_back(s.name);
    std::string hint = SuggestClosest(name, names);
    if (hint.empty()) {
      std::string declared;
      for (const std::string& n : names) declared += (declared.empty() ? "" : ", ") + n;
      hint = names.empty() ? " (it declares no names)" : " (declared: " + declared + ")";
    }
    Fail(at, "feedback \"" + name + "\" is not declared in annotations" + hint);
  }

  // `feedback.NAME.FIELD` (the trace's own annotations) or, with `session`,
  // `session.feedback.NAME.FIELD` (its session's, DESIGN §2.1); `["name"]` for any name.
  NodePtr FeedbackPath(size_t begin, bool session) {
    const std::string root = session ? "session.feedback" : "feedback";
    std::string name;
    size_t name_at;
    if (Accept(Tok::kLBracket)) {
      const Token& key = Expect(Tok::kString, "a quoted feedback name");
      name = key.text;
      name_at = key.begin;
      Expect(Tok::kRBracket, "']'");
    } else {
      Expect(Tok::kDot, ("'.' or '[' after " + root).c_str());
      const Token& ident = Take();
      if (ident.text.empty()) Fail(ident.begin, "expected a feedback name after '" + root + ".'");
      name = ident.text;
      name_at = ident.begin;
      if (Peek().kind != Tok::kDot) {
        // feedback.count / min_score / max_score: aggregates over all annotations.
        if (!session && name == "count") {
          return MakeAccessor(begin, Type::kNumber, [](const Ctx& c) {
            return Val::Number(static_cast<double>(c.trace->summary().feedback_count));
          });
        }
        if (!session && name == "min_score") {
          return MakeAccessor(begin, Type::kNumber,
                              [](const Ctx& c) { return FromOpt(c.trace->summary().min_score); });
        }
        if (!session && name == "max_score") {
          return MakeAccessor(begin, Type::kNumber,
                              [](const Ctx& c) { return FromOpt(c.trace->summary().max_score); });
        }
        Fail(name_at,
             root + "." + name + " needs a field: " + kFeedbackFieldList +
                 (session ? ""
                          : Suggest("feedback." + name, {"feedback.count", "feedback.min_score",
                                                         "feedback.max_score"})));
      }
    }
    CheckDeclared(name, name_at);
    if (feedback_reads_ != nullptr) feedback_reads_->push_back({name, name_at});
    Expect(Tok::kDot, (std::string("'.' and a field (") + kFeedbackFieldList + ")").c_str());
    const Token& field = Take();
    const std::string& f = field.text;
    using Lookup = const Annotation* (*)(const Ctx&, const std::string&);
    const Lookup latest = session ? +[](const Ctx& c, const std::string& n) -> const Annotation* {
      const SessionView* s = c.trace->session();
      return s ? s->Latest(n) : nullptr;
    }
    : +[](const Ctx& c, const std::string& n) { return c.trace->LatestAnnotation(n); };
    const AnnotationSchema* schema = schemas_ ? schemas_->Find(name) : nullptr;
    if (f == "score") {
      NodePtr n = MakeAccessor(begin, Type::kNumber, [name, latest](const Ctx& c) {
        const Annotation* a = latest(c, name);
        return a ? FromOpt(a->score) : Val{};
      });
      n->schema = schema;
      n->schema_value = Node::SchemaValue::kScore;
      return n;
    }
    if (f == "label" || f == "source" || f == "explanation" || f == "expected_output") {
      std::optional<std::string> Annotation::*member = f == "label"    ? &Annotation::label
                                                       : f == "source" ? &Annotation::source
                                                       : f == "explanation"
                                                           ? &Annotation::explanation
                                                           : &Annotation::expected_output;
      NodePtr n = MakeAccessor(begin, Type::kString, [name, member, latest](const Ctx& c) {
        const Annotation* a = latest(c, name);
        return a ? FromOpt(a->*member) : Val{};
      });
      if (f == "label") {
        n->schema = schema;
        n->schema_value = Node::SchemaValue::kLabel;
      }
      return n;
    }
    if (f == "count") {
      if (session) {
        return MakeAccessor(begin, Type::kNumber, [name](const Ctx& c) {
          const SessionView* s = c.trace->session();
          return s ? Val::Number(static_cast<double>(s->Count(name))) : Val{};
        });
      }
      return MakeAccessor(begin, Type::kNumber, [name](const Ctx& c) {
        return Val::Number(static_cast<double>(c.trace->AnnotationCount(name)));
      });
    }
    if (f == "metadata") {
      std::string key = AttributeKey(root + "." + name + ".metadata");
      return MakeAccessor(begin, Type::kAny, [name, key, latest](const Ctx& c) {
        return ReadMetadata(latest(c, name), key);
      });
    }
    std::vector<std::string> fields;
    for (const char* k : kFeedbackFields) fields.push_back(k);
    Fail(field.begin,
         "unknown feedback field \"" + f + "\" (" + kFeedbackFieldList + ")" + Suggest(f, fields));
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool in_span_ = false;
  int depth_ = 0;
  const AnnotationSchemas* schemas_;           // null: no schema checks
  std::vector<FeedbackRead>* feedback_reads_;  // null: not recorded
};

class Program : public CompiledExpr {
 public:
  Program(std::string text, NodePtr root) : text_(std::move(text)), root_(std::move(root)) {}

  // Each evaluation starts with an empty scratch: what the last one parsed is not needed.
  bool Matches(const Trace& trace) const override {
    ThreadScratch().Clear();
    return root_->Eval(Ctx{&trace, nullptr}).truthy();
  }
  ExprValue Evaluate(const Trace& trace) const override {
    ThreadScratch().Clear();
    return ToExprValue(root_->Eval(Ctx{&trace, nullptr}));
  }
  bool Explain(const Trace& trace, std::vector<ExplainStep>& steps) const override {
    ThreadScratch().Clear();
    return root_->Explain(Ctx{&trace, nullptr}, text_, steps);
  }
  std::string_view type_name() const override { return TypeName(root_->type); }

 private:
  std::string text_;
  NodePtr root_;
};

std::string FormatNumber(double v) {
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

}  // namespace

std::string FormatExprValue(const ExprValue& v) {
  switch (v.kind) {
    case ExprValue::Kind::kMissing: return "<missing>";
    case ExprValue::Kind::kNull: return "null";
    case ExprValue::Kind::kBool: return v.b ? "true" : "false";
    case ExprValue::Kind::kNumber: return FormatNumber(v.n);
    case ExprValue::Kind::kString: {
      std::string out = "\"";
      for (const char c : v.s) {
        switch (c) {
          case '"': out += "\\\""; break;
          case '\\': out += "\\\\"; break;
          case '\n': out += "\\n"; break;
          case '\t': out += "\\t"; break;
          case '\r': out += "\\r"; break;
          default:
            if (static_cast<unsigned char>(c) < 0x20) {
              char buf[8];
              std::snprintf(buf, sizeof buf, "\\u%04x", c);
              out += buf;
            } else {
              out += c;
            }
        }
      }
      return out + "\"";
    }
    case ExprValue::Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < v.items.size(); ++i) {
        out += (i ? ", " : "") + FormatExprValue(v.items[i]);
      }
      return out + "]";
    }
  }
  return "<missing>";
}

std::string SuggestClosest(std::string_view word, const std::vector<std::string>& candidates) {
  return Suggest(word, candidates);
}

Result<std::shared_ptr<const CompiledExpr>, ExprError> CompileExpression(
    std::string_view text, ExprKind kind, const AnnotationSchemas* schemas,
    std::vector<FeedbackRead>* feedback_reads) {
  try {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      return ExprError{0, "empty expression"};
    }
    Parser parser(text, Lexer(text).Run(), schemas, feedback_reads);
    NodePtr root = parser.ParseAll();
    if (kind == ExprKind::kBoolean && root->type != Type::kBool && root->type != Type::kAny) {
      return ExprError{root->begin,
                       "a condition must be a boolean, got " + std::string(TypeName(root->type))};
    }
    if (kind == ExprKind::kString && root->type != Type::kString && root->type != Type::kAny) {
      return ExprError{root->begin, "a sample key must be a string field, got " +
                                        std::string(TypeName(root->type))};
    }
    return std::make_shared<Program>(std::string(text), std::move(root));
  } catch (ExprError& e) {
    return std::move(e);
  }
}

}  // namespace triaged
