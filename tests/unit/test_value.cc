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
  r.values.set("nil", Value());
  r.values.set("bool", Value(true));
  r.values.set("int", Value(int64_t(-9'000'000'000'000'000'000)));
  r.values.set("double", Value(3.25));
  r.values.set("string", Value("h\xc3\xa9llo"));
  r.values.set("bytes", Value(Bytes{std::string("\0\xff\x01", 3)}));
  r.values.set("array", Value(Array{Value(1), Value("two"), Value(Array{})}));
  r.values.set("map", Value(Map{{"k", Value(Map{{"deep", Value(false)}})}}));
  r.flashes()["_flash"] = Value(Array{Value("saved"), Value(7)});
  return r;
}

std::string encode(const SessionRecord& r) {
  std::string out;
  encode_record(r, &out);
  return out;
}

std::string u32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

// A frame with the given entries (key, packed value) and an empty flash map.
std::string frame(std::vector<std::pair<std::string, std::string>> entries, int version = 1) {
  std::string out(1, char(version));
  out += std::string(24, '\0');
  out += u32(uint32_t(entries.size()));
  for (auto& [k, v] : entries) out += char(k.size()) + k + u32(uint32_t(v.size())) + v;
  return out + u32(1) + "\x80";
}
}  // namespace

TEST_CASE("records round-trip every type") {
  SessionRecord in = sample_record(), out;
  REQUIRE(decode_record(encode(in), &out));
  CHECK(out.created == in.created);
  CHECK(out.last_seen == in.last_seen);
  CHECK(out.max_age == in.max_age);
  CHECK(out.values.size() == 8);
  CHECK(out.values.decode_all() == in.values.decode_all());
  CHECK(out.flashes() == in.flashes());
  in.max_age.reset();
  REQUIRE(decode_record(encode(in), &out));
  CHECK_FALSE(out.max_age.has_value());
}

TEST_CASE("loaded values decode lazily and untouched ones are saved as they were") {
  SessionRecord loaded;
  REQUIRE(decode_record(encode(sample_record()), &loaded));
  CHECK(encode(loaded).size() == encode(sample_record()).size());
  CHECK(*loaded.values.find("int") == Value(int64_t(-9'000'000'000'000'000'000)));
  loaded.values.set("string", Value("changed"));
  CHECK(loaded.values.erase("bytes"));
  CHECK_FALSE(loaded.values.erase("bytes"));
  CHECK_FALSE(loaded.values.find("bytes"));
  loaded.values.set("new", Value(1));
  CHECK(loaded.values.size() == 8);
  SessionRecord again;
  REQUIRE(decode_record(encode(loaded), &again));
  Map expected = sample_record().values.decode_all();
  expected.erase("bytes");
  expected["string"] = Value("changed");
  expected["new"] = Value(1);
  CHECK(again.values.decode_all() == expected);
  CHECK(again.flashes() == sample_record().flashes());
  again.values.clear();
  CHECK(again.values.empty());
}

TEST_CASE("foreign and corrupt records are refused, never crash", "[hostile]") {
  SessionRecord out;
  CHECK(decode_record(frame({{"k", "\x01"}}), &out));
  CHECK_FALSE(decode_record("", &out));
  CHECK_FALSE(decode_record("not a record at all", &out));
  CHECK_FALSE(decode_record(frame({{"k", "\x01"}}, 2), &out));              // unknown version
  CHECK_FALSE(decode_record(frame({{"k", "\x01"}, {"k", "\x02"}}), &out));  // repeated key
  CHECK_FALSE(decode_record(frame({{"", "\x01"}}), &out));                  // empty key
  REQUIRE(decode_record(frame({{"\xff", "\x01"}}), &out));  // key not UTF-8: refused when listed
  CHECK_THROWS_AS(out.values.keys(), Error);
  CHECK_FALSE(decode_record(frame({{"k", ""}}), &out));                      // empty value
  std::string data = encode(sample_record());
  CHECK_FALSE(decode_record(data + "x", &out));  // trailing bytes
  for (size_t n = 0; n < data.size(); ++n) CHECK_FALSE(decode_record(data.substr(0, n), &out));
  std::string huge_count = data;
  huge_count.replace(25, 4, u32(0xffffffff));
  CHECK_FALSE(decode_record(huge_count, &out));
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 1000; ++i) many.emplace_back("k" + std::to_string(i % 999), "\x01");
  CHECK_FALSE(decode_record(frame(many), &out));  // a repeat among many keys
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string junk = data;
    for (int flips = 0; flips < 3; ++flips) junk[rng() % junk.size()] = char(rng());
    if (decode_record(junk, &out)) (void)out.values.size();
  }
}

TEST_CASE("a value that does not unpack is an error when read, and kept when not") {
  SessionRecord out;
  // 0xc1 is never used in MessagePack; 0xd4 is an ext type outside our model.
  REQUIRE(decode_record(frame({{"bad", "\xc1"}, {"ext", "\xd4\x01\x00"}, {"ok", "\x05"}}), &out));
  CHECK(*out.values.find("ok") == Value(5));
  CHECK_THROWS_AS(out.values.find("bad"), Error);
  CHECK_THROWS_AS(out.values.find("ext"), Error);
  SessionRecord none;
  REQUIRE(decode_record(frame({{"bad", "\xc1"}}), &none));
  CHECK(encode(none) == frame({{"bad", "\xc1"}}));
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
  r.values.set("deep", deepest);
  r.flashes()["_flash"] = Value(Array{deepest});
  REQUIRE(decode_record(encode(r), &out));
  CHECK(out.values.decode_all() == r.values.decode_all());
  CHECK(out.flashes() == r.flashes());
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
