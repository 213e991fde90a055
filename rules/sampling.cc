#include "rules/sampling.h"

#include <xxhash.h>

#include <string>

namespace triaged {

uint64_t SampleHash(std::string_view key, const std::optional<std::string>& salt) {
  if (!salt) return XXH64(key.data(), key.size(), 0);
  std::string buf;
  buf.reserve(salt->size() + 1 + key.size());
  buf.append(*salt);
  buf.push_back('\0');
  buf.append(key);
  return XXH64(buf.data(), buf.size(), 0);
}

double SampleUnit(uint64_t hash) { return static_cast<double>(hash >> 11) * 0x1.0p-53; }

}  // namespace triaged
