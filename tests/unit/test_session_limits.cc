// The request cycle at its edges: writes after destroy, times at the ends of
// their range, and sessions with thousands of keys.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>

#include "error.h"
#include "harness.h"
#include "memory_store.h"

using namespace sessions::internal;
using namespace sessions::testing;

TEST_CASE("what is written after destroy goes into a fresh session") {
  for (std::string uri : {"cookie:", "memory:"}) {
    Fixture f(uri);
    Browser b;
    std::string old_id, old_jar;
    b.request([&](Request& r) { r.session(f.store, "sid").set("user", Value("ann")); });
    old_jar = b.jar;
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      old_id = s.id_text();
      s.destroy();
      s.add_flash("_flash", Value("You have been logged out."));
      s.set("theme", Value("dark"));
    });
    REQUIRE(b.last_set_cookies.size() == 1);
    CHECK(b.last_set_cookies[0].find("Max-Age=0") == std::string::npos);  // replaced, not expired
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      CHECK(s.status() == SESS_STATUS_VALID);
      CHECK_FALSE(s.get("user"));
      CHECK(*s.get("theme") == Value("dark"));
      CHECK(s.take_flashes("_flash") == Array{Value("You have been logged out.")});
      if (f.store->backend()) CHECK(s.id_text() != old_id);
    });
    if (f.store->backend()) {
      std::string data;
      CHECK_FALSE(f.store->backend()->load(old_id, f.now, &data));
      Browser replay{old_jar, {}};
      replay.request(
          [&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_UNKNOWN_ID); });
    }
    // Read and emptied again after destroy: only the expiry goes out.
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      s.destroy();
      s.set("x", Value(1));
      s.erase("x");
    });
    REQUIRE(b.last_set_cookies.size() == 1);
    CHECK(b.last_set_cookies[0].find("Max-Age=0") != std::string::npos);
  }
}

TEST_CASE("times at the ends of their range never overflow", "[hostile]") {
  // A record others can write (not memory:), with last_seen far in the past:
  // malformed, never valid through an overflowing `now - last_seen`.
  class OpenBackend : public MemoryStore {
   public:
    OpenBackend() : MemoryStore(100, 1) {}
    bool private_to_process() const override { return false; }
  };
  Config config;
  config.secrets = {kSecret};
  config.set("idle_timeout", "30m");
  Settings settings;
  settings.idle_timeout = 1800;
  auto store = std::make_shared<Store>(settings, std::make_unique<Codec>(CodecMode::aes_gcm, config.secrets),
                                       std::make_unique<OpenBackend>());
  int64_t now = 1'800'000'000;
  store->set_clock([&] { return now; });
  Browser b;
  std::string id;
  b.request([&](Request& r) { r.session(store, "sid").set("a", Value(1)); });
  b.request([&](Request& r) { id = r.session(store, "sid").id_text(); });
  std::string data;
  REQUIRE(store->backend()->load(id, now, &data));
  for (int64_t bad : {INT64_MIN, INT64_MAX, int64_t(-1)}) {
    for (size_t field : {1, 9}) {  // created, last_seen
      std::string hostile = data;
      for (int i = 0; i < 8; ++i) hostile[field + size_t(i)] = char(uint64_t(bad) >> (56 - 8 * i));
      store->backend()->save(id, hostile, now, 100);
      b.request([&](Request& r) { CHECK(r.session(store, "sid").status() == SESS_STATUS_MALFORMED); });
      store->backend()->save(id, data, now, 100);
    }
  }
  // The longest max age there is, at a late clock: Expires stays a real date.
  Fixture f("cookie:");
  f.now = 250'000'000'000;  // the year 9891
  Browser c;
  c.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.set_option("max_age", "146000d");
    s.set("a", Value(1));
  });
  REQUIRE(c.last_set_cookies.size() == 1);
  CHECK(c.last_set_cookies[0].find("Max-Age=12614400000; Expires=Fri, 31 Dec 9999 23:59:59 GMT") !=
        std::string::npos);
  c.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_VALID); });
}

TEST_CASE("many keys: past the scan limit the index keeps every lookup right") {
  // (Its cost per key is measured in bench/bench_cycle: linear, not quadratic.)
  Fixture f("memory:", {{"max_data_bytes", "1073741824"}});
  Browser b;
  const int n = 3000;
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    for (int i = 0; i < n; ++i) s.set("k" + std::to_string(i), Value(i));
    for (int i = 0; i < n; i += 3) s.erase("k" + std::to_string(i));  // the last takes its place
    for (int i = 0; i < n; i += 6) s.set("k" + std::to_string(i), Value(-i));  // back again
    s.set("k1", Value("changed"));
    CHECK(s.count() == size_t(n - n / 3 + n / 6));
  });
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    REQUIRE(s.status() == SESS_STATUS_VALID);
    CHECK(s.count() == size_t(n - n / 3 + n / 6));
    CHECK(*s.get("k1") == Value("changed"));
    for (int i = 2; i < n; ++i) {
      const Value* v = s.get("k" + std::to_string(i));
      if (i % 6 == 0) CHECK((v && *v == Value(-i)));
      else if (i % 3 == 0) CHECK_FALSE(v);
      else CHECK((v && *v == Value(i)));
    }
    // Loaded (packed) keys and new ones side by side, past the limit too.
    for (int i = 0; i < 100; ++i) s.set("new" + std::to_string(i), Value(i));
    for (int i = 1; i < n; i += 3) s.erase("k" + std::to_string(i));
    CHECK_FALSE(s.get("k1"));
    CHECK(*s.get("new99") == Value(99));
    CHECK(s.keys().size() == s.count());
    CHECK(std::is_sorted(s.keys().begin(), s.keys().end()));
  });
}
