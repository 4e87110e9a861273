// What a session persists: its times, its values and its flashes.
//
// Loading a record is on the path of every request, so the record is a small
// length-prefixed frame around MessagePack values (docs/format.md):
//
//   version (1) | created (i64) | last_seen (i64) | max_age (i64, or INT64_MIN)
//   | count (u32) | count x [ key length (u8) | key | value length (u32) | value ]
//   | flashes length (u32) | flashes
//
// Each value is one MessagePack object written by msgpack-c; flashes are one
// MessagePack map {kind: [value, ...]}. All integers are big-endian. Loading
// checks the frame and keeps the values packed: a value is unpacked when it is
// read, and one that was not changed is written back as the same bytes.
// Frames that others may have written are checked whole (strict).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "value.h"

namespace sessions::internal {

class ValueTable {
 public:
  // Throws Errc::internal if a stored value does not unpack (the frame was
  // authenticated, ours, or checked whole on load: that would be a bug).
  const Value* find(std::string_view key) const;
  void set(std::string_view key, Value value);
  bool erase(std::string_view key);  // false if absent
  void clear();
  size_t size() const;
  bool empty() const { return size() == 0; }
  Map decode_all() const;  // a copy of every value (for tests)
  std::vector<std::string> keys() const;  // in byte order

 private:
  friend bool decode_frame(struct SessionRecord*, std::string_view, bool);
  friend void encode_record(const struct SessionRecord&, std::string*);

 public:
  struct Packed {
    std::string_view key;
    std::string_view value;  // one MessagePack object, as loaded
    std::string_view entry;  // the whole entry as framed: saved back verbatim
    bool gone = false;       // replaced (see set_) or erased since loading
    mutable std::optional<Value> cache;  // the value, once read
  };

 private:
  // Up to this many entries a scan beats hashing; past it lookups go through
  // an index, so setting n keys costs O(n), not O(n^2).
  static constexpr size_t kScanLimit = 16;
  int64_t find_packed(std::string_view key) const;
  int64_t find_set(std::string_view key) const;
  void mark_gone(size_t packed_index);

  // Values set since loading, in no particular order (keys() sorts).
  std::vector<std::pair<std::string, Value>> set_;
  std::unordered_map<std::string, uint32_t> set_index_;  // kept once set_ is large
  std::vector<Packed> packed_;  // the values as loaded (views into the record)
  mutable std::unordered_map<std::string_view, uint32_t> packed_index_;  // built on demand
  size_t live_packed_ = 0;      // entries of packed_ not gone
};

// Who a session belongs to, and what the application says about it for
// listing; kept in a header before the record's frame (docs/format.md):
//
//   0x03 | auth_us (i64) | principal length (u8) | principal
//   | CSRF secret length (u8: 0 or 32) | secret | metadata count (u8)
//   | count x [ key length (u8) | key | value length (u16) | value ] | frame
//
// where frame is a version-1 or a compressed record. Sessions without any of
// it are stored as before, so their bytes do not change.
struct Identity {
  static constexpr size_t kMaxPrincipal = 255;
  static constexpr size_t kMaxMetadataEntries = 16;
  static constexpr size_t kMaxMetadataKey = 64;
  static constexpr size_t kMaxMetadataValue = 1024;
  static constexpr size_t kCsrfSecretSize = 32;

  std::string principal;     // empty: none
  int64_t auth_us = 0;       // when the principal was set, Unix microseconds
  std::string csrf_secret;   // empty, or kCsrfSecretSize random bytes
  std::vector<std::pair<std::string, std::string>> metadata;  // sorted by key

  bool empty() const { return principal.empty() && csrf_secret.empty() && metadata.empty(); }
  void clear();
  const std::string* find_metadata(std::string_view key) const;
};

constexpr unsigned char kIdentityHeader = 0x03;
// Appends the identity header to *out (nothing for an empty identity).
void encode_identity(const Identity& identity, std::string* out);
// The principal a stored record belongs to, without decoding it: for stores
// that index records by principal. Empty when none (or not a record).
std::string_view record_principal(std::string_view stored);

struct SessionRecord {
  Identity identity;
  int64_t created = 0;    // Unix seconds
  int64_t last_seen = 0;  // Unix seconds, at the last save
  std::optional<int64_t> max_age;  // a per-session override ("remember me")
  ValueTable values;

  // Flashes stay packed until used: most requests never touch them.
  Map& flashes();
  void clear_flashes() {
    flashes_.clear();
    flashes_decoded_ = true;
  }

  // Back to a new, empty record; buffers keep their capacity.
  void reset();

  SessionRecord() = default;
  SessionRecord(const SessionRecord&) = delete;
  SessionRecord& operator=(const SessionRecord&) = delete;
  SessionRecord(SessionRecord&&) = default;
  SessionRecord& operator=(SessionRecord&&) = default;

 private:
  friend bool decode_record(std::string_view, SessionRecord*);
  friend bool decode_frame(SessionRecord*, std::string_view, bool);
  friend std::string* load_buffer(SessionRecord*);
  friend bool decode_loaded(SessionRecord*, bool, size_t);
  friend bool decode_loaded(SessionRecord*, std::string_view, bool, size_t);
  friend void encode_record(const SessionRecord&, std::string*);
  std::string bytes_;  // the loaded frame; packed views point here (always on the heap)
  std::string_view packed_flashes_;
  Map flashes_;
  bool flashes_decoded_ = true;
};

// Replaces *out with the record's bytes.
void encode_record(const SessionRecord& record, std::string* out);
// Loading without a copy: load_buffer() resets the record and returns the
// buffer that a backend or the codec fills; decode_loaded() then decodes the
// frame, which is all of that buffer or the part `frame` views.
// `strict` also refuses repeated keys: for frames that someone other than
// this library may have written.
// A compressed record (compression.h) is inflated first, refused as
// malformed past `max_inflated` bytes (max_data_bytes).
constexpr size_t kDefaultMaxInflated = size_t(1) << 20;
std::string* load_buffer(SessionRecord* out);
bool decode_loaded(SessionRecord* out, bool strict = true,
                   size_t max_inflated = kDefaultMaxInflated);
bool decode_loaded(SessionRecord* out, std::string_view frame, bool strict = true,
                   size_t max_inflated = kDefaultMaxInflated);
// False for anything that is not a record this library wrote: bad version,
// lengths that do not add up, keys that are empty or repeated. (Keys are
// checked for UTF-8 when listed, values when read.)
bool decode_record(std::string_view data, SessionRecord* out);
bool decode_frame(SessionRecord* out, std::string_view frame, bool strict);  // frame: in out's buffer

}  // namespace sessions::internal
