// Parsing of option values and URIs: the one path for options whether they
// come from a store URI's query, sess_config_set or sess_session_set_option.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessions::internal {

using OptionList = std::vector<std::pair<std::string, std::string>>;

// Each throws Errc::bad_option naming `name` when `value` does not parse.
bool parse_bool(std::string_view name, std::string_view value);
int64_t parse_int(std::string_view name, std::string_view value, int64_t min, int64_t max);
// Seconds, with an optional unit: "90", "90s", "15m", "12h", "30d". May be negative.
int64_t parse_duration(std::string_view name, std::string_view value);

// An SQL table or a collection name that can be written into a statement
// unquoted: [A-Za-z_][A-Za-z0-9_]{0,62}. Throws Errc::bad_option naming `name`.
const std::string& safe_identifier(std::string_view name, const std::string& value);

// Removes every option called `name` from *options and returns the last
// value given (URI options come first, so a config's explicit one wins).
std::optional<std::string> take_option(OptionList* options, std::string_view name);

// Options several stores share. Each consumes `name` from *options when it
// is there and sets *out; throws Errc::bad_option for a bad value.
void take_pool_size(OptionList* options, size_t* out);                      // "pool", 1..1024
void take_milliseconds(OptionList* options, std::string_view name,          // 1..600000
                       std::chrono::milliseconds* out);
void take_interval(OptionList* options, std::string_view name,              // a duration >= 1 s
                   std::chrono::seconds* out);

struct ParsedUri {
  std::string scheme;        // lower-case, without ':'
  std::string rest;          // between "scheme:" and '?', percent-decoded
  std::string rest_encoded;  // the same, as written (for parse_network_location)
  OptionList query;    // percent-decoded name=value pairs, in order
};
// Throws Errc::bad_uri.
ParsedUri parse_uri(std::string_view uri);

struct HostPort {
  std::string host;  // name, IPv4, or IPv6 without its brackets
  int port = 0;
};

// The part of a network store's URI after the scheme:
// "//[user[:password]@]host[:port][,host[:port]...][/path]", still
// percent-encoded (so a password may hold '@' or ':' as %40 and %3A).
struct NetworkLocation {
  std::string user, password;  // decoded; empty when absent
  bool has_password = false;
  std::vector<HostPort> hosts;  // at least one
  std::string path;             // decoded, without its leading '/'
};
// Throws Errc::bad_uri naming `scheme`.
NetworkLocation parse_network_location(std::string_view scheme, std::string_view encoded,
                                       int default_port);

}  // namespace sessions::internal
