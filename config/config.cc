#include "config/config.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

namespace triaged {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Parses leading decimal digits into `out`; false on overflow or when there are none.
bool ParseDigits(std::string_view text, size_t& pos, uint64_t& out, size_t& ndigits) {
  out = 0;
  ndigits = 0;
  while (pos < text.size() && IsDigit(text[pos])) {
    if (__builtin_mul_overflow(out, uint64_t{10}, &out) ||
        __builtin_add_overflow(out, static_cast<uint64_t>(text[pos] - '0'), &out)) {
      return false;
    }
    ++pos;
    ++ndigits;
  }
  return ndigits > 0;
}

}  // namespace

std::string ConfigError::ToString() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line);
    if (column > 0) out += ':' + std::to_string(column);
  }
  out += warning ? ": warning: " : ": ";
  out += message;
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  // With the built-in SHA-256 this fails only when libcrypto cannot allocate.
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw std::bad_alloc();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

bool ParseDuration(std::string_view text, int64_t& out_ns) {
  // One or more NUMBER UNIT terms (`1h30m`); NUMBER may have a fraction (`1.5s`).
  if (text.empty()) return false;
  uint64_t total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    uint64_t whole = 0, frac = 0;
    size_t whole_digits = 0, frac_digits = 0;
    if (!ParseDigits(text, pos, whole, whole_digits)) return false;
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      // Digits past nanosecond precision of the largest unit cannot matter; cap at 18.
      size_t start = pos;
      while (pos < text.size() && IsDigit(text[pos])) {
        if (pos - start < 18) {
          frac = frac * 10 + static_cast<uint64_t>(text[pos] - '0');
          ++frac_digits;
        }
        ++pos;
      }
      if (pos == start) return false;
    }
    size_t unit_start = pos;
    while (pos < text.size() && text[pos] >= 'a' && text[pos] <= 'z') ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    uint64_t mult;
    if (unit == "ms") {
      mult = 1'000'000;
    } else if (unit == "s") {
      mult = 1'000'000'000;
    } else if (unit == "m") {
      mult = 60'000'000'000;
    } else if (unit == "h") {
      mult = 3'600'000'000'000;
    } else if (unit == "d") {
      mult = 86'400'000'000'000;
    } else {
      return false;
    }
    uint64_t term;
    if (__builtin_mul_overflow(whole, mult, &term)) return false;
    if (frac_digits > 0) {
      unsigned __int128 f = static_cast<unsigned __int128>(frac) * mult;
      for (size_t k = 0; k < frac_digits; ++k) f /= 10;
      if (__builtin_add_overflow(term, static_cast<uint64_t>(f), &term)) return false;
    }
    if (__builtin_add_overflow(total, term, &total)) return false;
  }
  if (total > static_cast<uint64_t>(INT64_MAX)) return false;
  out_ns = static_cast<int64_t>(total);
  return true;
}

bool ParseSize(std::string_view text, uint64_t& out_bytes) {
  size_t pos = 0;
  uint64_t n = 0;
  size_t digits = 0;
  if (!ParseDigits(text, pos, n, digits)) return false;
  std::string_view unit = text.substr(pos);
  uint64_t mult;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "KiB") {
    mult = uint64_t{1} << 10;
  } else if (unit == "MiB") {
    mult = uint64_t{1} << 20;
  } else if (unit == "GiB") {
    mult = uint64_t{1} << 30;
  } else if (unit == "TiB") {
    mult = uint64_t{1} << 40;
  } else {
    return false;
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(n, mult, &bytes)) return false;
  out_bytes = bytes;
  return true;
}

Result<std::shared_ptr<const Config>, std::vector<ConfigError>> LoadConfigFile(
    const std::string& path, EnvLookup getenv_fn) {
  const bool from_stdin = path == kStdinConfigPath;
  const std::string name = from_stdin ? std::string(kStdinConfigName) : path;
  auto fail = [&](int err) {
    return std::vector<ConfigError>{
        {name, 0, 0, std::string("cannot read: ") + std::strerror(err)}};
  };
  std::FILE* f = from_stdin ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) return fail(errno);
  // Reads at most one byte past the limit: a larger file is refused without being read whole.
  std::string text;
  char buf[65536];
  size_t n;
  while (text.size() <= kMaxConfigBytes &&
         (n = std::fread(buf, 1, std::min(sizeof buf, kMaxConfigBytes + 1 - text.size()), f)) > 0) {
    text.append(buf, n);
  }
  int err = std::ferror(f) ? (errno != 0 ? errno : EIO) : 0;
  if (!from_stdin) std::fclose(f);
  if (err != 0) return fail(err);
  if (text.size() > kMaxConfigBytes) {
    return std::vector<ConfigError>{{name, 0, 0,
                                     "config file is larger than " +
                                         std::to_string(kMaxConfigBytes >> 20) + " MiB (" +
                                         std::to_string(kMaxConfigBytes) + " bytes)"}};
  }
  return LoadConfigString(text, name, getenv_fn);
}

}  // namespace triaged
