#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "error.h"
#include "msgpack_reader.h"
#include "record.h"
#include "times.h"
#include "value.h"

using namespace sessions::internal;

namespace {
// A byte string literal, NUL bytes included.
template <size_t N>
std::string_view mp(const char (&bytes)[N]) {
  return {bytes, N - 1};
}

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

std::string i64(int64_t v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) out += char(uint64_t(v) >> shift);
  return out;
}

// A frame with these times and one value.
std::string timed_frame(int64_t created, int64_t last_seen, int64_t max_age) {
  std::string out = frame({{"k", "\x01"}});
  return out.replace(1, 24, i64(created) + i64(last_seen) + i64(max_age));
}

// Decoded as our own frames are (cookie:, memory:): values checked when read.
bool decode_own(std::string_view data, SessionRecord* out) {
  load_buffer(out)->assign(data);
  return decode_loaded(out, /*strict=*/false);
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
  CHECK_FALSE(decode_record(frame({{"\xff", "\x01"}}), &out));  // key not UTF-8
  REQUIRE(decode_own(frame({{"\xff", "\x01"}}), &out));  // our own frames: refused when listed
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

TEST_CASE("a bad value makes a foreign record malformed, and in our own an error when read") {
  SessionRecord out;
  // 0xc1 is never used in MessagePack; 0xd4 is an ext type outside our model.
  const std::string bad = frame({{"bad", "\xc1"}, {"ext", "\xd4\x01\x00"}, {"ok", "\x05"}});
  CHECK_FALSE(decode_record(bad, &out));  // others may have written it: checked whole
  std::string bad_flashes = frame({{"ok", "\x05"}});
  bad_flashes.replace(bad_flashes.size() - 5, 5, u32(3) + "\x81\xa1k");  // kind without a list
  CHECK_FALSE(decode_record(bad_flashes, &out));
  REQUIRE(decode_own(bad, &out));
  CHECK(*out.values.find("ok") == Value(5));
  CHECK_THROWS_AS(out.values.find("bad"), Error);
  CHECK_THROWS_AS(out.values.find("ext"), Error);
  SessionRecord none;
  REQUIRE(decode_own(frame({{"bad", "\xc1"}}), &none));
  CHECK(encode(none) == frame({{"bad", "\xc1"}}));
}

TEST_CASE("what the fuzzers found: huge declared counts inside records", "[hostile]") {
  // tests/fuzz/regressions/fuzz_record: an array32 header declaring
  // 0xccd2ccd2 elements as a value, and as the flashes, of a record.
  const std::string header = std::string(mp("\x01\x00\x00\x00\x00\x69\x55\xb9\x00\x00\x00\x00\x00"
                                            "\x69\x55\xb9\x00\x80\x00\x00\x00\x00\x00\x00\x00"));
  const std::string value = header + std::string(mp("\x00\x00\x00\x01\x01k\x00\x00\x00\x05"
                                                    "\xdd\xcc\xd2\xcc\xd2\x00\x00\x00\x01\x80"));
  const std::string flashes =
      header + std::string(mp("\x00\x00\x00\x00\x00\x00\x00\x05\xdd\xcc\xd2\xcc\xd2"));
  SessionRecord out;
  CHECK_FALSE(decode_record(value, &out));    // checked whole: malformed
  CHECK_FALSE(decode_record(flashes, &out));
  REQUIRE(decode_own(value, &out));           // our own: an error when read, no allocation
  CHECK_THROWS_AS(out.values.find("k"), Error);
  REQUIRE(decode_own(flashes, &out));
  CHECK_THROWS_AS(out.flashes(), Error);
  Value v;
  CHECK_FALSE(from_msgpack(mp("\xdd\xcc\xd2\xcc\xd2"), &v));               // fuzz_msgpack
  CHECK_FALSE(from_msgpack(mp("\x91\xdf\x08\x00\x00\x00\x00\xda\x00\x00"), &v));
}

TEST_CASE("a record's times must be in range", "[hostile]") {
  SessionRecord out;
  CHECK(decode_record(timed_frame(1'700'000'000, 1'700'000'100, INT64_MIN), &out));  // no max age
  CHECK(decode_record(timed_frame(0, kMaxTime, kMaxDuration), &out));
  for (int64_t bad : {int64_t(-1), INT64_MIN, INT64_MAX, kMaxTime + 1}) {
    CHECK_FALSE(decode_record(timed_frame(bad, 1'700'000'000, INT64_MIN), &out));
    CHECK_FALSE(decode_record(timed_frame(1'700'000'000, bad, INT64_MIN), &out));
    CHECK_FALSE(decode_own(timed_frame(1'700'000'000, bad, INT64_MIN), &out));
  }
  for (int64_t bad : {int64_t(-1), INT64_MIN + 1, INT64_MAX, kMaxDuration + 1})
    CHECK_FALSE(decode_record(timed_frame(1'700'000'000, 1'700'000'000, bad), &out));
  CHECK(saturating_sub(0, INT64_MIN) == INT64_MAX);
  CHECK(saturating_sub(-2, INT64_MAX) == INT64_MIN);
  CHECK(saturating_add(INT64_MAX, 1) == INT64_MAX);
  CHECK(saturating_add(INT64_MIN, -1) == INT64_MIN);
  CHECK(saturating_add(5, -7) == -2);
}

TEST_CASE("MessagePack declared sizes are checked against the bytes there are", "[hostile]") {
  Value v;
  // Headers that declare far more than follows: refused without allocating
  // for them (under ASan an attempt to allocate 128 GiB would abort).
  for (std::string_view doc : {mp("\xdd\xff\xff\xff\xff"), mp("\xdf\xff\xff\xff\xff"),
                               mp("\xdb\xff\xff\xff\xff"), mp("\xc6\xff\xff\xff\xff"), mp("\xdc\xff\xff"),
                               mp("\xde\x00\x02\xa1k\x01"), mp("\x9f\x01"), mp("\x8f\xa1k\x01")})
    CHECK_FALSE(from_msgpack(doc, &v));
  CHECK_FALSE(from_msgpack(std::string("\xdd\x01\x00\x00\x00", 5) + std::string(16 << 20, '\xc0').substr(1), &v));
  std::string exact = std::string("\xdd\x00\x01\x00\x00", 5) + std::string(65536, '\xc0');
  REQUIRE(from_msgpack(exact, &v));
  CHECK(v.get_if<Array>()->size() == 65536);
  CHECK(is_model_msgpack(exact));
  CHECK_FALSE(is_model_msgpack(exact.substr(0, exact.size() - 1)));
  // Every type of the model, and what is outside it.
  CHECK(from_msgpack(mp("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff"), &v));
  CHECK(v == Value(int64_t(INT64_MAX)));
  CHECK_FALSE(from_msgpack(mp("\xcf\x80\x00\x00\x00\x00\x00\x00\x00"), &v));  // over int64
  CHECK(from_msgpack(mp("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), &v));
  CHECK(v == Value(int64_t(INT64_MIN)));
  CHECK(from_msgpack(mp("\xd1\xff\x00"), &v));
  CHECK(v == Value(-256));
  CHECK(from_msgpack(mp("\xca\x3f\xc0\x00\x00"), &v));  // float32 1.5
  CHECK(v == Value(1.5));
  CHECK_FALSE(from_msgpack(mp("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"), &v));  // NaN
  CHECK_FALSE(from_msgpack(mp("\xca\x7f\x80\x00\x00"), &v));                  // +inf
  CHECK_FALSE(from_msgpack(mp("\xa2\xc3\x28"), &v));                           // not UTF-8
  CHECK_FALSE(from_msgpack(mp("\x81\xa1\xff\x01"), &v));                       // key not UTF-8
  CHECK(from_msgpack(mp("\x82\xa1k\x01\xa1k\x02"), &v));                      // a repeated key:
  CHECK(v == Value(Map{{"k", Value(2)}}));                                   // the last wins
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

TEST_CASE("JSON text is the whole input, and its integers are int64", "[hostile]") {
  auto bad_json = [](std::string_view text) {
    try {
      from_json(text);
    } catch (const Error& e) {
      return e.code() == Errc::bad_json;
    }
    return false;
  };
  CHECK(bad_json(std::string_view("[1,2]\0{x", 8)));
  CHECK(bad_json(std::string_view("[1,2]\0", 6)));
  CHECK(bad_json(std::string_view("\0", 1)));
  CHECK(bad_json("[1,2] {"));
  CHECK(bad_json("18446744073709551616"));   // 2^64
  CHECK(bad_json("-9223372036854775809"));   // -2^63 - 1
  CHECK(bad_json("9223372036854775808"));    // 2^63
  CHECK(bad_json("[123456789012345678901234567890]"));
  CHECK(bad_json("1e400"));                  // past the largest double
  CHECK(from_json("-9223372036854775808") == Value(int64_t(INT64_MIN)));
  CHECK(from_json("1e3") == Value(1000.0));
  CHECK(from_json("2.5") == Value(2.5));
  CHECK(from_json("\"a\\u0000b\"") == Value(std::string("a\0b", 3)));  // an escaped NUL is text
  CHECK(from_json(R"({"a":1,"a":2})") == Value(Map{{"a", Value(2)}}));
}

TEST_CASE("nesting is bounded, and what is accepted can be read back", "[hostile]") {
  // The limit counts containers: 24 nested arrays are fine, 25 are not.
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  Value deepest = from_json(nested(kMaxDepth));
  CHECK_THROWS_AS(from_json(nested(kMaxDepth + 1)), Error);
  CHECK_THROWS_AS(from_json(R"({"a":)" + nested(kMaxDepth) + "}"), Error);
  CHECK_THROWS_AS(from_json(nested(100000)), Error);
  Value unpacked;
  CHECK(from_msgpack(std::string(kMaxDepth, '\x91') + "\x90", &unpacked) == false);
  CHECK(from_msgpack(std::string(kMaxDepth - 1, '\x91') + "\x90", &unpacked));
  CHECK(unpacked == deepest);
  CHECK_FALSE(from_msgpack(std::string(100000, '\x91') + "\x90", &unpacked));
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
