// sessions::internal::CookieOptions::set, validate and build_set_cookie: the options a
// store URI, sess_config_set and sess_session_set_option apply to the
// Set-Cookie line.
//
// Input: the first line is a cookie name (used when validate_cookie_name
// accepts it, else "session"); every further line is `name=value`, applied
// with CookieOptions::set. Only Errc::bad_option may be thrown, and a refused
// value leaves the options as they were. validate() refuses exactly
// SameSite=None or Partitioned without Secure. Whatever was accepted, the
// Set-Cookie line is printable ASCII (no CR, LF, NUL or other control byte),
// splits on "; " into name=value and exactly the attributes the options ask
// for, in order, each carrying the value that was set (Expires the right
// IMF-fixdate), and append_cookie_attributes writes the same attributes.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "cookie.h"
#include "fuzz_common.h"

using fuzz::escape;
using sessions::internal::CookieOptions;
using sessions::internal::Errc;
using sessions::internal::SameSite;

namespace {

bool equal(const CookieOptions& a, const CookieOptions& b) {
  return a.path == b.path && a.domain == b.domain && a.max_age == b.max_age && a.secure == b.secure &&
         a.http_only == b.http_only && a.same_site == b.same_site && a.partitioned == b.partitioned;
}

// Runs `f`; Errc::bad_option gives false, anything else goes on (a finding).
template <typename F>
bool bad_option_is_false(F&& f) {
  try {
    f();
    return true;
  } catch (const sessions::internal::Error& e) {
    if (e.code() != Errc::bad_option) throw;
    return false;
  }
}

std::vector<std::string_view> split(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + sep.size());
  }
}

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") read back into Unix time,
// independently of the code that wrote it; -1 when it is not one.
int64_t parse_http_date(std::string_view s) {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
    return -1;
  auto number = [&](size_t at, size_t n) -> int {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  struct tm tm {};
  tm.tm_mday = number(5, 2);
  tm.tm_year = number(12, 4) - 1900;
  tm.tm_hour = number(17, 2);
  tm.tm_min = number(20, 2);
  tm.tm_sec = number(23, 2);
  tm.tm_mon = -1;
  for (int i = 0; i < 12; ++i)
    if (s.substr(8, 3) == kMonths[i]) tm.tm_mon = i;
  if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_year < 0 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60 || tm.tm_mon < 0 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
    return -1;
  const time_t t = timegm(&tm);
  struct tm check {};
  gmtime_r(&t, &check);
  if (check.tm_mday != tm.tm_mday || s.substr(0, 3) != kDays[check.tm_wday]) return -1;
  return int64_t(t);
}

void check_line(const std::string& name, const std::string& value, const CookieOptions& o,
                const std::string& line) {
  for (unsigned char c : line)
    FUZZ_CHECK(c >= 0x20 && c < 0x7f, "Set-Cookie holds a control or non-ASCII byte: " + escape(line));
  const bool remove = o.max_age < 0;
  const std::vector<std::string_view> parts = split(line, "; ");
  FUZZ_CHECK(parts[0] == name + "=" + (remove ? "" : value), "the line does not start with name=value: " + escape(line));
  std::vector<std::string> expected = {"Path=" + o.path};
  if (!o.domain.empty()) expected.push_back("Domain=" + o.domain);
  if (remove) {
    expected.push_back("Max-Age=0");
    expected.push_back("Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  } else if (o.max_age > 0) {
    expected.push_back("Max-Age=" + std::to_string(o.max_age));
    expected.push_back("Expires=");  // checked below
  }
  if (o.secure) expected.push_back("Secure");
  if (o.http_only) expected.push_back("HttpOnly");
  if (o.same_site == SameSite::lax) expected.push_back("SameSite=Lax");
  if (o.same_site == SameSite::strict) expected.push_back("SameSite=Strict");
  if (o.same_site == SameSite::none) expected.push_back("SameSite=None");
  if (o.partitioned) expected.push_back("Partitioned");
  FUZZ_CHECK(parts.size() == expected.size() + 1,
             std::to_string(parts.size() - 1) + " attributes where the options set " +
                 std::to_string(expected.size()) + ": " + escape(line));
  size_t semicolons = 0;
  for (char c : line) semicolons += c == ';';
  FUZZ_CHECK(semicolons == expected.size(), "a ';' inside an attribute: " + escape(line));
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string_view got = parts[i + 1];
    if (expected[i] == "Expires=") {
      FUZZ_CHECK(fuzz::has_prefix(got, "Expires="), "Expires missing: " + escape(line));
      const int64_t when = parse_http_date(got.substr(8));
      FUZZ_CHECK(when == fuzz::kNow + o.max_age, "Expires is not now + Max-Age: " + escape(line));
    } else {
      FUZZ_CHECK(got == expected[i], "attribute " + std::to_string(i + 1) + " is " + escape(got) +
                                         ", not " + escape(expected[i]) + ": " + escape(line));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string_view> lines =
      split(std::string_view(reinterpret_cast<const char*>(data), size), "\n");
  std::string name(lines[0]);
  if (!bad_option_is_false([&] { sessions::internal::validate_cookie_name(name); })) name = "session";
  for (unsigned char c : name)
    FUZZ_CHECK(c > 0x20 && c < 0x7f && c != ';' && c != '=' && c != ',',
               "validate_cookie_name accepted " + escape(name));

  CookieOptions options;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    const size_t eq = line.find('=');
    const std::string_view key = line.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : line.substr(eq + 1);
    const CookieOptions before = options;
    bool known = false;
    if (!bad_option_is_false([&] { known = options.set(key, value); })) {
      FUZZ_CHECK(equal(before, options), "a refused value changed the options: " + escape(line));
      continue;
    }
    if (!known) FUZZ_CHECK(equal(before, options), "an unknown option changed the options: " + escape(line));
  }

  const bool valid = bad_option_is_false([&] { options.validate(); });
  const bool refusable = (options.same_site == SameSite::none || options.partitioned) && !options.secure;
  FUZZ_CHECK(valid == !refusable, std::string("validate() ") + (valid ? "accepted" : "refused") +
                                      " SameSite/Partitioned/Secure wrongly");

  const std::string value = "AQIDBAUGBwgJCgsMDQ4PEA";  // what a codec writes: base64url
  std::string line;
  sessions::internal::build_set_cookie(name, value, options, fuzz::kNow, &line);
  check_line(name, value, options, line);

  std::string attributes;
  sessions::internal::append_cookie_attributes(options, fuzz::kNow, &attributes);
  const size_t value_end = line.find("; ");
  FUZZ_CHECK(value_end != std::string::npos && line.substr(value_end) == attributes,
             "append_cookie_attributes differs from build_set_cookie: " + escape(attributes));
  return 0;
}
