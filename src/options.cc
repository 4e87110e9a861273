#include "options.h"

#include <cctype>
#include <charconv>
#include <limits>

#include "error.h"

namespace sessions {
namespace {

[[noreturn]] void bad_value(std::string_view name, std::string_view value, const char* expected) {
  fail(Errc::bad_option, "option " + std::string(name) + ": '" + std::string(value) +
                             "' is not " + expected);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      int hi = i + 2 < in.size() ? hex_digit(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? hex_digit(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) fail(Errc::bad_uri, "bad percent-escape in URI");
      out.push_back(char(hi << 4 | lo));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

bool parse_bool(std::string_view name, std::string_view v) {
  if (v == "1" || v == "true" || v == "on" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "off" || v == "no") return false;
  bad_value(name, v, "a boolean (true/false, on/off, yes/no, 1/0)");
}

int64_t parse_int(std::string_view name, std::string_view v, int64_t min, int64_t max) {
  int64_t out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size())
    bad_value(name, v, "an integer");
  if (out < min || out > max)
    bad_value(name, v, ("between " + std::to_string(min) + " and " + std::to_string(max)).c_str());
  return out;
}

int64_t parse_duration(std::string_view name, std::string_view v) {
  int64_t unit = 1;
  std::string_view digits = v;
  if (!v.empty()) {
    switch (v.back()) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: unit = 0;
    }
    if (unit) digits.remove_suffix(1); else unit = 1;
  }
  // Bounded so that now + duration never overflows and fits a cookie's Max-Age.
  constexpr int64_t kMaxSeconds = int64_t(400) * 365 * 86400;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
    bad_value(name, v, "a duration (seconds, or a number with s, m, h or d)");
  if (n > kMaxSeconds / unit || n < -kMaxSeconds / unit) bad_value(name, v, "a duration under 400 years");
  return n * unit;
}

ParsedUri parse_uri(std::string_view uri) {
  ParsedUri out;
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0)
    fail(Errc::bad_uri, "store URI '" + std::string(uri) + "' has no scheme (try \"memory:\")");
  for (char c : uri.substr(0, colon)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
      fail(Errc::bad_uri, "store URI '" + std::string(uri) + "' has an invalid scheme");
    out.scheme.push_back(char(std::tolower(static_cast<unsigned char>(c))));
  }
  std::string_view tail = uri.substr(colon + 1);
  size_t q = tail.find('?');
  out.rest = percent_decode(tail.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string_view query = tail.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0)
      fail(Errc::bad_uri, "store URI query item '" + std::string(pair) + "' is not name=value");
    out.query.emplace_back(percent_decode(pair.substr(0, eq)), percent_decode(pair.substr(eq + 1)));
  }
  return out;
}

}  // namespace sessions
