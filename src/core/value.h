// The session data model: the MessagePack types, keyed by UTF-8 strings.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <msgpack.h>

namespace sessions::internal {

class Value;
using Array = std::vector<Value>;
using Map = std::map<std::string, Value, std::less<>>;

// Distinguishes binary data from text, which must be UTF-8.
struct Bytes {
  std::string data;
  bool operator==(const Bytes& other) const { return data == other.data; }
};

enum class Type { nil, boolean, integer, real, string, bytes, array, map };

// The most containers (arrays, maps) a value may nest, the outermost counted
// as 1: deeper is refused on every input path (JSON, MessagePack, setters) so
// hostile input cannot exhaust the stack.
constexpr int kMaxDepth = 24;

class Value {
 public:
  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Bytes b) : v_(std::move(b)) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Map m) : v_(std::move(m)) {}

  Type type() const { return static_cast<Type>(v_.index()); }
  // Replaces the value in place (no temporary Value).
  template <typename T, typename... Args>
  T& emplace(Args&&... args) { return v_.emplace<T>(std::forward<Args>(args)...); }
  template <typename T>
  const T* get_if() const { return std::get_if<T>(&v_); }
  template <typename T>
  T* get_if() { return std::get_if<T>(&v_); }
  bool operator==(const Value& other) const { return v_ == other.v_; }
  bool operator!=(const Value& other) const { return !(v_ == other.v_); }

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, Bytes, Array, Map> v_;
};

bool is_valid_utf8(std::string_view s);

// JSON text <-> Value. Bytes are written as base64 strings (JSON has no
// binary type); parse failures and deep nesting throw Errc::bad_json.
std::string to_json(const Value& v);
Value from_json(std::string_view json);

// MessagePack, written by msgpack-c; pack never fails. Exact for every type,
// bytes inside containers too. Reading is msgpack_reader.h's from_msgpack.
void pack_value(msgpack_packer* pk, const Value& v);
std::string to_msgpack(const Value& v);

}  // namespace sessions::internal
