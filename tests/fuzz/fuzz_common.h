// What the libFuzzer harnesses (tests/fuzz/fuzz_*.cc) and their seed
// generator (make_seeds.cc) share: the fixed secrets and clock that make
// sealed seeds open, an invariant check that aborts, and comparisons of
// values and records that do not depend on the code under test.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error.h"
#include "record.h"
#include "value.h"
#if __has_include("msgpack_reader.h")
#include "msgpack_reader.h"  // from_msgpack, once the bounded reader is in
#endif

namespace fuzz {

// The harnesses' secrets. Seeds sealed with them (make_seeds) open, so the
// fuzzer starts past authentication; nothing else uses them.
inline const std::string kSecret = "libsessions fuzzing: the current secret, 0123456789";
inline const std::string kOldSecret = "libsessions fuzzing: a rotated-out secret, 0123456789";
// Known to make_seeds only: its cookies are SESS_STATUS_UNKNOWN_KEY.
inline const std::string kForeignSecret = "libsessions fuzzing: a secret no harness has, 0123";

// The clock of the harnesses that take one (fuzz_codec_open, fuzz_record,
// fuzz_cookie_options): 2026-01-01T00:00:00Z. Seeds sealed against it never
// expire with the calendar.
constexpr int64_t kNow = 1767225600;

// fuzz_codec_open opens every value as a cookie of this name.
inline const std::string kCodecCookieName = "session";

// fuzz_cookie_header: the cookie names of its three stores, and the token
// that the harness replaces, in the header, with the value of a memory:
// session it has just created (a server-side session cannot be a seed: its
// ID lives only in the process).
inline const char* const kGcmCookie = "gcm";
inline const char* const kHmacCookie = "hmac";
inline const char* const kMemCookie = "mem";
inline const std::string kMemPlaceholder = "@MEM@";

// An invariant does not hold: say which, and abort so libFuzzer keeps the input.
[[noreturn]] inline void violated(const char* file, int line, const char* condition,
                                  const std::string& detail) {
  std::fprintf(stderr, "\n==fuzz== INVARIANT VIOLATED at %s:%d: %s\n", file, line, condition);
  if (!detail.empty()) std::fprintf(stderr, "==fuzz== %s\n", detail.c_str());
  std::fflush(stderr);
  std::abort();
}
#define FUZZ_CHECK(cond, detail)                                             \
  do {                                                                       \
    if (!(cond)) ::fuzz::violated(__FILE__, __LINE__, #cond, (detail));      \
  } while (0)

// Printable, for messages: non-ASCII and control bytes as \xNN.
inline std::string escape(std::string_view s, size_t max = 200) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(char(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

inline bool has_prefix(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// ---- Values -----------------------------------------------------------------

// Exact equality: doubles compare by their bits (so NaN equals itself and
// -0.0 differs from 0.0), everything else by content.
inline bool same(const sessions::internal::Value& a, const sessions::internal::Value& b) {
  using sessions::internal::Type;
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Type::nil: return true;
    case Type::boolean: return *a.get_if<bool>() == *b.get_if<bool>();
    case Type::integer: return *a.get_if<int64_t>() == *b.get_if<int64_t>();
    case Type::real: return std::memcmp(a.get_if<double>(), b.get_if<double>(), sizeof(double)) == 0;
    case Type::string: return *a.get_if<std::string>() == *b.get_if<std::string>();
    case Type::bytes: return a.get_if<sessions::internal::Bytes>()->data == b.get_if<sessions::internal::Bytes>()->data;
    case Type::array: {
      const auto& x = *a.get_if<sessions::internal::Array>();
      const auto& y = *b.get_if<sessions::internal::Array>();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!same(x[i], y[i])) return false;
      return true;
    }
    case Type::map: {
      const auto& x = *a.get_if<sessions::internal::Map>();
      const auto& y = *b.get_if<sessions::internal::Map>();
      if (x.size() != y.size()) return false;
      for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j)
        if (i->first != j->first || !same(i->second, j->second)) return false;
      return true;
    }
  }
  return false;
}

inline bool same(const sessions::internal::Map& a, const sessions::internal::Map& b) {
  return same(sessions::internal::Value(a), sessions::internal::Value(b));
}

// The most containers nested in `v`, the outermost counted as 1.
inline int depth(const sessions::internal::Value& v) {
  int inner = 0;
  if (auto* a = v.get_if<sessions::internal::Array>()) {
    for (const auto& item : *a) inner = std::max(inner, depth(item));
    return inner + 1;
  }
  if (auto* m = v.get_if<sessions::internal::Map>()) {
    for (const auto& [key, item] : *m) inner = std::max(inner, depth(item));
    return inner + 1;
  }
  return 0;
}

// Every string and map key is UTF-8, as the model requires.
inline bool all_utf8(const sessions::internal::Value& v) {
  if (auto* s = v.get_if<std::string>()) return sessions::internal::is_valid_utf8(*s);
  if (auto* a = v.get_if<sessions::internal::Array>()) {
    for (const auto& item : *a)
      if (!all_utf8(item)) return false;
  }
  if (auto* m = v.get_if<sessions::internal::Map>()) {
    for (const auto& [key, item] : *m)
      if (!sessions::internal::is_valid_utf8(key) || !all_utf8(item)) return false;
  }
  return true;
}

// JSON can carry `v` exactly: no bytes (they become base64 strings) and only
// finite doubles.
inline bool json_exact(const sessions::internal::Value& v) {
  if (v.type() == sessions::internal::Type::bytes) return false;
  if (auto* d = v.get_if<double>()) return std::isfinite(*d);
  if (auto* a = v.get_if<sessions::internal::Array>()) {
    for (const auto& item : *a)
      if (!json_exact(item)) return false;
  }
  if (auto* m = v.get_if<sessions::internal::Map>()) {
    for (const auto& [key, item] : *m)
      if (!json_exact(item)) return false;
  }
  return true;
}

inline std::string describe(const sessions::internal::Value& v) {
  return escape(sessions::internal::to_json(v), 300);
}

// ---- Records ----------------------------------------------------------------

// What reading a decoded record gives. A stored value that does not unpack,
// a key that is not UTF-8 and flashes that do not unpack throw
// Errc::internal (record.h documents it): recorded as nullopt / false here.
struct RecordView {
  int64_t created = 0, last_seen = 0;
  std::optional<int64_t> max_age;
  bool keys_ok = true;
  std::vector<std::pair<std::string, std::optional<sessions::internal::Value>>> values;  // keys() order
  std::optional<sessions::internal::Map> flashes;  // read only when asked
};

// Runs `f`; an Error of code internal gives false, any other exception goes on.
template <typename F>
bool internal_error_is_false(F&& f) {
  try {
    f();
    return true;
  } catch (const sessions::internal::Error& e) {
    if (e.code() != sessions::internal::Errc::internal) throw;
    return false;
  }
}

inline RecordView read_record(sessions::internal::SessionRecord& r, bool with_flashes) {
  RecordView view;
  view.created = r.created;
  view.last_seen = r.last_seen;
  view.max_age = r.max_age;
  std::vector<std::string> keys;
  view.keys_ok = internal_error_is_false([&] { keys = r.values.keys(); });
  if (view.keys_ok) {
    FUZZ_CHECK(keys.size() == r.values.size(), "keys() and size() disagree");
    for (size_t i = 1; i < keys.size(); ++i)
      FUZZ_CHECK(keys[i - 1] < keys[i], "keys() not in strictly increasing byte order");
    for (const auto& key : keys) {
      std::optional<sessions::internal::Value> value;
      internal_error_is_false([&] {
        const sessions::internal::Value* v = r.values.find(key);
        FUZZ_CHECK(v != nullptr, "a listed key is not found: " + escape(key));
        value = *v;
      });
      if (value) FUZZ_CHECK(all_utf8(*value), "a stored value holds a string that is not UTF-8");
      view.values.emplace_back(key, std::move(value));
    }
  }
  if (with_flashes) {
    internal_error_is_false([&] { view.flashes = r.flashes(); });
    if (view.flashes) {
      for (const auto& [kind, list] : *view.flashes)
        FUZZ_CHECK(list.type() == sessions::internal::Type::array, "a flash kind does not hold an array");
    }
  }
  return view;
}

inline bool same(const RecordView& a, const RecordView& b, bool compare_flashes) {
  if (a.created != b.created || a.last_seen != b.last_seen || a.max_age != b.max_age ||
      a.keys_ok != b.keys_ok || a.values.size() != b.values.size())
    return false;
  for (size_t i = 0; i < a.values.size(); ++i) {
    const auto& [ka, va] = a.values[i];
    const auto& [kb, vb] = b.values[i];
    if (ka != kb || va.has_value() != vb.has_value()) return false;
    if (va && !same(*va, *vb)) return false;
  }
  if (compare_flashes) {
    if (a.flashes.has_value() != b.flashes.has_value()) return false;
    if (a.flashes && !same(*a.flashes, *b.flashes)) return false;
  }
  return true;
}

}  // namespace fuzz
