#include "cookie.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "error.h"
#include "options.h"
#include "sessions.h"
#include "times.h"

namespace sessions::internal {
namespace {

bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// RFC 2616 token characters: visible ASCII except separators.
constexpr std::array<bool, 256> make_token_table() {
  std::array<bool, 256> table{};
  for (int c = 0x21; c < 0x7f; ++c) table[size_t(c)] = true;
  for (char c : std::string_view("()<>@,;:\\\"/[]?={}")) table[static_cast<unsigned char>(c)] = false;
  return table;
}
constexpr auto kTokenChar = make_token_table();

// Path is any CHAR except CTLs or ';' (RFC 6265 section 4.1.1).
void validate_path(std::string_view path) {
  if (path.empty() || path.front() != '/')
    fail(Errc::bad_option, "option path: must start with '/'");
  for (unsigned char c : path)
    if (is_ctl(c) || c >= 0x80 || c == ';')
      fail(Errc::bad_option, "option path: control characters, non-ASCII and ';' are not allowed");
}

void validate_domain(std::string_view domain) {
  for (unsigned char c : domain)
    if (!(std::isalnum(c) || c == '-' || c == '.'))
      fail(Errc::bad_option, "option domain: only letters, digits, '-' and '.' are allowed");
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// IMF-fixdate (RFC 7231), e.g. "Sun, 06 Nov 1994 08:49:37 GMT". Formatting
// costs more than the rest of a Set-Cookie line, so the last one is kept.
std::string_view http_date(int64_t t) {
  struct Cache {
    int64_t time = -1;
    char text[32];
  };
  thread_local Cache cache;
  Cache& c = cache;
  int64_t& cached_time = c.time;
  char* cached = c.text;
  if (t != cached_time) {
    static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = time_t(t);
    struct tm tm {};
    gmtime_r(&tt, &tm);
    std::snprintf(cached, sizeof(c.text), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                  tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    cached_time = t;
  }
  return cached;
}

}  // namespace

bool CookieOptions::set(std::string_view name, std::string_view value) {
  if (name == "path") {
    validate_path(value);
    path = value;
  } else if (name == "domain") {
    validate_domain(value);
    domain = value;
  } else if (name == "max_age") {
    max_age = parse_duration(name, value);
  } else if (name == "secure") {
    secure = parse_bool(name, value);
  } else if (name == "http_only") {
    http_only = parse_bool(name, value);
  } else if (name == "partitioned") {
    partitioned = parse_bool(name, value);
  } else if (name == "same_site") {
    if (value == "lax" || value == "Lax") same_site = SameSite::lax;
    else if (value == "strict" || value == "Strict") same_site = SameSite::strict;
    else if (value == "none" || value == "None") same_site = SameSite::none;
    else if (value == "" || value == "unset") same_site = SameSite::unset;
    else fail(Errc::bad_option, "option same_site: '" + std::string(value) +
                                    "' is not lax, strict, none or unset");
  } else {
    return false;
  }
  return true;
}

void CookieOptions::validate() const {
  if (same_site == SameSite::none && !secure)
    fail(Errc::bad_option, "same_site=none requires secure=true (browsers drop such cookies)");
  if (partitioned && !secure)
    fail(Errc::bad_option, "partitioned=true requires secure=true (browsers drop such cookies)");
}

namespace {

bool has_prefix_ignoring_case(std::string_view name, std::string_view prefix) {
  if (name.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(name[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

}  // namespace

void CookieOptions::validate_prefix(std::string_view name) const {
  // Browsers match the prefixes without regard to case (RFC 6265bis).
  const bool host = has_prefix_ignoring_case(name, "__Host-");
  if (!host && !has_prefix_ignoring_case(name, "__Secure-")) return;
  const std::string why = "cookie '" + std::string(name) + "': browsers drop a " +
                          (host ? "__Host-" : "__Secure-") + " cookie unless it is ";
  if (!secure) fail(Errc::bad_option, why + "Secure (set secure=true)");
  if (host && !domain.empty()) fail(Errc::bad_option, why + "host-only (remove domain=)");
  if (host && path != "/") fail(Errc::bad_option, why + "for Path=/ (set path=/)");
}

void validate_cookie_name(std::string_view name) {
  if (name.empty() || name.size() > 256)
    fail(Errc::bad_option, "cookie name must be 1 to 256 characters");
  for (unsigned char c : name)
    if (!kTokenChar[c])
      fail(Errc::bad_option, "cookie name '" + std::string(name) +
                                 "' may hold only RFC 6265 token characters");
}

namespace {

// Writes "name=value" (unless name is empty, for append_cookie_attributes)
// and the attributes.
void build_set_cookie_pieces(std::string_view name, std::string_view value, const CookieOptions& o,
                             int64_t now, std::string* out) {
  // The pieces first, then one resize and one copy each: this runs on every
  // response that carries a session.
  std::string_view pieces[16];
  size_t n = 0, total = 0;
  auto add = [&](std::string_view piece) {
    pieces[n++] = piece;
    total += piece.size();
  };
  const bool remove = o.max_age < 0;
  char max_age[24];
  if (!name.empty()) {
    add(name);
    add("=");
    if (!remove) add(value);
  }
  add("; Path=");
  add(o.path);
  if (!o.domain.empty()) {
    add("; Domain=");
    add(o.domain);
  }
  if (remove) {
    add("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  } else if (o.max_age > 0) {
    add("; Max-Age=");
    auto [end, ec] = std::to_chars(max_age, max_age + sizeof max_age, o.max_age);
    (void)ec;  // 24 characters hold any int64
    add(std::string_view(max_age, size_t(end - max_age)));
    add("; Expires=");
    // Expires stays within what an HTTP date (a four-digit year) can say.
    add(http_date(std::min(saturating_add(now, o.max_age), kMaxTime)));
  }
  if (o.secure) add("; Secure");
  if (o.http_only) add("; HttpOnly");
  switch (o.same_site) {
    case SameSite::lax: add("; SameSite=Lax"); break;
    case SameSite::strict: add("; SameSite=Strict"); break;
    case SameSite::none: add("; SameSite=None"); break;
    case SameSite::unset: break;
  }
  if (o.partitioned) add("; Partitioned");
  size_t at = out->size();
  out->resize(at + total);
  char* p = out->data() + at;
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(p, pieces[i].data(), pieces[i].size());
    p += pieces[i].size();
  }
}

}  // namespace

void build_set_cookie(std::string_view name, std::string_view value, const CookieOptions& o,
                      int64_t now, std::string* out) {
  if (name.empty()) fail(Errc::internal, "Set-Cookie without a cookie name");
  build_set_cookie_pieces(name, value, o, now, out);
}

void append_cookie_attributes(const CookieOptions& options, int64_t now, std::string* out) {
  build_set_cookie_pieces(std::string_view(), std::string_view(), options, now, out);
}

void CookieJar::reset(std::string_view header) {
  if (header.size() > SESS_MAX_COOKIE_HEADER)
    fail(Errc::header_too_large, "Cookie header of " + std::to_string(header.size()) +
                                     " bytes exceeds the limit of 65536");
  header_.assign(header);
}

namespace {

// The index i of a cookie named `wanted.i` (1 to 31, no leading zero), or 0.
size_t chunk_index(std::string_view cookie, std::string_view wanted) {
  if (cookie.size() < wanted.size() + 2 || cookie.size() > wanted.size() + 3 ||
      cookie[wanted.size()] != '.' || cookie.substr(0, wanted.size()) != wanted)
    return 0;
  std::string_view digits = cookie.substr(wanted.size() + 1);
  if (digits[0] < '1' || digits[0] > '9') return 0;
  size_t index = size_t(digits[0] - '0');
  if (digits.size() == 2) {
    if (digits[1] < '0' || digits[1] > '9') return 0;
    index = index * 10 + size_t(digits[1] - '0');
  }
  return index < 32 ? index : 0;
}

}  // namespace

CookieJar::Candidates CookieJar::find(std::string_view wanted, uint32_t* chunks) const {
  Candidates out;
  std::string_view rest = header_;
  while (!rest.empty() && (out.count < kMaxCandidates || chunks)) {
    size_t semi = rest.find(';');
    std::string_view item = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;  // not name=value: ignored, as browsers do
    const std::string_view cookie = trim(item.substr(0, eq));
    if (cookie != wanted || wanted.empty()) {
      if (chunks)
        if (size_t index = chunk_index(cookie, wanted)) *chunks |= uint32_t(1) << index;
      continue;
    }
    if (out.count == kMaxCandidates) continue;
    std::string_view value = trim(item.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    out.values[out.count++] = value;
  }
  return out;
}

}  // namespace sessions::internal
