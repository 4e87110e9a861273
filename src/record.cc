#include "record.h"

#include <msgpack.h>

namespace sessions {
namespace {

constexpr int kRecordVersion = 1;

int string_write(void* data, const char* buf, size_t len) {
  static_cast<std::string*>(data)->append(buf, len);
  return 0;
}

// Values count their depth from themselves (as JSON input does), not from the
// record, so that every value accepted on the way in can be read back.
bool read_value_map(const msgpack_object& o, Map* out) {
  if (o.type != MSGPACK_OBJECT_MAP) return false;
  out->clear();
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    if (kv.key.type != MSGPACK_OBJECT_STR) return false;
    std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
    if (!is_valid_utf8(key)) return false;
    Value item;
    if (!unpack_value(kv.val, &item)) return false;
    out->insert_or_assign(std::string(key), std::move(item));
  }
  return true;
}

bool read_flash_map(const msgpack_object& o, Map* out) {
  if (o.type != MSGPACK_OBJECT_MAP) return false;
  out->clear();
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    if (kv.key.type != MSGPACK_OBJECT_STR || kv.val.type != MSGPACK_OBJECT_ARRAY) return false;
    std::string_view kind(kv.key.via.str.ptr, kv.key.via.str.size);
    if (!is_valid_utf8(kind)) return false;
    Array list(kv.val.via.array.size);
    for (uint32_t j = 0; j < kv.val.via.array.size; ++j)
      if (!unpack_value(kv.val.via.array.ptr[j], &list[j])) return false;
    out->insert_or_assign(std::string(kind), Value(std::move(list)));
  }
  return true;
}

}  // namespace

void encode_record(const SessionRecord& r, std::string* out) {
  out->clear();
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, string_write);
  msgpack_pack_array(&pk, 6);
  msgpack_pack_int(&pk, kRecordVersion);
  msgpack_pack_int64(&pk, r.created);
  msgpack_pack_int64(&pk, r.last_seen);
  if (r.max_age) msgpack_pack_int64(&pk, *r.max_age); else msgpack_pack_nil(&pk);
  for (const Map* map : {&r.values, &r.flashes}) {
    msgpack_pack_map(&pk, map->size());
    for (const auto& [key, item] : *map) {
      msgpack_pack_str_with_body(&pk, key.data(), key.size());
      pack_value(&pk, item);
    }
  }
}

bool decode_record(std::string_view data, SessionRecord* out) {
  msgpack_zone zone;
  // The zone grows as needed; 2 KiB covers a typical cookie-sized session.
  if (!msgpack_zone_init(&zone, 2048)) return false;
  msgpack_object root;
  size_t offset = 0;
  auto ret = msgpack_unpack(data.data(), data.size(), &offset, &zone, &root);
  bool ok = ret == MSGPACK_UNPACK_SUCCESS && offset == data.size() &&
            root.type == MSGPACK_OBJECT_ARRAY && root.via.array.size == 6;
  if (ok) {
    const msgpack_object* f = root.via.array.ptr;
    auto is_int = [](const msgpack_object& o) {
      return o.type == MSGPACK_OBJECT_POSITIVE_INTEGER || o.type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    };
    ok = f[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[0].via.u64 == kRecordVersion &&
         is_int(f[1]) && is_int(f[2]) && (f[3].type == MSGPACK_OBJECT_NIL || is_int(f[3])) &&
         read_value_map(f[4], &out->values) && read_flash_map(f[5], &out->flashes);
    if (ok) {
      out->created = f[1].via.i64;
      out->last_seen = f[2].via.i64;
      out->max_age = f[3].type == MSGPACK_OBJECT_NIL ? std::nullopt : std::optional(f[3].via.i64);
    }
  }
  msgpack_zone_destroy(&zone);
  return ok;
}

}  // namespace sessions
