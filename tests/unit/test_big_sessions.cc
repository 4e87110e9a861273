// Sessions past one cookie: chunked cookie: values, the stale chunks a
// shrinking session leaves behind, and every way a chunk can be tampered with.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "chunks.h"
#include "compression.h"
#include "harness.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

// Text that does not compress: a session of n bytes needs n bytes sealed.
std::string noise(size_t n, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::string s(n, ' ');
  for (char& c : s) c = char('a' + rng() % 26);
  return s;
}

std::map<std::string, std::string> cookies_of(const std::string& jar) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < jar.size()) {
    size_t end = jar.find("; ", start);
    if (end == std::string::npos) end = jar.size();
    std::string item = jar.substr(start, end - start);
    size_t eq = item.find('=');
    out[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 2;
  }
  return out;
}

std::string header_of(const std::vector<std::pair<std::string, std::string>>& cookies) {
  std::string out;
  for (const auto& [name, value] : cookies) out += (out.empty() ? "" : "; ") + name + "=" + value;
  return out;
}

// The status and `big` value a request with `header` sees.
int status_of(Fixture& f, const std::string& header, std::string* big = nullptr) {
  Request r(header);
  Session& s = r.session(f.store, "sid");
  if (big) {
    const Value* v = s.get("big");
    *big = v && v->get_if<std::string>() ? *v->get_if<std::string>() : "";
  }
  return s.status();
}

}  // namespace

TEST_CASE("a 20 KB cookie: session is split into chunks under 4096 bytes and read back whole") {
  Fixture f("cookie:", {{"max_chunks", "8"}});
  Browser b;
  const std::string big = noise(20000);
  REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(big)); }) ==
          Errc::ok);
  REQUIRE(b.last_set_cookies.size() == 7);
  for (size_t i = 0; i < b.last_set_cookies.size(); ++i) {
    const std::string& line = b.last_set_cookies[i];
    CHECK(line.size() <= SESS_MAX_SET_COOKIE);
    CHECK(line.find("; Path=/; Max-Age=") != std::string::npos);
    CHECK(line.rfind(i == 0 ? "sid=7." : "sid." + std::to_string(i) + "=", 0) == 0);
  }
  std::string seen;
  CHECK(status_of(f, b.jar, &seen) == SESS_STATUS_VALID);
  CHECK(seen == big);
}

TEST_CASE("20 KB and 2 B sessions alternating on one jar leave no stale chunk") {
  Fixture f("cookie:", {{"max_chunks", "8"}});
  Browser b;
  for (int round = 0; round < 6; ++round) {
    const bool large = round % 2 == 0;
    const std::string value = large ? noise(20000, unsigned(round)) : "hi";
    REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(value)); }) ==
            Errc::ok);
    auto jar = cookies_of(b.jar);
    CHECK(jar.size() == (large ? 7u : 1u));
    if (!large) {
      // The small save expired the six chunks the browser still held.
      REQUIRE(b.last_set_cookies.size() == 7);
      for (size_t i = 1; i < 7; ++i)
        CHECK(b.last_set_cookies[i].rfind("sid." + std::to_string(i) + "=; Path=/; Max-Age=0", 0) ==
              0);
    }
    std::string seen;
    CHECK(status_of(f, b.jar, &seen) == SESS_STATUS_VALID);
    CHECK(seen == value);
  }
}

TEST_CASE("a 6,000-byte flash fits the default max_chunks") {
  Fixture f("cookie:");
  Browser b;
  const std::string message = noise(6000);
  REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").add_flash("_flash", Value(message)); }) ==
          Errc::ok);
  CHECK(b.last_set_cookies.size() == 3);
  Array shown;
  b.request([&](Request& r) { shown = r.session(f.store, "sid").take_flashes("_flash"); });
  REQUIRE(shown.size() == 1);
  CHECK(*shown[0].get_if<std::string>() == message);
  CHECK(cookies_of(b.jar).size() == 1);  // read and gone: the session shrank to one cookie
}

TEST_CASE("a session past max_chunks is refused at save and the browser keeps the previous one") {
  Fixture f("cookie:", {{"max_chunks", "2"}});
  Browser b;
  b.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(noise(5000))); });
  REQUIRE(cookies_of(b.jar).size() == 2);
  const std::string jar = b.jar;
  Errc rc = b.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(noise(9000))); });
  CHECK(rc == Errc::cookie_too_large);
  CHECK(b.last_set_cookies.empty());
  CHECK(b.jar == jar);
  CHECK(status_of(f, b.jar) == SESS_STATUS_VALID);
}

TEST_CASE("max_chunks is bounded") {
  for (const char* bad : {"0", "17", "-1", "x"}) {
    INFO(bad);
    CHECK_THROWS_AS(Fixture("cookie:", {{"max_chunks", bad}}), Error);
  }
}

TEST_CASE("a chunk swapped, dropped, repeated, reordered, emptied or miscounted never opens") {
  Fixture f("cookie:", {{"max_chunks", "8"}});
  Browser a, other;
  a.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(noise(10000, 1))); });
  other.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(noise(10000, 2))); });
  auto ca = cookies_of(a.jar), co = cookies_of(other.jar);
  REQUIRE(ca.size() == 4);
  REQUIRE(co.size() == 4);
  REQUIRE(status_of(f, a.jar) == SESS_STATUS_VALID);
  const std::string head = ca["sid"];
  auto variant = [&](std::vector<std::pair<std::string, std::string>> cookies) {
    return status_of(f, header_of(cookies));
  };
  auto bad = [](int status) {
    return status == SESS_STATUS_TAMPERED || status == SESS_STATUS_MALFORMED;
  };
  // Two chunks' contents exchanged.
  CHECK(bad(variant({{"sid", head}, {"sid.1", ca["sid.2"]}, {"sid.2", ca["sid.1"]}, {"sid.3", ca["sid.3"]}})));
  // A chunk dropped.
  CHECK(bad(variant({{"sid", head}, {"sid.1", ca["sid.1"]}, {"sid.3", ca["sid.3"]}})));
  CHECK(bad(variant({{"sid", head}, {"sid.1", ca["sid.1"]}, {"sid.2", ca["sid.2"]}})));
  // A chunk repeated in place of another.
  CHECK(bad(variant({{"sid", head}, {"sid.1", ca["sid.1"]}, {"sid.2", ca["sid.1"]}, {"sid.3", ca["sid.3"]}})));
  // An empty chunk.
  CHECK(bad(variant({{"sid", head}, {"sid.1", ""}, {"sid.2", ca["sid.2"]}, {"sid.3", ca["sid.3"]}})));
  // The count changed: fewer pieces joined, or one more that is missing.
  std::string tail = head.substr(head.find('.') + 1);
  CHECK(bad(variant({{"sid", "3." + tail}, {"sid.1", ca["sid.1"]}, {"sid.2", ca["sid.2"]}, {"sid.3", ca["sid.3"]}})));
  CHECK(bad(variant({{"sid", "5." + tail}, {"sid.1", ca["sid.1"]}, {"sid.2", ca["sid.2"]}, {"sid.3", ca["sid.3"]}})));
  CHECK(bad(variant({{"sid", "17." + tail}, {"sid.1", ca["sid.1"]}})));
  // The first chunk alone, as if it were a whole value.
  CHECK(bad(variant({{"sid", tail}})));
  // Chunks of two sessions in one header.
  CHECK(bad(variant({{"sid", head}, {"sid.1", co["sid.1"]}, {"sid.2", ca["sid.2"]}, {"sid.3", ca["sid.3"]}})));
  CHECK(bad(variant({{"sid", co["sid"]}, {"sid.1", ca["sid.1"]}, {"sid.2", ca["sid.2"]}, {"sid.3", ca["sid.3"]}})));
  // Reordered in the header but each under its right name: still one session.
  CHECK(variant({{"sid.3", ca["sid.3"]}, {"sid.1", ca["sid.1"]}, {"sid", head}, {"sid.2", ca["sid.2"]}}) ==
        SESS_STATUS_VALID);
  // A stray chunk past the count is ignored.
  CHECK(variant({{"sid", head}, {"sid.1", ca["sid.1"]}, {"sid.2", ca["sid.2"]}, {"sid.3", ca["sid.3"]},
                 {"sid.9", co["sid.1"]}}) == SESS_STATUS_VALID);
}

TEST_CASE("a tampered chunked session starts anew and its save expires the old chunks") {
  Fixture f("cookie:", {{"max_chunks", "8"}});
  Browser b;
  b.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(noise(10000))); });
  auto jar = cookies_of(b.jar);
  jar["sid.2"][10] = jar["sid.2"][10] == 'A' ? 'B' : 'A';
  std::vector<std::pair<std::string, std::string>> cookies(jar.begin(), jar.end());
  b.jar = header_of(cookies);
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_TAMPERED);
    CHECK(s.get("big") == nullptr);
    s.set("fresh", Value(1));
  });
  CHECK(cookies_of(b.jar).size() == 1);
}

TEST_CASE("destroying a chunked session expires every chunk") {
  Fixture f("cookie:", {{"max_chunks", "8"}});
  Browser b;
  b.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(noise(10000))); });
  REQUIRE(cookies_of(b.jar).size() == 4);
  b.request([&](Request& r) { r.session(f.store, "sid").destroy(); });
  CHECK(b.last_set_cookies.size() == 4);
  CHECK(b.jar.empty());
}

TEST_CASE("the browser's several values per name (paths) pair with the same chunk index") {
  Fixture f("cookie:", {{"max_chunks", "8"}});
  Browser a, c;
  a.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(noise(8000, 1))); });
  c.request([&](Request& r) { r.session(f.store, "sid").set("big", Value(noise(8000, 2))); });
  auto ca = cookies_of(a.jar), cc = cookies_of(c.jar);
  // A stale /app cookie sent first, then the / one: the second candidate opens.
  std::string header = header_of({{"sid", "3." + std::string(100, 'A')}, {"sid.1", "AAAA"},
                                   {"sid.2", "AAAA"}, {"sid", ca["sid"]}, {"sid.1", ca["sid.1"]},
                                   {"sid.2", ca["sid.2"]}});
  std::string seen;
  CHECK(status_of(f, header, &seen) == SESS_STATUS_VALID);
  CHECK(seen == noise(8000, 1));
}

TEST_CASE("server-side stores never read a chunk header as an ID") {
  Fixture f("memory:");
  CHECK(status_of(f, "sid=2.AAAA; sid.1=BBBB") == SESS_STATUS_MALFORMED);
}

TEST_CASE("chunk headers are parsed strictly") {
  size_t n = 0;
  std::string_view piece;
  CHECK(parse_chunk_header("2.abc", &n, &piece));
  CHECK(n == 2);
  CHECK(piece == "abc");
  CHECK(parse_chunk_header("16.x", &n, &piece));
  for (const char* bad : {"1.abc", "0.abc", "02.abc", "17.abc", ".abc", "abc", "123.x", "-2.x", "+2.x"}) {
    INFO(bad);
    CHECK_FALSE(parse_chunk_header(bad, &n, &piece));
  }
}

// ---- compression ----------------------------------------------------------------

namespace {

// A cart as a shop keeps it: repetitive, so it compresses.
std::string cart_json(size_t bytes) {
  std::string s = "[";
  for (int i = 0; s.size() < bytes; ++i)
    s += "{\"sku\":\"SKU-" + std::to_string(10000 + i * 7) + "\",\"name\":\"running shoes\",\"qty\":" +
         std::to_string(1 + i % 3) + "},";
  s.back() = ']';
  return s;
}

// The bytes stored for the session the browser holds, through the backend.
std::string stored_record(Fixture& f, Browser& b) {
  std::string id, data;
  b.request([&](Request& r) { id = r.session(f.store, "sid").id_text(); });
  REQUIRE(f.store->backend()->load(id, f.now, &data));
  return data;
}

std::string zstd_envelope(std::string_view frame) {
  std::string out;
  compress_record(frame, &out);
  return out;
}

}  // namespace

TEST_CASE("compression defaults: automatic for records that leave the process, off for memory: and cookie:") {
  {
    char dir[] = "/tmp/sessions-compress-XXXXXX";
    REQUIRE(mkdtemp(dir));
    Fixture file(std::string("file://") + dir, {{"fsync", "false"}});
    CHECK(file.store->settings().compress == Compression::automatic);
    CHECK(file.store->settings().compress_threshold == 2048);
    Fixture memory("memory:");
    CHECK(memory.store->settings().compress == Compression::off);
    Fixture cookie("cookie:");
    CHECK(cookie.store->settings().compress == Compression::off);
    std::filesystem::remove_all(dir);
  }
  const std::string cart = cart_json(20000);
  {
    Fixture f("cookie:", {{"max_chunks", "16"}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("cart", Value(cart)); });
    CHECK(cookies_of(b.jar).size() > 5);  // 20 KB sealed as it is
  }
  {
    Fixture f("memory:", {{"compress", "auto"}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("cart", Value(cart)); });
    std::string data = stored_record(f, b);
    CHECK(static_cast<unsigned char>(data[0]) == kCompressedRecord);
    CHECK(data.size() < cart.size() / 4);
    b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("cart")->get_if<std::string>() == cart); });
  }
}

TEST_CASE("compress=auto puts a 20 KB cart in one cookie and reads it back") {
  Fixture f("cookie:", {{"compress", "auto"}});
  Browser b;
  const std::string cart = cart_json(20000);
  REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").set("cart", Value(cart)); }) == Errc::ok);
  CHECK(b.last_set_cookies.size() == 1);
  std::string seen;
  Request r(b.jar);
  Session& s = r.session(f.store, "sid");
  REQUIRE(s.status() == SESS_STATUS_VALID);
  CHECK(*s.get("cart")->get_if<std::string>() == cart);
}

TEST_CASE("compress thresholds: auto below it, off, on, and auto keeping what does not shrink") {
  const std::string small = "tiny", cart = cart_json(3000), random = noise(3000);
  struct Case { std::string option, value; bool compressed; };
  for (const auto& [mode, value, compressed] :
       {Case{"auto", small, false}, Case{"auto", cart, true}, Case{"off", cart, false},
        Case{"on", small, true}, Case{"auto", std::string(3000, '\x01'), true}}) {
    INFO(mode << " " << value.size());
    Fixture f("memory:", {{"compress", mode}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("v", Value(value)); });
    std::string data = stored_record(f, b);
    CHECK((static_cast<unsigned char>(data[0]) == kCompressedRecord) == compressed);
    b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("v")->get_if<std::string>() == value); });
  }
  // Random letters still compress somewhat (5 bits of 8); random bytes do not.
  Fixture f("memory:", {{"compress", "auto"}, {"compress_threshold", "100"}});
  Browser b;
  std::string bytes(3000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 2654435761u) >> 13);
  b.request([&](Request& r) { r.session(f.store, "sid").set("v", Value(Bytes{bytes})); });
  std::string data = stored_record(f, b);
  const bool compressed = static_cast<unsigned char>(data[0]) == kCompressedRecord;
  std::string plain_frame = data;
  if (compressed) REQUIRE(inflate_record(data, 1 << 20, &plain_frame) == Inflated::ok);
  CHECK((!compressed || data.size() < plain_frame.size()));
  CHECK_THROWS_AS(Fixture("memory:", {{"compress", "yes"}}), Error);
  CHECK_THROWS_AS(Fixture("memory:", {{"compress_threshold", "-1"}}), Error);
}

TEST_CASE("a decompression bomb is bounded by max_data_bytes") {
  Fixture f("memory:", {{"max_data_bytes", "100000"}});
  Browser b;
  b.request([&](Request& r) { r.session(f.store, "sid").set("v", Value(1)); });
  std::string id;
  b.request([&](Request& r) { id = r.session(f.store, "sid").id_text(); });
  SessionRecord record;
  record.created = record.last_seen = f.now;
  auto status_with = [&](const std::string& stored) {
    f.store->backend()->save(id, stored, f.now, 3600);
    Request r(b.jar);
    return r.session(f.store, "sid").status();
  };
  // A real record, padded to 200 KB of one byte: 2x the bound, a few bytes compressed.
  record.values.set("pad", Value(std::string(200000, 'a')));
  std::string frame;
  encode_record(record, &frame);
  const std::string bomb = zstd_envelope(frame);
  CHECK(bomb.size() < 200);
  CHECK(status_with(bomb) == SESS_STATUS_MALFORMED);
  // Within the bound it opens.
  record.values.set("pad", Value(std::string(50000, 'a')));
  encode_record(record, &frame);
  const std::string fine = zstd_envelope(frame);
  CHECK(status_with(fine) == SESS_STATUS_VALID);
  // Truncated, with trailing bytes, two frames, nested, empty, or not zstd at all.
  CHECK(status_with(fine.substr(0, fine.size() - 1)) == SESS_STATUS_MALFORMED);
  CHECK(status_with(fine + "x") == SESS_STATUS_MALFORMED);
  CHECK(status_with(fine + fine.substr(1)) == SESS_STATUS_MALFORMED);
  CHECK(status_with(zstd_envelope(fine)) == SESS_STATUS_MALFORMED);
  CHECK(status_with(std::string(1, char(kCompressedRecord))) == SESS_STATUS_MALFORMED);
  CHECK(status_with(std::string(1, char(kCompressedRecord)) + "not zstd") == SESS_STATUS_MALFORMED);
  std::string flipped = fine;
  flipped[flipped.size() / 2] ^= 0x40;
  CHECK(status_with(flipped) != SESS_STATUS_VALID);
}

TEST_CASE("a compressed cookie: session over max_data_bytes is refused at save") {
  Fixture f("cookie:", {{"compress", "on"}, {"max_data_bytes", "10000"}});
  Browser b;
  CHECK(b.request([&](Request& r) { r.session(f.store, "sid").set("cart", Value(cart_json(20000))); }) ==
        Errc::value_too_large);
  CHECK(b.last_set_cookies.empty());
  CHECK(b.request([&](Request& r) { r.session(f.store, "sid").set("cart", Value(cart_json(5000))); }) ==
        Errc::ok);
}
