#include "value.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "base64url.h"
#include "error.h"

namespace sessions::internal {

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

// Builds the Value straight from the parser's events: the parser is
// iterative, the depth is counted here (containers, the outermost being 1),
// and each number keeps the text it was written as, so an integer literal
// outside int64 is refused instead of becoming a double.
class ValueBuilder {
 public:
  explicit ValueBuilder(Value* root) : root_(root) {}
  const std::string& error() const { return error_; }

  bool null(std::nullptr_t = nullptr) { return put(Value()); }
  bool boolean(bool b) { return put(Value(b)); }
  bool number_integer(int64_t i) { return put(Value(i)); }
  bool number_unsigned(uint64_t u) {
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return refuse("integer out of the int64 range");
    return put(Value(int64_t(u)));
  }
  bool number_float(double d, const std::string& text) {
    if (text.find_first_of(".eE") == std::string::npos) return refuse("integer out of the int64 range");
    if (!std::isfinite(d)) return refuse("number out of the double range");
    return put(Value(d));
  }
  bool string(std::string& s) { return put(Value(std::move(s))); }
  bool binary(json::binary_t&) { return refuse("unsupported JSON value"); }
  bool start_object(std::size_t) { return open(Map()); }
  bool key(std::string& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(Array()); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return refuse("JSON text does not parse");
  }

 private:
  bool refuse(const char* why) {
    if (error_.empty()) error_ = why;
    return false;
  }
  // Places v where the parser is (the root, an array's end, a map's key) and
  // returns where it went.
  Value* place(Value v) {
    if (open_.empty()) {
      *root_ = std::move(v);
      return root_;
    }
    Value* parent = open_.back();
    if (auto* array = parent->get_if<Array>()) return &array->emplace_back(std::move(v));
    return &parent->get_if<Map>()->insert_or_assign(std::move(key_), std::move(v)).first->second;
  }
  bool put(Value v) {
    place(std::move(v));
    return true;
  }
  bool open(Value container) {
    if (open_.size() >= size_t(kMaxDepth)) return refuse("JSON nests deeper than 24 levels");
    open_.push_back(place(std::move(container)));
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  Value* root_;
  std::vector<Value*> open_;  // the containers being filled, outermost first
  std::string key_;
  std::string error_;
};

}  // namespace

std::string to_json(const Value& v) {
  // Strings were validated as UTF-8 on the way in, so strict dumping is safe;
  // replace anyway rather than throw from a getter.
  return value_to_json(v).dump(-1, ' ', false, json::error_handler_t::replace);
}

Value from_json(std::string_view text) {
  // nlohmann's lexer takes a NUL byte for the end of input; JSON text has
  // none (inside a string a NUL is an escape), so the whole (ptr, len) is
  // the text and anything after the value is an error.
  if (std::memchr(text.data(), 0, text.size()))
    fail(Errc::bad_json, "JSON text holds a NUL byte");
  Value out;
  ValueBuilder builder(&out);
  if (!json::sax_parse(text.begin(), text.end(), &builder, json::input_format_t::json,
                       /*strict=*/true))
    fail(Errc::bad_json, builder.error().empty() ? "JSON text does not parse" : builder.error());
  return out;
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

}  // namespace sessions::internal
