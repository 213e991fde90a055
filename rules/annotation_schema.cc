#include "rules/annotation_schema.h"

#include <algorithm>
#include <vector>

#include "rules/expr.h"

namespace triaged {
namespace {

// A value as a reason quotes it: whole, or past 64 bytes its start and its size, so that a
// hostile label does not fill the dead letter's message.
std::string Quoted(std::string_view value) {
  constexpr size_t kShown = 64;
  if (value.size() <= kShown) return "\"" + std::string(value) + "\"";
  size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return "\"" + std::string(value.substr(0, cut)) + "...\" (" + std::to_string(value.size()) +
         " bytes)";
}

std::string Number(double v) {
  ExprValue e;
  e.kind = ExprValue::Kind::kNumber;
  e.n = v;
  return FormatExprValue(e);
}

std::string Range(const AnnotationSchema& s) {
  return "[" + (s.min ? Number(*s.min) : "-inf") + ", " + (s.max ? Number(*s.max) : "inf") + "]";
}

// `(annotations.NAME, version N)`: the schema rule broken.
std::string Rule(const AnnotationSchema& s) {
  return " (annotations." + s.name + (s.version ? ", version " + std::to_string(*s.version) : "") +
         ")";
}

std::optional<std::string> Broken(const AnnotationSchema& s, const Annotation& a) {
  const std::string what = "annotation " + Quoted(a.name) + ": ";
  switch (s.type) {
    case AnnotationSchema::Type::kCategorical: {
      std::string values;
      for (const std::string& v : s.values) values += (values.empty() ? "" : ", ") + v;
      if (!a.label) {
        return what + "no label, expected one of [" + values + "]" + Rule(s);
      }
      if (std::find(s.values.begin(), s.values.end(), *a.label) == s.values.end()) {
        return what + "label " + Quoted(*a.label) + " is not one of [" + values + "]" + Rule(s);
      }
      return std::nullopt;
    }
    case AnnotationSchema::Type::kScore:
      if (!a.score) return what + "no score, expected a score in " + Range(s) + Rule(s);
      if ((s.min && *a.score < *s.min) || (s.max && *a.score > *s.max)) {
        return what + "score " + Number(*a.score) + " is outside " + Range(s) + Rule(s);
      }
      return std::nullopt;
    case AnnotationSchema::Type::kText: return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> CheckAnnotation(const AnnotationSchemas& schemas,
                                           Annotation& annotation) {
  if (!schemas.declared) return std::nullopt;
  const AnnotationSchema* s = schemas.Find(annotation.name);
  if (s == nullptr) {
    if (!schemas.strict) return std::nullopt;
    std::vector<std::string> names;
    for (const AnnotationSchema& d : schemas.schemas) names.push_back(d.name);
    return "annotation " + Quoted(annotation.name) +
           ": the name is not declared in annotations (annotations.strict)" +
           SuggestClosest(annotation.name, names);
  }
  if (std::optional<std::string> why = Broken(*s, annotation)) return why;
  annotation.schema_version = s->version;
  if (s->correction && (!annotation.expected_output || annotation.expected_output->empty())) {
    if (annotation.label && !annotation.label->empty()) {
      annotation.expected_output = annotation.label;
    } else if (annotation.explanation && !annotation.explanation->empty()) {
      annotation.expected_output = annotation.explanation;
    }
  }
  return std::nullopt;
}

std::optional<Error> CheckAnnotations(const AnnotationSchemas& schemas, DecodedMessage& msg) {
  if (!schemas.declared || msg.annotations.empty()) return std::nullopt;
  constexpr size_t kReasonsShown = 3;
  std::string message;
  size_t broken = 0;
  std::vector<Annotation> kept;
  kept.reserve(msg.annotations.size());
  for (Annotation& a : msg.annotations) {
    std::optional<std::string> why = CheckAnnotation(schemas, a);
    if (!why) {
      kept.push_back(std::move(a));
      continue;
    }
    if (++broken <= kReasonsShown) message += (message.empty() ? "" : "; ") + *why;
  }
  msg.annotations = std::move(kept);  // with their schema versions and corrections
  if (broken == 0) return std::nullopt;
  if (broken > kReasonsShown) {
    message += " (and " + std::to_string(broken - kReasonsShown) + " more)";
  }
  return MakeError(reason::kAnnotationSchema, std::move(message));
}

std::string_view AnnotationMetricName(const AnnotationSchemas& schemas,
                                      const Annotation& annotation) {
  const AnnotationSchema* s = schemas.declared ? schemas.Find(annotation.name) : nullptr;
  return s != nullptr ? std::string_view(s->name) : std::string_view("other");
}

std::string_view AnnotationMetricSource(const Annotation& annotation) {
  static constexpr std::string_view kSources[] = {"end_user", "llm_judge", "human", "code",
                                                  "support"};
  if (annotation.source) {
    for (std::string_view s : kSources) {
      if (*annotation.source == s) return s;
    }
  }
  return "unknown";
}

}  // namespace triaged
