// `triaged explain`: replays the input like `replay` and, for one trace, prints every
// evaluation with each rule's verdict and the values that decided it.
#include <cctype>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "daemon/command_util.h"
#include "rules/annotation_schema.h"
#include "rules/decode.h"
#include "tools/commands.h"
#include "tools/input_lines.h"
#include "tools/replay.h"

namespace triaged {
namespace {

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

class ExplainObserver : public EngineObserver {
 public:
  ExplainObserver(std::string trace_id, std::ostream& out)
      : trace_id_(std::move(trace_id)), out_(out) {}

  bool seen() const { return seen_; }

  void OnClose(const Trace& trace, CloseReason reason, int64_t now_ns) override {
    if (trace.id() != trace_id_) return;
    seen_ = true;
    out_ << "trace " << trace.id() << " closed at " << FormatRfc3339(now_ns) << " ("
         << CloseReasonName(reason) << ")\n";
  }

  void OnEvict(const Trace& trace, std::string_view reason, int64_t now_ns) override {
    if (trace.id() != trace_id_) return;
    out_ << "trace " << trace.id() << " forgotten at " << FormatRfc3339(now_ns) << " (" << reason
         << ")\n";
  }

  void OnEvaluation(const Trace& trace, Trigger trigger, int64_t now_ns,
                    const std::vector<RuleVerdict>& verdicts) override {
    if (trace.id() != trace_id_) return;
    seen_ = true;
    ++evaluations_;
    out_ << "\nevaluation " << evaluations_ << " (trigger " << TriggerName(trigger) << ", at "
         << FormatRfc3339(now_ns) << ")\n";
    WriteTraceFacts(trace);
    const RuleSet& rules = *rules_;
    if (rules.filter) {
      const bool passed = rules.filter->Matches(trace);
      out_ << "  filter: " << (passed ? "passed" : "failed, no rule sees the trace") << "\n    "
           << rules.filter_text << "\n";
      WriteSteps(*rules.filter, trace);
    }
    for (const RuleVerdict& v : verdicts) {
      const RuleSpec& rule = rules.rules[v.rule];
      out_ << "  rule " << rule.name << ": " << OutcomeName(v.outcome);
      if (!v.routed.empty()) {
        out_ << " -> ";
        for (size_t i = 0; i < v.routed.size(); ++i) {
          out_ << (i ? ", " : "") << rules.destinations[v.routed[i]].name;
        }
      }
      if (!v.limited.empty()) {
        out_ << " (limit spent: ";
        for (size_t i = 0; i < v.limited.size(); ++i) {
          out_ << (i ? ", " : "") << rules.destinations[v.limited[i]].name;
        }
        out_ << ")";
      }
      out_ << "\n    when: " << rule.when_text << "\n";
      if (v.outcome == RuleVerdict::Outcome::kShadowed ||
          v.outcome == RuleVerdict::Outcome::kFilteredOut) {
        continue;
      }
      WriteSteps(*rule.when, trace);
      if (v.outcome != RuleVerdict::Outcome::kNoMatch) {
        out_ << "    sample: rate " << FormatNumber(rule.sample_rate) << ", key "
             << rule.sample_key_text << " = \"" << v.sample_key
             << "\", u = " << FormatNumber(v.sample_unit) << " -> "
             << (v.sample_unit < rule.sample_rate ? "kept" : "dropped") << "\n";
      }
    }
  }

  void set_rules(const RuleSet* rules) { rules_ = rules; }

 private:
  // How each part of `expr` evaluated on the trace, one line each.
  void WriteSteps(const CompiledExpr& expr, const Trace& trace) {
    std::vector<ExplainStep> steps;
    expr.Explain(trace, steps);
    for (const ExplainStep& step : steps) {
      out_ << "      " << (step.result ? "true " : "false") << "  " << step.text;
      if (!step.detail.empty()) out_ << "   [" << step.detail << "]";
      out_ << "\n";
    }
  }

  void WriteTraceFacts(const Trace& trace) {
    const TraceSummary& s = trace.summary();
    out_ << "  spans " << s.span_count << ", errors " << s.error_count;
    if (s.duration_ms) out_ << ", duration_ms " << FormatNumber(*s.duration_ms);
    if (s.model) out_ << ", model " << *s.model;
    if (s.span_count == 0) out_ << " (context missing)";
    out_ << "\n";
    for (const Annotation& a : trace.annotations()) {
      out_ << "  feedback " << a.name << ":";
      if (a.score) out_ << " score " << FormatNumber(*a.score);
      if (a.label) out_ << " label \"" << *a.label << "\"";
      if (a.source) out_ << " source " << *a.source;
      out_ << "\n";
    }
  }

  std::string trace_id_;
  std::ostream& out_;
  const RuleSet* rules_ = nullptr;
  bool seen_ = false;
  int evaluations_ = 0;
};

}  // namespace

int RunExplain(const ExplainOptions& options, std::ostream& out, std::ostream& err) {
  if (StdinReadTwice("explain", options.config_path, options.inputs, err)) return kExitUsage;
  std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
  if (!config) return kExitConfig;
  std::string trace_id;
  if (!NormalizeId(options.trace_id, trace_id)) {
    err << "explain: \"" << options.trace_id << "\" is not a trace id\n";
    return kExitUsage;
  }
  Replayer replayer(config, /*on_route=*/{}, /*documents=*/false);
  ExplainObserver observer(trace_id, out);
  observer.set_rules(config->rules.get());
  replayer.engine().set_observer(&observer);
  // An annotation of the trace refused for its schema never reaches the evaluations below:
  // say so where it would have been read (DESIGN §1.5).
  replayer.set_dead_letter_fn([&](const DeadLetter& record) {
    if (record.reason != reason::kAnnotationSchema) return;
    std::string payload(record.payload);
    for (char& c : payload) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (payload.find(trace_id) == std::string::npos) return;
    out << "line " << record.origin.line << ": refused (" << record.reason
        << "): " << record.message << "\n";
  });
  const bool read_all = ForEachInputLine(
      options.inputs, err, [&](std::string_view line, uint64_t n) { replayer.Line(line, n); });
  replayer.Finish();
  if (!read_all) return kExitNoInput;
  if (!observer.seen()) {
    err << "explain: trace " << trace_id << " does not occur in the input\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace triaged
