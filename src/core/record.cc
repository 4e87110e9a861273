#include "record.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include <msgpack.h>

#include "bytes.h"
#include "compression.h"
#include "error.h"
#include "msgpack_reader.h"
#include "times.h"

namespace sessions::internal {
namespace {

constexpr unsigned char kRecordVersion = 1;
constexpr int64_t kNoMaxAge = INT64_MIN;

void put_u32(std::string* out, uint32_t v) {
  char b[4];
  store_be32(b, v);
  out->append(b, 4);
}

// Bounds-checked reading of the frame.
class Reader {
 public:
  explicit Reader(std::string_view data) : rest_(data) {}
  bool u8(uint8_t* v) { return take(1, [&](const unsigned char* p) { *v = p[0]; }); }
  bool u16(uint16_t* v) {
    return take(2, [&](const unsigned char* p) { *v = uint16_t(p[0] << 8 | p[1]); });
  }
  bool u32(uint32_t* v) {
    return take(4, [&](const unsigned char* p) { *v = load_be32(p); });
  }
  bool i64(int64_t* v) {
    return take(8, [&](const unsigned char* p) { *v = int64_t(load_be64(p)); });
  }
  const char* position() const { return rest_.data(); }
  bool bytes(size_t n, std::string_view* v) {
    if (rest_.size() < n) return false;
    *v = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  bool done() const { return rest_.empty(); }

 private:
  template <typename F>
  bool take(size_t n, F&& f) {
    if (rest_.size() < n) return false;
    f(reinterpret_cast<const unsigned char*>(rest_.data()));
    rest_.remove_prefix(n);
    return true;
  }
  std::string_view rest_;
};

bool has_repeated_key(const std::vector<ValueTable::Packed>& packed) {
  if (packed.size() <= 16) {  // the usual session: pairwise, without allocating
    for (size_t i = 1; i < packed.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (packed[i].key == packed[j].key) return true;
    return false;
  }
  std::vector<std::string_view> keys;
  keys.reserve(packed.size());
  for (const auto& p : packed) keys.push_back(p.key);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

// {kind: [value, ...]}, with each value's depth counted from itself; with
// out null, only checked.
bool unpack_flashes(std::string_view bytes, Map* out) {
  MsgpackReader in(bytes);
  uint32_t kinds = 0;
  if (!in.map_header(&kinds)) return false;
  for (uint32_t i = 0; i < kinds; ++i) {
    std::string_view kind;
    uint32_t count = 0;
    if (!in.utf8_string(&kind) || !in.array_header(&count)) return false;
    Array* list = nullptr;
    if (out) {
      Value& slot = (*out)[std::string(kind)];
      list = &slot.emplace<Array>();
      list->resize(count);  // array_header bounded count by the bytes left
    }
    for (uint32_t j = 0; j < count; ++j)
      if (!in.value(list ? &(*list)[j] : nullptr)) return false;
  }
  return in.done();
}

// The identity header's fields into *out; false when they do not add up.
// `strict` also checks the strings are UTF-8 and the metadata keys sorted.
bool decode_identity(Reader* in, bool strict, Identity* out) {
  uint8_t version = 0, principal_len = 0, secret_len = 0, entries = 0;
  std::string_view principal, secret;
  if (!in->u8(&version) || version != kIdentityHeader || !in->i64(&out->auth_us) ||
      !in->u8(&principal_len) || !in->bytes(principal_len, &principal) || !in->u8(&secret_len) ||
      (secret_len != 0 && secret_len != Identity::kCsrfSecretSize) ||
      !in->bytes(secret_len, &secret) || !in->u8(&entries) ||
      entries > Identity::kMaxMetadataEntries)
    return false;
  if (principal_len == 0 && secret_len == 0 && entries == 0) return false;  // written as none
  if (out->auth_us < 0) return false;
  if (strict && !is_valid_utf8(principal)) return false;
  out->principal.assign(principal);
  out->csrf_secret.assign(secret);
  out->metadata.clear();
  for (uint8_t i = 0; i < entries; ++i) {
    uint8_t key_len = 0;
    uint16_t value_len = 0;
    std::string_view key, value;
    if (!in->u8(&key_len) || key_len == 0 || key_len > Identity::kMaxMetadataKey ||
        !in->bytes(key_len, &key) || !in->u16(&value_len) ||
        value_len > Identity::kMaxMetadataValue || !in->bytes(value_len, &value))
      return false;
    if (strict && (!is_valid_utf8(key) || !is_valid_utf8(value) ||
                   (!out->metadata.empty() && out->metadata.back().first >= key)))
      return false;
    out->metadata.emplace_back(key, value);
  }
  return true;
}

int string_write(void* data, const char* buf, size_t len) {
  static_cast<std::string*>(data)->append(buf, len);
  return 0;
}

// Fills in the u32 length placeholder at `at` with what follows it.
void patch_length(std::string* out, size_t at) {
  const auto len = uint32_t(out->size() - at - 4);
  store_be32(&(*out)[at], len);
}

// Appends `v` as one MessagePack object, preceded by its length.
void put_value(std::string* out, const Value& v) {
  size_t at = out->size();
  put_u32(out, 0);
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, string_write);
  pack_value(&pk, v);
  patch_length(out, at);
}

}  // namespace

// ---- ValueTable -------------------------------------------------------------

int64_t ValueTable::find_packed(std::string_view key) const {
  if (packed_.size() > kScanLimit) {
    if (packed_index_.empty())
      for (size_t i = 0; i < packed_.size(); ++i) packed_index_.emplace(packed_[i].key, uint32_t(i));
    auto it = packed_index_.find(key);
    if (it == packed_index_.end() || packed_[it->second].gone) return -1;
    return it->second;
  }
  for (size_t i = 0; i < packed_.size(); ++i)
    if (!packed_[i].gone && packed_[i].key == key) return int64_t(i);
  return -1;
}

int64_t ValueTable::find_set(std::string_view key) const {
  if (!set_index_.empty()) {
    auto it = set_index_.find(std::string(key));
    return it == set_index_.end() ? -1 : int64_t(it->second);
  }
  for (size_t i = 0; i < set_.size(); ++i)
    if (set_[i].first == key) return int64_t(i);
  return -1;
}

void ValueTable::mark_gone(size_t i) {
  packed_[i].gone = true;
  --live_packed_;
}

const Value* ValueTable::find(std::string_view key) const {
  if (int64_t i = find_set(key); i >= 0) return &set_[size_t(i)].second;
  int64_t i = find_packed(key);
  if (i < 0) return nullptr;
  const Packed& p = packed_[size_t(i)];
  if (!p.cache && !from_msgpack(p.value, &p.cache.emplace())) {
    p.cache.reset();
    fail(Errc::internal, "the stored value of '" + std::string(key) + "' does not unpack");
  }
  return &*p.cache;
}

void ValueTable::set(std::string_view key, Value value) {
  if (int64_t i = find_set(key); i >= 0) {
    set_[size_t(i)].second = std::move(value);
    return;
  }
  if (int64_t i = find_packed(key); i >= 0) mark_gone(size_t(i));
  set_.emplace_back(std::string(key), std::move(value));
  if (!set_index_.empty()) {
    set_index_.emplace(set_.back().first, uint32_t(set_.size() - 1));
  } else if (set_.size() > kScanLimit) {
    for (size_t i = 0; i < set_.size(); ++i) set_index_.emplace(set_[i].first, uint32_t(i));
  }
}

bool ValueTable::erase(std::string_view key) {
  int64_t packed = find_packed(key);
  if (packed >= 0) mark_gone(size_t(packed));
  int64_t i = find_set(key);
  if (i >= 0) {
    // The last entry takes the erased one's place: order does not matter.
    if (!set_index_.empty()) {
      set_index_.erase(set_[size_t(i)].first);
      if (size_t(i) + 1 != set_.size()) set_index_[set_.back().first] = uint32_t(i);
    }
    if (size_t(i) + 1 != set_.size()) set_[size_t(i)] = std::move(set_.back());
    set_.pop_back();
  }
  return packed >= 0 || i >= 0;
}

void ValueTable::clear() {
  set_.clear();
  set_index_.clear();
  packed_.clear();
  packed_index_.clear();
  live_packed_ = 0;
}

size_t ValueTable::size() const { return set_.size() + live_packed_; }

std::vector<std::string> ValueTable::keys() const {
  std::vector<std::string> out;
  out.reserve(size());
  for (const auto& entry : set_) out.push_back(entry.first);
  for (const Packed& p : packed_) {
    if (p.gone) continue;
    if (!is_valid_utf8(p.key)) fail(Errc::internal, "a stored key is not UTF-8");
    out.emplace_back(p.key);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Map ValueTable::decode_all() const {
  Map out;
  for (const auto& key : keys()) out.emplace(key, *find(key));
  return out;
}

// ---- Identity ---------------------------------------------------------------

void Identity::clear() {
  principal.clear();
  auth_us = 0;
  csrf_secret.clear();
  metadata.clear();
}

const std::string* Identity::find_metadata(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

void encode_identity(const Identity& identity, std::string* out) {
  if (identity.empty()) return;
  char header[9];
  header[0] = char(kIdentityHeader);
  store_be64(header + 1, uint64_t(identity.auth_us));
  out->append(header, sizeof header);
  out->push_back(char(identity.principal.size()));
  out->append(identity.principal);
  out->push_back(char(identity.csrf_secret.size()));
  out->append(identity.csrf_secret);
  out->push_back(char(identity.metadata.size()));
  for (const auto& [key, value] : identity.metadata) {
    out->push_back(char(key.size()));
    out->append(key);
    out->push_back(char(value.size() >> 8));
    out->push_back(char(value.size() & 0xff));
    out->append(value);
  }
}

std::string_view record_principal(std::string_view stored) {
  // 0x03 | auth_us (8) | length (1) | principal
  if (stored.size() < 10 || static_cast<unsigned char>(stored[0]) != kIdentityHeader) return {};
  const size_t len = static_cast<unsigned char>(stored[9]);
  if (stored.size() < 10 + len) return {};
  return stored.substr(10, len);
}

// ---- Records ----------------------------------------------------------------

void SessionRecord::reset() {
  identity.clear();
  created = last_seen = 0;
  max_age.reset();
  values.clear();
  bytes_.clear();
  packed_flashes_ = std::string_view();
  flashes_.clear();
  flashes_decoded_ = true;
}

Map& SessionRecord::flashes() {
  if (!flashes_decoded_) {
    flashes_.clear();
    if (!unpack_flashes(packed_flashes_, &flashes_))
      fail(Errc::internal, "the stored flashes do not unpack");
    flashes_decoded_ = true;
  }
  return flashes_;
}

void encode_record(const SessionRecord& r, std::string* out) {
  // The fixed header in one write: version, three i64 and the value count.
  unsigned char header[29];
  header[0] = kRecordVersion;
  store_be64(header + 1, uint64_t(r.created));
  store_be64(header + 9, uint64_t(r.last_seen));
  store_be64(header + 17, uint64_t(r.max_age ? *r.max_age : kNoMaxAge));
  store_be32(header + 25, uint32_t(r.values.size()));
  out->assign(reinterpret_cast<const char*>(header), sizeof header);
  for (const auto& [key, value] : r.values.set_) {
    out->push_back(char(key.size()));
    out->append(key);
    put_value(out, value);
  }
  for (const auto& p : r.values.packed_)
    if (!p.gone) out->append(p.entry);
  if (r.flashes_decoded_) {
    size_t at = out->size();
    put_u32(out, 0);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, string_write);
    msgpack_pack_map(&pk, r.flashes_.size());
    for (const auto& [kind, list] : r.flashes_) {
      msgpack_pack_str_with_body(&pk, kind.data(), kind.size());
      pack_value(&pk, list);
    }
    patch_length(out, at);
  } else {
    put_u32(out, uint32_t(r.packed_flashes_.size()));
    out->append(r.packed_flashes_);
  }
}

std::string* load_buffer(SessionRecord* out) {
  out->reset();
  // Reserving past the small-string size keeps the bytes on the heap, where
  // the views into them survive a move of the record.
  out->bytes_.reserve(64);
  return &out->bytes_;
}

bool decode_loaded(SessionRecord* out, std::string_view frame, bool strict, size_t max_inflated) {
  out->identity.clear();
  if (!frame.empty() && static_cast<unsigned char>(frame[0]) == kIdentityHeader) {
    Reader in(frame);
    if (!decode_identity(&in, strict, &out->identity)) {
      out->reset();
      return false;
    }
    frame = frame.substr(size_t(in.position() - frame.data()));
  }
  if (!frame.empty() && static_cast<unsigned char>(frame[0]) == kCompressedRecord) {
    // The inflated frame replaces the record's buffer; the envelope's buffer
    // is kept for the thread's next one.
    thread_local std::string spare;
    if (inflate_record(frame, max_inflated, &spare) != Inflated::ok) {
      out->reset();
      return false;
    }
    out->bytes_.swap(spare);
    frame = out->bytes_;
  }
  bool ok = decode_frame(out, frame, strict);
  if (!ok) out->reset();
  return ok;
}

bool decode_loaded(SessionRecord* out, bool strict, size_t max_inflated) {
  return decode_loaded(out, out->bytes_, strict, max_inflated);
}

bool decode_record(std::string_view data, SessionRecord* out) {
  load_buffer(out)->assign(data);
  return decode_loaded(out);
}

bool decode_frame(SessionRecord* out, std::string_view data, bool strict) {
  Reader in(data);
  uint8_t version = 0;
  int64_t created = 0, last_seen = 0, max_age = 0;
  uint32_t count = 0, flash_len = 0;
  if (!in.u8(&version) || version != kRecordVersion || !in.i64(&created) || !in.i64(&last_seen) ||
      !in.i64(&max_age) || !in.u32(&count) || count > data.size() / 6)
    return false;
  std::vector<ValueTable::Packed>& packed = out->values.packed_;
  packed.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const char* start = in.position();
    uint8_t key_len = 0;
    uint32_t value_len = 0;
    std::string_view key, value;
    // Keys are checked for UTF-8 when listed (keys()), not on every load:
    // lookups only compare bytes.
    if (!in.u8(&key_len) || key_len == 0 || !in.bytes(key_len, &key) || !in.u32(&value_len) ||
        value_len == 0 || !in.bytes(value_len, &value))
      return false;
    // Filled in place: a braced temporary costs a store-forwarding stall here.
    ValueTable::Packed& p = packed.emplace_back();
    p.key = key;
    p.value = value;
    p.entry = std::string_view(start, size_t(value.data() + value.size() - start));
  }
  std::string_view flashes;
  if (!in.u32(&flash_len) || flash_len == 0 || !in.bytes(flash_len, &flashes) || !in.done())
    return false;
  // Times out of any sane range would only feed overflowing arithmetic.
  if (!is_sane_time(created) || !is_sane_time(last_seen) ||
      (max_age != kNoMaxAge && (max_age < 0 || max_age > kMaxDuration)))
    return false;
  if (strict) {
    // Someone else may have written it: check everything now, so that a bad
    // value is a malformed record on load, never an error when it is read.
    if (has_repeated_key(packed) || !unpack_flashes(flashes, nullptr)) return false;
    for (const auto& p : packed)
      if (!is_valid_utf8(p.key) || !is_model_msgpack(p.value)) return false;
  }
  out->values.live_packed_ = packed.size();

  out->created = created;
  out->last_seen = last_seen;
  out->max_age = max_age == kNoMaxAge ? std::nullopt : std::optional<int64_t>(max_age);
  out->packed_flashes_ = flashes;
  // An empty flash map (0x80) is the common case: decode it for free.
  out->flashes_decoded_ = flashes.size() == 1 && static_cast<unsigned char>(flashes[0]) == 0x80;
  return true;
}

}  // namespace sessions::internal
