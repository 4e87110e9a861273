// What a session persists, and its MessagePack encoding:
//   [1, created, last_seen, max_age or nil, {key: value}, {kind: [flash, ...]}]
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "value.h"

namespace sessions {

struct SessionRecord {
  int64_t created = 0;    // Unix seconds
  int64_t last_seen = 0;  // Unix seconds, at the last save
  std::optional<int64_t> max_age;  // a per-session override ("remember me")
  Map values;
  Map flashes;  // kind -> Array
};

void encode_record(const SessionRecord& record, std::string* out);  // replaces *out
// False for anything that is not a record this library wrote.
bool decode_record(std::string_view data, SessionRecord* out);

}  // namespace sessions
