#include "msgpack_reader.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "bytes.h"

namespace sessions::internal {

bool MsgpackReader::take(size_t n, const unsigned char** p) {
  if (rest_.size() < n) return false;
  *p = reinterpret_cast<const unsigned char*>(rest_.data());
  rest_.remove_prefix(n);
  return true;
}

// A big-endian length of 1, 2 or 4 bytes.
bool MsgpackReader::length(unsigned char width, uint32_t* n) {
  const unsigned char* p;
  if (!take(width, &p)) return false;
  if (width == 1) *n = p[0];
  else if (width == 2) *n = uint32_t(p[0]) << 8 | p[1];
  else *n = load_be32(p);
  return true;
}

bool MsgpackReader::string_body(uint32_t n, std::string_view* out) {
  if (rest_.size() < n) return false;
  *out = rest_.substr(0, n);
  rest_.remove_prefix(n);
  return is_valid_utf8(*out);
}

bool MsgpackReader::utf8_string(std::string_view* out) {
  const unsigned char* tag;
  if (!take(1, &tag)) return false;
  uint32_t n;
  if ((*tag & 0xe0) == 0xa0) n = *tag & 0x1f;
  else if (*tag >= 0xd9 && *tag <= 0xdb) {
    if (!length(*tag == 0xd9 ? 1 : *tag == 0xda ? 2 : 4, &n)) return false;
  } else {
    return false;
  }
  return string_body(n, out);
}

// fixmap/fixarray (fix_tag | count) or the 16- and 32-bit forms (tag16,
// tag16 + 1); the count is bounded by the bytes left.
bool MsgpackReader::container_header(unsigned char fix_tag, unsigned char tag16,
                                     size_t bytes_per_item, uint32_t* count) {
  const unsigned char* tag;
  if (!take(1, &tag)) return false;
  if ((*tag & 0xf0) == fix_tag) *count = *tag & 0x0f;
  else if (*tag == tag16 || *tag == tag16 + 1) {
    if (!length(*tag == tag16 ? 2 : 4, count)) return false;
  } else {
    return false;
  }
  return count_fits(*count, bytes_per_item);
}

bool MsgpackReader::map_header(uint32_t* count) { return container_header(0x80, 0xde, 2, count); }
bool MsgpackReader::array_header(uint32_t* count) { return container_header(0x90, 0xdc, 1, count); }

// An array or a map, whose tag the caller has peeked (not consumed).
bool MsgpackReader::container(unsigned char tag, Value* out, int enclosing) {
  if (enclosing >= kMaxDepth) return false;
  const bool is_map = (tag & 0xf0) == 0x80 || tag == 0xde || tag == 0xdf;
  uint32_t count = 0;
  if (is_map ? !map_header(&count) : !array_header(&count)) return false;
  if (!is_map) {
    Array* items = out ? &out->emplace<Array>() : nullptr;
    if (items) items->resize(count);  // count_fits bounded it by the input
    for (uint32_t i = 0; i < count; ++i)
      if (!value(items ? &(*items)[i] : nullptr, enclosing + 1)) return false;
    return true;
  }
  Map* entries = out ? &out->emplace<Map>() : nullptr;
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view key;
    if (!utf8_string(&key)) return false;
    if (!entries) {
      if (!value(nullptr, enclosing + 1)) return false;
      continue;
    }
    Value item;
    if (!value(&item, enclosing + 1)) return false;
    entries->insert_or_assign(std::string(key), std::move(item));  // a repeated key: the last wins
  }
  return true;
}

bool MsgpackReader::value(Value* out, int enclosing) {
  if (rest_.empty()) return false;
  const unsigned char tag = static_cast<unsigned char>(rest_[0]);
  if ((tag & 0xe0) == 0x80 || (tag >= 0xdc && tag <= 0xdf))  // fixmap, fixarray, 16/32
    return container(tag, out, enclosing);
  if ((tag & 0xe0) == 0xa0 || (tag >= 0xd9 && tag <= 0xdb)) {
    std::string_view s;
    if (!utf8_string(&s)) return false;
    if (out) out->emplace<std::string>(s);
    return true;
  }
  rest_.remove_prefix(1);
  const unsigned char* p = nullptr;
  int64_t integer = 0;
  if (tag <= 0x7f) {
    integer = tag;
  } else if (tag >= 0xe0) {
    integer = int8_t(tag);
  } else switch (tag) {
    case 0xc0:
      if (out) out->emplace<std::monostate>();
      return true;
    case 0xc2: case 0xc3:
      if (out) out->emplace<bool>(tag == 0xc3);
      return true;
    case 0xc4: case 0xc5: case 0xc6: {
      uint32_t n = 0;
      if (!length(tag == 0xc4 ? 1 : tag == 0xc5 ? 2 : 4, &n) || !take(n, &p)) return false;
      if (out) out->emplace<Bytes>().data.assign(reinterpret_cast<const char*>(p), n);
      return true;
    }
    case 0xca: case 0xcb: {
      double d;
      if (tag == 0xca) {
        if (!take(4, &p)) return false;
        uint32_t bits = load_be32(p);
        float f;
        std::memcpy(&f, &bits, 4);
        d = f;
      } else {
        if (!take(8, &p)) return false;
        uint64_t bits = load_be64(p);
        std::memcpy(&d, &bits, 8);
      }
      if (!std::isfinite(d)) return false;  // the model's doubles are finite
      if (out) out->emplace<double>(d);
      return true;
    }
    case 0xcc: if (!take(1, &p)) return false; integer = p[0]; break;
    case 0xcd: if (!take(2, &p)) return false; integer = uint16_t(p[0] << 8 | p[1]); break;
    case 0xce: if (!take(4, &p)) return false; integer = load_be32(p); break;
    case 0xcf: {
      if (!take(8, &p)) return false;
      uint64_t u = load_be64(p);
      if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
      integer = int64_t(u);
      break;
    }
    case 0xd0: if (!take(1, &p)) return false; integer = int8_t(p[0]); break;
    case 0xd1: if (!take(2, &p)) return false; integer = int16_t(uint16_t(p[0] << 8 | p[1])); break;
    case 0xd2: if (!take(4, &p)) return false; integer = int32_t(load_be32(p)); break;
    case 0xd3: if (!take(8, &p)) return false; integer = int64_t(load_be64(p)); break;
    default: return false;  // 0xc1 (never used) and the ext types, which the model lacks
  }
  if (out) out->emplace<int64_t>(integer);
  return true;
}

bool from_msgpack(std::string_view bytes, Value* out) {
  MsgpackReader in(bytes);
  return in.value(out) && in.done();
}

bool is_model_msgpack(std::string_view bytes) {
  MsgpackReader in(bytes);
  return in.value(nullptr) && in.done();
}

}  // namespace sessions::internal
