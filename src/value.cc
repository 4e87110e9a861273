#include "value.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "base64url.h"
#include "error.h"

namespace sessions {

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // ASCII, eight bytes at a time: the common case for keys and values.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if (word & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p == end) break;
    unsigned char c = *p;
    if (c < 0x80) { ++p; continue; }
    int extra;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { extra = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; cp = c & 0x07; }
    else return false;
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid.
    static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += extra + 1;
  }
  return true;
}

// ---- JSON ---------------------------------------------------------------

namespace {

using json = nlohmann::json;

json value_to_json(const Value& v) {
  switch (v.type()) {
    case Type::nil: return nullptr;
    case Type::boolean: return *v.get_if<bool>();
    case Type::integer: return *v.get_if<int64_t>();
    case Type::real: return *v.get_if<double>();
    case Type::string: return *v.get_if<std::string>();
    case Type::bytes: return base64_std_encode(v.get_if<Bytes>()->data);
    case Type::array: {
      json out = json::array();
      for (const auto& item : *v.get_if<Array>()) out.push_back(value_to_json(item));
      return out;
    }
    case Type::map: {
      json out = json::object();
      for (const auto& [key, item] : *v.get_if<Map>()) out[key] = value_to_json(item);
      return out;
    }
  }
  return nullptr;
}

Value json_to_value(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return Value();
    case json::value_t::boolean: return Value(j.get<bool>());
    case json::value_t::number_integer: return Value(j.get<int64_t>());
    case json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(Errc::bad_json, "integer out of the int64 range");
      return Value(int64_t(u));
    }
    case json::value_t::number_float: return Value(j.get<double>());
    case json::value_t::string: return Value(j.get<std::string>());
    case json::value_t::array: {
      Array out;
      out.reserve(j.size());
      for (const auto& item : j) out.push_back(json_to_value(item));
      return Value(std::move(out));
    }
    case json::value_t::object: {
      Map out;
      for (auto it = j.begin(); it != j.end(); ++it) out.emplace(it.key(), json_to_value(it.value()));
      return Value(std::move(out));
    }
    default: fail(Errc::bad_json, "unsupported JSON value");
  }
}

}  // namespace

std::string to_json(const Value& v) {
  // Strings were validated as UTF-8 on the way in, so strict dumping is safe;
  // replace anyway rather than throw from a getter.
  return value_to_json(v).dump(-1, ' ', false, json::error_handler_t::replace);
}

Value from_json(std::string_view text) {
  // The parser itself is iterative; the callback bounds the depth so that the
  // recursive conversion below stays shallow.
  bool too_deep = false;
  json::parser_callback_t limit_depth = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;
  };
  json parsed = json::parse(text.begin(), text.end(), limit_depth, /*allow_exceptions=*/false);
  if (too_deep) fail(Errc::bad_json, "JSON nests deeper than 24 levels");
  if (parsed.is_discarded()) fail(Errc::bad_json, "JSON text does not parse");
  return json_to_value(parsed);
}

// ---- MessagePack ----------------------------------------------------------

void pack_value(msgpack_packer* pk, const Value& v) {
  switch (v.type()) {
    case Type::nil: msgpack_pack_nil(pk); break;
    case Type::boolean: *v.get_if<bool>() ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case Type::integer: msgpack_pack_int64(pk, *v.get_if<int64_t>()); break;
    case Type::real: msgpack_pack_double(pk, *v.get_if<double>()); break;
    case Type::string: {
      const auto& s = *v.get_if<std::string>();
      msgpack_pack_str_with_body(pk, s.data(), s.size());
      break;
    }
    case Type::bytes: {
      const auto& b = v.get_if<Bytes>()->data;
      msgpack_pack_bin_with_body(pk, b.data(), b.size());
      break;
    }
    case Type::array: {
      const auto& a = *v.get_if<Array>();
      msgpack_pack_array(pk, a.size());
      for (const auto& item : a) pack_value(pk, item);
      break;
    }
    case Type::map: {
      const auto& m = *v.get_if<Map>();
      msgpack_pack_map(pk, m.size());
      for (const auto& [key, item] : m) {
        msgpack_pack_str_with_body(pk, key.data(), key.size());
        pack_value(pk, item);
      }
      break;
    }
  }
}

bool unpack_value(const msgpack_object& o, Value* out, int depth) {
  if (depth > kMaxDepth) return false;
  switch (o.type) {
    case MSGPACK_OBJECT_NIL: out->emplace<std::monostate>(); return true;
    case MSGPACK_OBJECT_BOOLEAN: out->emplace<bool>(o.via.boolean); return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      if (o.via.u64 > uint64_t(std::numeric_limits<int64_t>::max())) return false;
      out->emplace<int64_t>(int64_t(o.via.u64));
      return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: out->emplace<int64_t>(o.via.i64); return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: out->emplace<double>(o.via.f64); return true;
    case MSGPACK_OBJECT_STR: {
      std::string_view s(o.via.str.ptr, o.via.str.size);
      if (!is_valid_utf8(s)) return false;
      out->emplace<std::string>(s);
      return true;
    }
    case MSGPACK_OBJECT_BIN:
      out->emplace<Bytes>(Bytes{std::string(o.via.bin.ptr, o.via.bin.size)});
      return true;
    case MSGPACK_OBJECT_ARRAY: {
      Array a(o.via.array.size);
      for (uint32_t i = 0; i < o.via.array.size; ++i)
        if (!unpack_value(o.via.array.ptr[i], &a[i], depth + 1)) return false;
      *out = Value(std::move(a));
      return true;
    }
    case MSGPACK_OBJECT_MAP: {
      Map m;
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != MSGPACK_OBJECT_STR) return false;
        std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
        if (!is_valid_utf8(key)) return false;
        Value item;
        if (!unpack_value(kv.val, &item, depth + 1)) return false;
        m.insert_or_assign(std::string(key), std::move(item));
      }
      *out = Value(std::move(m));
      return true;
    }
    default: return false;  // ext types are not part of the model
  }
}

namespace {
int append_to_string(void* data, const char* buf, size_t len) {
  static_cast<std::string*>(data)->append(buf, len);
  return 0;
}
}  // namespace

std::string to_msgpack(const Value& v) {
  std::string out;
  msgpack_packer pk;
  msgpack_packer_init(&pk, &out, append_to_string);
  pack_value(&pk, v);
  return out;
}

bool from_msgpack(std::string_view bytes, Value* out) {
  msgpack_zone* zone = msgpack_zone_new(2048);
  if (!zone) fail(Errc::no_memory, "out of memory");
  msgpack_object object;
  size_t offset = 0;
  const bool ok = msgpack_unpack(bytes.data(), bytes.size(), &offset, zone, &object) ==
                      MSGPACK_UNPACK_SUCCESS &&
                  offset == bytes.size() && unpack_value(object, out);
  msgpack_zone_free(zone);
  return ok;
}

}  // namespace sessions
