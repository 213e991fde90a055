// The run-time side of the config's `annotations:` schemas (DESIGN §1.5): whether a decoded
// annotation keeps to the schema of its name, what it gains from it (the schema version, a
// correction), and the bounded name label it is counted under.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "rules/event.h"
#include "rules/result.h"
#include "rules/ruleset.h"

namespace triaged {

namespace reason {
inline constexpr const char* kAnnotationSchema = "annotation_schema";
}  // namespace reason

// Checks `annotation` against `schemas`: nullopt when it keeps to them, else why not, naming the
// schema rule it breaks (`annotation "thumbs": label "dwn" is not one of [up, down]
// (annotations.thumbs, version 2)`). A declared categorical needs a label among its values (a
// score alone breaks it), a declared score a score within [min, max]; text takes anything. With
// `strict`, an undeclared name breaks the schemas. An annotation that keeps to its declared
// schema gets the schema's version, and with `correction` its label (else explanation) becomes
// its expected_output unless it has one. Without an `annotations:` section nothing is checked.
std::optional<std::string> CheckAnnotation(const AnnotationSchemas& schemas,
                                           Annotation& annotation);

// Checks every annotation of `msg` with CheckAnnotation and removes those that break their
// schema; nullopt when none did, else the message's one dead-letter error (reason
// `annotation_schema`) giving each broken annotation's reason. The message's other events stay.
std::optional<Error> CheckAnnotations(const AnnotationSchemas& schemas, DecodedMessage& msg);

// The `name` label of triaged_annotations_total: the annotation's name when `annotations:`
// declares it, else "other" (also without an `annotations:` section), so the label's values are
// bounded by the config, not by the traffic.
std::string_view AnnotationMetricName(const AnnotationSchemas& schemas,
                                      const Annotation& annotation);
// The `source` label: one of the sources of DESIGN §1.2, else "unknown".
std::string_view AnnotationMetricSource(const Annotation& annotation);

}  // namespace triaged
