#include "config/source_map.h"

#include <algorithm>
#include <cstdlib>

namespace triaged::config_internal {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsWhite(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// Bytes of the UTF-8 encoding of a code point given in hex; 1 if the hex is malformed (yaml-cpp
// would have rejected the scalar anyway).
size_t Utf8LengthOfHex(std::string_view hex) {
  unsigned long cp = 0;
  for (char c : hex) {
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0) return 1;
    cp = cp * 16 + static_cast<unsigned long>(d);
  }
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

}  // namespace

LineIndex::LineIndex(std::string_view text) : size_(text.size()) {
  starts_.push_back(0);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') starts_.push_back(i + 1);
  }
}

size_t LineIndex::OffsetOf(int line, int column) const {
  if (line < 0) return 0;
  if (static_cast<size_t>(line) >= starts_.size()) return size_;
  size_t start = starts_[static_cast<size_t>(line)];
  size_t end = static_cast<size_t>(line) + 1 < starts_.size()
                   ? starts_[static_cast<size_t>(line) + 1] - 1
                   : size_;
  size_t col = column < 0 ? 0 : static_cast<size_t>(column);
  return std::min(start + col, end);
}

void LineIndex::LineColumnOf(size_t offset, int& line, int& column) const {
  offset = std::min(offset, size_);
  auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
  size_t idx = static_cast<size_t>(it - starts_.begin()) - 1;
  line = static_cast<int>(idx);
  column = static_cast<int>(offset - starts_[idx]);
}

ExpandedText ExpandedText::Expand(std::string_view original, EnvLookup getenv_fn,
                                  std::vector<ExpandError>& errors) {
  if (getenv_fn == nullptr)
    getenv_fn = [](const char* name) -> const char* { return std::getenv(name); };
  ExpandedText out;
  size_t literal_start = 0;
  auto flush_literal = [&](size_t end) {
    if (end > literal_start) {
      out.segments_.push_back({out.text_.size(), literal_start, true});
      out.text_.append(original.substr(literal_start, end - literal_start));
    }
  };
  auto emit_expansion = [&](size_t dollar, size_t end, std::string_view value) {
    flush_literal(dollar);
    out.segments_.push_back({out.text_.size(), dollar, false});
    out.text_.append(value);
    literal_start = end;
  };

  // A light lexer: enough to tell comments from quoted `#`s. YAML quotes only open at the start
  // of a token, so an apostrophe inside a word (`don't`) does not count.
  bool in_comment = false;
  char quote = 0;
  size_t i = 0;
  while (i < original.size()) {
    char c = original[i];
    char prev = i == 0 ? '\n' : original[i - 1];
    if (c == '\n') {
      in_comment = false;
      quote = 0;
      ++i;
      continue;
    }
    if (in_comment) {
      ++i;
      continue;
    }
    if (quote != 0) {
      if (quote == '"' && c == '\\' && i + 1 < original.size() && original[i + 1] != '\n') {
        i += 2;
        continue;
      }
      if (c == quote) quote = 0;
    } else if ((c == '"' || c == '\'') &&
               (IsWhite(prev) || prev == ':' || prev == '[' || prev == '{' || prev == ',')) {
      quote = c;
    } else if (c == '#' && IsWhite(prev)) {
      in_comment = true;
      ++i;
      continue;
    }
    if (c != '$' || i + 1 >= original.size()) {
      ++i;
      continue;
    }
    char next = original[i + 1];
    if (next == '$') {
      emit_expansion(i, i + 2, "$");
      i += 2;
      continue;
    }
    if (next != '{') {
      ++i;
      continue;
    }
    // ${NAME}, or with an operator as in the shell (and Vector, Compose): ${NAME:-default} and
    // ${NAME-default} substitute a default, ${NAME:?message} and ${NAME?message} fail with a
    // message; with `:` an empty value counts as unset.
    size_t j = i + 2;
    size_t name_begin = j;
    if (j < original.size() && IsNameStart(original[j])) {
      while (j < original.size() && IsNameChar(original[j])) ++j;
    }
    std::string name(original.substr(name_begin, j - name_begin));
    char op = 0;         // '-' (default) or '?' (required), 0 for none
    bool colon = false;  // the operator treats an empty value as unset
    size_t arg_begin = 0, arg_end = 0;
    bool ok = !name.empty();
    if (ok && j < original.size()) {
      size_t k = j;
      if (original[k] == ':') {
        colon = true;
        ++k;
      }
      if (k < original.size() && (original[k] == '-' || original[k] == '?')) {
        op = original[k];
        arg_begin = k + 1;
        k = arg_begin;
        while (k < original.size() && original[k] != '}' && original[k] != '\n') ++k;
        arg_end = k;
        j = k;
      } else if (colon) {
        ok = false;
      }
    }
    ok = ok && j < original.size() && original[j] == '}';
    if (!ok) {
      errors.push_back({i,
                        "malformed environment reference (expected ${NAME}, ${NAME:-default}, "
                        "${NAME-default}, ${NAME:?message} or ${NAME?message}; write $$ for a "
                        "literal $)"});
      ++i;
      continue;
    }
    const char* value = getenv_fn(name.c_str());
    const bool unset = value == nullptr || (colon && *value == '\0');
    const std::string_view arg = original.substr(arg_begin, arg_end - arg_begin);
    std::string_view replacement;
    if (!unset) {
      replacement = value;
    } else if (op == '-') {
      replacement = arg;
    } else if (op == '?') {
      errors.push_back({i, "environment variable " + name +
                               (value == nullptr ? " is not set" : " is empty") +
                               (arg.empty() ? std::string() : ": " + std::string(arg))});
    } else {
      errors.push_back({i, "environment variable " + name + " is not set"});
    }
    emit_expansion(i, j + 1, replacement);
    i = j + 1;
  }
  flush_literal(original.size());
  return out;
}

size_t ExpandedText::ToOriginal(size_t expanded_offset) const {
  if (segments_.empty()) return expanded_offset;
  auto it = std::upper_bound(segments_.begin(), segments_.end(), expanded_offset,
                             [](size_t off, const Segment& s) { return off < s.expanded_begin; });
  if (it == segments_.begin()) return expanded_offset;
  const Segment& s = *(it - 1);
  return s.literal ? s.original_begin + (expanded_offset - s.expanded_begin) : s.original_begin;
}

size_t ScalarValueOffsetToSource(std::string_view src, size_t mark_offset, std::string_view value,
                                 size_t value_offset) {
  const size_t n = src.size();
  size_t p = std::min(mark_offset, n);
  // Node properties (`&anchor`, `!tag`) precede the scalar token.
  while (p < n && (src[p] == '&' || src[p] == '!')) {
    while (p < n && !IsWhite(src[p])) ++p;
    while (p < n && IsWhite(src[p])) ++p;
  }
  if (p >= n) return n;
  const char style = src[p];
  const bool block = style == '|' || style == '>';
  const bool dquoted = style == '"';
  const bool squoted = style == '\'';
  size_t indent = 0;
  if (block) {
    while (p < n && src[p] != '\n') ++p;  // header and optional comment
    if (p < n) ++p;
    // Auto-detected indentation: that of the first non-blank content line.
    size_t q = p;
    while (q < n) {
      size_t spaces = 0;
      while (q + spaces < n && src[q + spaces] == ' ') ++spaces;
      if (q + spaces < n && src[q + spaces] != '\n' && src[q + spaces] != '\r') {
        indent = spaces;
        break;
      }
      q += spaces;
      while (q < n && src[q] != '\n') ++q;
      if (q < n) ++q;
    }
  } else if (dquoted || squoted) {
    ++p;
  }
  const size_t content_start = p;

  size_t vi = 0;
  bool at_line_start = block;
  while (p < n) {
    if (at_line_start) {
      for (size_t k = 0; k < indent && p < n && src[p] == ' '; ++k) ++p;
      at_line_start = false;
      continue;
    }
    const char s = src[p];
    if (vi >= value_offset) {
      // Whitespace folded away in the value precedes the byte we are looking for.
      if (vi < value.size() && IsWhite(s) && s != value[vi]) {
        if (s == '\n' && block) at_line_start = true;
        ++p;
        continue;
      }
      return p;
    }
    const char v = value[vi];
    if (dquoted && s == '\\' && p + 1 < n) {
      const char e = src[p + 1];
      if (e == '\n' || e == '\r') {  // escaped line break: contributes nothing
        p += 2;
        if (e == '\r' && p < n && src[p] == '\n') ++p;
        while (p < n && IsBlank(src[p])) ++p;
        continue;
      }
      size_t consumed = 2, produced = 1;
      if (e == 'x' || e == 'u' || e == 'U') {
        size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        consumed = 2 + digits;
        produced = Utf8LengthOfHex(src.substr(p + 2, digits));
      } else if (e == '_' || e == 'N') {
        produced = 2;
      } else if (e == 'L' || e == 'P') {
        produced = 3;
      }
      if (vi + produced > value_offset) return p;
      vi += produced;
      p += consumed;
      continue;
    }
    if (squoted && s == '\'' && v == '\'' && p + 1 < n && src[p + 1] == '\'') {
      p += 2;
      ++vi;
      continue;
    }
    if (s == v) {
      if (s == '\n' && block) at_line_start = true;
      ++p;
      ++vi;
      continue;
    }
    if (IsWhite(s)) {  // source whitespace folded or stripped in the value
      if (s == '\n' && block) at_line_start = true;
      ++p;
      continue;
    }
    if (v == ' ' || v == '\n') {  // value whitespace produced by folding a line break
      ++vi;
      continue;
    }
    return content_start;  // cannot align: point at the scalar
  }
  return n;
}

}  // namespace triaged::config_internal
