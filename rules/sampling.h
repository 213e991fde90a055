// Deterministic, consistent sampling (DESIGN §2.3): a hash of the key, never a random draw, so
// every replica and every replay keeps the same traces, and a trace kept at 10% is kept by
// every unsalted rule at 25%.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace triaged {

// XXH64(key, seed 0), or XXH64(salt + "\0" + key) when a salt is given.
uint64_t SampleHash(std::string_view key, const std::optional<std::string>& salt);

// u = (h >> 11) * 2^-53, uniform in [0, 1).
double SampleUnit(uint64_t hash);

// Sampled iff u < rate.
inline bool IsSampled(double unit, double rate) { return unit < rate; }

}  // namespace triaged
