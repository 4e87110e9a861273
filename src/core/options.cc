#include "options.h"

#include <cctype>
#include <charconv>
#include <limits>

#include "error.h"
#include "times.h"

namespace sessions::internal {
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
  int64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
    bad_value(name, v, "a duration (seconds, or a number with s, m, h or d)");
  if (n > kMaxDuration / unit || n < -kMaxDuration / unit) bad_value(name, v, "a duration under 400 years");
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
  out.rest_encoded = std::string(tail.substr(0, q));
  out.rest = percent_decode(out.rest_encoded);
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

const std::string& safe_identifier(std::string_view name, const std::string& value) {
  bool ok = !value.empty() && value.size() <= 63 &&
            (std::isalpha(static_cast<unsigned char>(value[0])) || value[0] == '_');
  for (char c : value)
    ok = ok && c > 0 && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok)
    bad_value(name, value, "a safe name (a letter or _, then letters, digits or _, at most 63)");
  return value;
}

std::optional<std::string> take_option(OptionList* options, std::string_view name) {
  std::optional<std::string> value;
  for (auto it = options->begin(); it != options->end();) {
    if (it->first == name) {
      value = std::move(it->second);
      it = options->erase(it);
    } else {
      ++it;
    }
  }
  return value;
}

void take_pool_size(OptionList* options, size_t* out) {
  if (auto v = take_option(options, "pool")) *out = size_t(parse_int("pool", *v, 1, 1024));
}

void take_milliseconds(OptionList* options, std::string_view name, std::chrono::milliseconds* out) {
  if (auto v = take_option(options, name))
    *out = std::chrono::milliseconds(parse_int(name, *v, 1, 600000));
}

void take_interval(OptionList* options, std::string_view name, std::chrono::seconds* out) {
  if (auto v = take_option(options, name)) {
    const int64_t seconds = parse_duration(name, *v);
    if (seconds < 1) fail(Errc::bad_option, "option " + std::string(name) + ": at least 1 second");
    *out = std::chrono::seconds(seconds);
  }
}

NetworkLocation parse_network_location(std::string_view scheme, std::string_view encoded,
                                       int default_port) {
  const std::string uri_name = std::string(scheme) + "://";
  auto bad = [&](const std::string& why) -> void {
    fail(Errc::bad_uri, std::string(scheme) + ": URI " + why + " (expected " + uri_name +
                            "host:port...)");
  };
  if (encoded.substr(0, 2) != "//") bad("does not start with //");
  encoded.remove_prefix(2);
  NetworkLocation out;
  size_t slash = encoded.find('/');
  std::string_view authority = encoded.substr(0, slash);
  if (slash != std::string_view::npos) out.path = percent_decode(encoded.substr(slash + 1));
  // The last '@' ends the credentials: hosts cannot contain one.
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view credentials = authority.substr(0, at);
    size_t colon = credentials.find(':');
    out.user = percent_decode(credentials.substr(0, colon));
    if (colon != std::string_view::npos) {
      out.has_password = true;
      out.password = percent_decode(credentials.substr(colon + 1));
    }
    authority.remove_prefix(at + 1);
  }
  while (true) {
    size_t comma = authority.find(',');
    std::string_view item = authority.substr(0, comma);
    HostPort hp;
    std::string_view port_text;
    if (!item.empty() && item.front() == '[') {  // [IPv6]:port
      size_t close = item.find(']');
      if (close == std::string_view::npos) bad("has an unclosed '['");
      hp.host = std::string(item.substr(1, close - 1));
      std::string_view after = item.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') bad("has text after ']'");
        port_text = after.substr(1);
      }
    } else {
      size_t colon = item.find(':');
      hp.host = percent_decode(item.substr(0, colon));
      if (colon != std::string_view::npos) port_text = item.substr(colon + 1);
    }
    if (hp.host.empty()) bad("has an empty host");
    for (char c : hp.host)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
          c != ':')
        bad("has an invalid host '" + hp.host + "'");
    hp.port = default_port;
    if (!port_text.empty()) {
      int port = 0;
      auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
          port > 65535)
        bad("has an invalid port '" + std::string(port_text) + "'");
      hp.port = port;
    }
    out.hosts.push_back(std::move(hp));
    if (comma == std::string_view::npos) break;
    authority.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace sessions::internal
