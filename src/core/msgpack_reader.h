// Reading MessagePack into the session model, bounded by the bytes at hand.
//
// msgpack-c's unpacker allocates what a header declares before it looks at
// the bytes behind it: five bytes (an array32 of 2^32-1 elements) ask for
// 128 GiB. This reader checks every declared length and count against the
// input that is left before it reserves anything (an element takes at least
// one byte, a map entry two), so what it allocates is linear in the input.
// It builds Values directly and accepts only the model (value.h): nil, bool,
// int64, finite floats, UTF-8 str, bin, arrays, maps with UTF-8 str keys, at
// most kMaxDepth containers deep. msgpack-c still does the packing.
#pragma once

#include <cstdint>
#include <string_view>

#include "value.h"

namespace sessions::internal {

class MsgpackReader {
 public:
  explicit MsgpackReader(std::string_view bytes) : rest_(bytes) {}

  // One value of the model into *out, or only checked when out is null.
  // `enclosing` counts the containers around it, for the depth limit.
  bool value(Value* out, int enclosing = 0);
  // Headers and strings, for framing that is itself MessagePack (flashes).
  bool map_header(uint32_t* count);
  bool array_header(uint32_t* count);
  bool utf8_string(std::string_view* out);
  bool done() const { return rest_.empty(); }

 private:
  bool take(size_t n, const unsigned char** p);
  bool length(unsigned char width, uint32_t* n);
  bool container_header(unsigned char fix_tag, unsigned char tag16, size_t bytes_per_item,
                        uint32_t* count);
  bool count_fits(uint32_t count, size_t bytes_per_item) const {
    return count <= rest_.size() / bytes_per_item;
  }
  bool string_body(uint32_t n, std::string_view* out);
  bool container(unsigned char tag, Value* out, int enclosing);

  std::string_view rest_;
};

// Exactly one value of the model filling all of `bytes`.
bool from_msgpack(std::string_view bytes, Value* out);
// The same check without building the value: for records that other writers
// can reach, validated whole when they are loaded.
bool is_model_msgpack(std::string_view bytes);

}  // namespace sessions::internal
