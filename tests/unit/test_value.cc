#include <catch2/catch.hpp>

#include <random>

#include "error.h"
#include "record.h"
#include "value.h"

using namespace sessions;

namespace {
SessionRecord sample_record() {
  SessionRecord r;
  r.created = 1'700'000'000;
  r.last_seen = 1'700'000'100;
  r.max_age = 90 * 86400;
  r.values["nil"] = Value();
  r.values["bool"] = Value(true);
  r.values["int"] = Value(int64_t(-9'000'000'000'000'000'000));
  r.values["double"] = Value(3.25);
  r.values["string"] = Value("h\xc3\xa9llo");
  r.values["bytes"] = Value(Bytes{std::string("\0\xff\x01", 3)});
  r.values["array"] = Value(Array{Value(1), Value("two"), Value(Array{})});
  r.values["map"] = Value(Map{{"k", Value(Map{{"deep", Value(false)}})}});
  r.flashes["_flash"] = Value(Array{Value("saved"), Value(7)});
  return r;
}
}  // namespace

TEST_CASE("records round-trip every type through MessagePack") {
  SessionRecord in = sample_record(), out;
  std::string data;
  encode_record(in, &data);
  REQUIRE(decode_record(data, &out));
  CHECK(out.created == in.created);
  CHECK(out.last_seen == in.last_seen);
  CHECK(out.max_age == in.max_age);
  CHECK(out.values == in.values);
  CHECK(out.flashes == in.flashes);
  in.max_age.reset();
  encode_record(in, &data);
  REQUIRE(decode_record(data, &out));
  CHECK_FALSE(out.max_age.has_value());
}

TEST_CASE("foreign and corrupt records are refused, never crash", "[hostile]") {
  SessionRecord out;
  CHECK_FALSE(decode_record("", &out));
  CHECK_FALSE(decode_record("not msgpack at all", &out));
  CHECK_FALSE(decode_record("\x93\x01\x02\x03", &out));               // wrong shape
  CHECK_FALSE(decode_record("\x96\x02\x00\x00\xc0\x80\x80", &out));   // unknown version
  CHECK(decode_record(std::string("\x96\x01\x00\x00\xc0\x80\x80", 7), &out));
  CHECK_FALSE(decode_record(std::string("\x96\x01\x00\x00\xc0\x81\x01\x02\x80", 9), &out));  // int key
  CHECK_FALSE(decode_record(std::string("\x96\x01\x00\x00\xc0\x81\xa1k\xd4\x01\x00\x80", 12), &out));  // ext
  CHECK_FALSE(decode_record(std::string("\x96\x01\x00\x00\xc0\x81\xa1k\xa1\xff\x80", 11), &out));  // bad UTF-8
  CHECK_FALSE(decode_record(std::string("\x96\x01\x00\x00\xc0\x81\xa1k\xcf\xff\xff\xff\xff\xff\xff\xff\xff\x80", 18), &out));  // uint64
  std::string data;
  encode_record(sample_record(), &data);
  CHECK_FALSE(decode_record(data + "x", &out));  // trailing bytes
  for (size_t n = 0; n < data.size(); ++n) CHECK_FALSE(decode_record(data.substr(0, n), &out));
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (auto& c : junk) c = char(rng());
    if (!junk.empty()) junk[0] = char(0x96);
    (void)decode_record(junk, &out);
  }
}

TEST_CASE("JSON converts both ways") {
  Value v = from_json(R"({"a":[1,2.5,"x",true,null],"b":{"c":-3}})");
  REQUIRE(v.type() == Type::map);
  CHECK(to_json(v) == R"({"a":[1,2.5,"x",true,null],"b":{"c":-3}})");
  CHECK(to_json(Value(Bytes{"\xfb\xff"})) == "\"+/8=\"");
  CHECK(from_json("9223372036854775807") == Value(int64_t(9223372036854775807)));
  CHECK_THROWS_AS(from_json("9223372036854775808"), Error);
  CHECK_THROWS_AS(from_json("{"), Error);
  CHECK_THROWS_AS(from_json(""), Error);
  CHECK_THROWS_AS(from_json("[1] trailing"), Error);
}

TEST_CASE("nesting is bounded, and what is accepted can be read back", "[hostile]") {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  Value deepest = from_json(nested(kMaxDepth + 1));  // depths 0..kMaxDepth
  CHECK_THROWS_AS(from_json(nested(kMaxDepth + 2)), Error);
  CHECK_THROWS_AS(from_json(nested(100000)), Error);
  SessionRecord r, out;
  r.values["deep"] = deepest;
  r.flashes["_flash"] = Value(Array{deepest});
  std::string data;
  encode_record(r, &data);
  REQUIRE(decode_record(data, &out));
  CHECK(out.values == r.values);
  CHECK(out.flashes == r.flashes);
}

TEST_CASE("UTF-8 validation") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xc3"));
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xff"));
}
