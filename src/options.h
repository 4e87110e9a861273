// Parsing of option values and URIs: the one path for options whether they
// come from a store URI's query, sess_config_set or sess_session_set_option.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessions {

using OptionList = std::vector<std::pair<std::string, std::string>>;

// Each throws Errc::bad_option naming `name` when `value` does not parse.
bool parse_bool(std::string_view name, std::string_view value);
int64_t parse_int(std::string_view name, std::string_view value, int64_t min, int64_t max);
// Seconds, with an optional unit: "90", "90s", "15m", "12h", "30d". May be negative.
int64_t parse_duration(std::string_view name, std::string_view value);

struct ParsedUri {
  std::string scheme;  // lower-case, without ':'
  std::string rest;    // between "scheme:" and '?', percent-decoded
  OptionList query;    // percent-decoded name=value pairs, in order
};
// Throws Errc::bad_uri.
ParsedUri parse_uri(std::string_view uri);

}  // namespace sessions
