// Times (Unix seconds) and durations (seconds), and the arithmetic on them.
//
// Times come from records and cookies that other writers can reach, so every
// sum or difference here is saturating (never undefined behaviour), and a
// record's times are refused as malformed outside the ranges below.
#pragma once

#include <cstdint>
#include <limits>

namespace sessions::internal {

// The longest duration an option accepts (400 years): now + any of them fits
// an int64 and a cookie's Max-Age.
constexpr int64_t kMaxDuration = int64_t(400) * 365 * 86400;
// The latest time a record may hold: 9999-12-31T23:59:59Z, the last second an
// HTTP date (four-digit year) can express.
constexpr int64_t kMaxTime = 253402300799;

constexpr bool is_sane_time(int64_t t) { return t >= 0 && t <= kMaxTime; }

constexpr int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}

constexpr int64_t saturating_sub(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r))
    return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}

}  // namespace sessions::internal
