// Environment expansion of config text (`${VAR}`, `${VAR:-default}`, `$$`) done before YAML
// parsing, plus the position bookkeeping that lets every error point at the line and column of
// the file the user wrote rather than the expanded text yaml-cpp saw.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace triaged::config_internal {

// 0-based line and column (bytes) <-> byte offset for one text.
class LineIndex {
 public:
  explicit LineIndex(std::string_view text);
  // Clamps to the text: a line past the end maps to the end, a column past the line's end to
  // the line's end.
  size_t OffsetOf(int line, int column) const;
  void LineColumnOf(size_t offset, int& line, int& column) const;

 private:
  std::vector<size_t> starts_;
  size_t size_;
};

// An error found while expanding, at a byte offset of the original text.
struct ExpandError {
  size_t offset = 0;
  std::string message;
};

class ExpandedText {
 public:
  // Expands `original`. Comments (a `#` at a line start or after blank, outside quotes) are copied
  // verbatim so an unset variable mentioned in a comment is not an error.
  static ExpandedText Expand(std::string_view original, EnvLookup getenv_fn,
                             std::vector<ExpandError>& errors);

  const std::string& text() const { return text_; }
  // The original offset an expanded byte came from; bytes produced by an expansion map to the
  // `$` that started it.
  size_t ToOriginal(size_t expanded_offset) const;

 private:
  struct Segment {
    size_t expanded_begin;
    size_t original_begin;
    bool literal;  // copied byte for byte (else produced by an expansion)
  };
  std::string text_;
  std::vector<Segment> segments_;
};

// For a scalar node whose token starts at `mark_offset` in `source` (the text yaml-cpp parsed)
// and whose parsed value is `value`, returns the source offset of value byte `value_offset`.
// Handles plain, single- and double-quoted (escapes) and block (`|`, `>`) scalars, including
// multi-line folding. When the value cannot be aligned with the source it returns the offset of
// the scalar's first content byte.
size_t ScalarValueOffsetToSource(std::string_view source, size_t mark_offset,
                                 std::string_view value, size_t value_offset);

}  // namespace triaged::config_internal
