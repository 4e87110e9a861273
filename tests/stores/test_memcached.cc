// The memcached: store against real memcached servers started by the test.
#include <catch2/catch.hpp>
#include <libmemcached/memcached.h>

#include <chrono>
#include <thread>

#include "contract.h"
#include "harness.h"
#include "servers.h"

using namespace sessions;
using namespace sessions::testing;

namespace {

std::string uri_for(std::initializer_list<const MemcachedServer*> servers,
                    const std::string& query = "") {
  std::string uri = "memcached://";
  for (const auto* s : servers)
    uri += (uri.back() == '/' ? "" : ",") + std::string("127.0.0.1:") + std::to_string(s->port);
  return query.empty() ? uri : uri + "?" + query;
}

// How many items one server holds (its "curr_items" statistic).
uint64_t items_on(const MemcachedServer& server) {
  memcached_st* mc = memcached_create(nullptr);
  memcached_server_add(mc, "127.0.0.1", in_port_t(server.port));
  memcached_return_t rc;
  memcached_stat_st* stats = memcached_stat(mc, nullptr, &rc);
  uint64_t items = stats ? stats[0].curr_items : 0;
  memcached_stat_free(mc, stats);
  memcached_free(mc);
  return items;
}


}  // namespace

TEST_CASE("memcached: the store contract") {
  MemcachedServer mc;
  const std::string uri = uri_for({&mc});
  SECTION("round trip") { check_round_trip(uri); }
  SECTION("regenerate_id") { check_regenerate_id(uri); }
  SECTION("destroy") { check_destroy(uri); }
  SECTION("foreign value") { check_foreign_value(uri); }
  SECTION("hash_keys") { check_hash_keys(uri); }
  SECTION("expiry") { check_expiry(uri); }
  SECTION("concurrent cycles, pool smaller than the threads") {
    check_concurrent_cycles(uri_for({&mc}, "pool=3"));
  }
}

TEST_CASE("memcached: sessions spread over several servers by consistent hashing") {
  MemcachedServer a, b, c;
  Fixture f(uri_for({&a, &b, &c}), {}, false);
  std::vector<Browser> browsers(60);
  for (auto& browser : browsers) log_in(f, browser);
  CHECK(items_on(a) + items_on(b) + items_on(c) == 60);
  CHECK(items_on(a) > 5);
  CHECK(items_on(b) > 5);
  CHECK(items_on(c) > 5);
  for (auto& browser : browsers)
    browser.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("user_id") == Value(42)); });

  SECTION("a server down fails its own sessions only, and nothing is saved over them") {
    c.process.kill_hard();
    size_t unavailable = 0, fine = 0;
    for (auto& browser : browsers) {
      try {
        browser.request([&](Request& r) { r.session(f.store, "sid").set("seen", Value(true)); });
        ++fine;
      } catch (const Error& e) {
        CHECK(e.code() == Errc::store_unavailable);
        ++unavailable;
      }
    }
    CHECK(unavailable > 5);  // c's share
    CHECK(fine > 10);        // a's and b's
  }
}

TEST_CASE("memcached: expiries over 30 days are sent as absolute times") {
  MemcachedServer mc;
  Fixture f(uri_for({&mc}), {{"max_age", "60d"}}, false);
  Browser b;
  const std::string id = log_in(f, b);
  // Sent as a 60-day duration, memcached would read a date in 1970 and
  // drop the item at once.
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_VALID);
    CHECK(*s.get("user_id") == Value(42));
  });
}

TEST_CASE("memcached: bad URIs and options are refused") {
  CHECK(open_error("memcached://") == Errc::bad_uri);
  CHECK(open_error("memcached://u:p@127.0.0.1") == Errc::bad_uri);
  CHECK(open_error("memcached://127.0.0.1:0") == Errc::bad_uri);
  CHECK(open_error("memcached://127.0.0.1,") == Errc::bad_uri);
  CHECK(open_error("memcached://127.0.0.1/path") == Errc::bad_uri);
  CHECK(open_error("memcached://127.0.0.1?prefix=a%20b") == Errc::bad_option);
  CHECK(open_error("memcached://127.0.0.1?db=1") == Errc::bad_option);  // redis:'s
}

TEST_CASE("memcached: a server down at open is a clear error") {
  const int port = free_port();
  try {
    Fixture f("memcached://127.0.0.1:" + std::to_string(port) + "?connect_timeout_ms=500");
    FAIL("opened a store on a closed port");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::store_unavailable);
    CHECK_THAT(e.what(), Catch::Contains(std::to_string(port)));
  }
}

TEST_CASE("memcached: a server killed between requests, then back") {
  MemcachedServer mc;
  Fixture f(uri_for({&mc}, "timeout_ms=500"), {}, false);
  Browser b;
  log_in(f, b);
  mc.process.kill_hard();
  CHECK_THROWS_MATCHES(b.request([&](Request& r) { r.session(f.store, "sid"); }), Error,
                       Catch::Predicate<Error>([](const Error& e) {
                         return e.code() == Errc::store_unavailable;
                       }));
  Browser other;
  CHECK(other.request([&](Request& r) { r.session(f.store, "sid").set("x", Value(1)); }) ==
        Errc::store_unavailable);
  CHECK(other.last_set_cookies.empty());

  mc.process.start();  // memcached keeps nothing: the old session is gone
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_UNKNOWN_ID);
    s.set("user_id", Value(43));
  });
  b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("user_id") == Value(43)); });
}

TEST_CASE("memcached: a hung server times out, and the store recovers") {
  MemcachedServer mc;
  Fixture f(uri_for({&mc}, "timeout_ms=200"), {}, false);
  Browser b;
  log_in(f, b);
  mc.process.pause();
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(b.request([&](Request& r) { r.session(f.store, "sid"); }), Error);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1500));
  mc.process.resume();
  b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("user_id") == Value(42)); });
}

TEST_CASE("memcached: a value larger than the server accepts is a clear error") {
  MemcachedServer mc("1m");
  Fixture f(uri_for({&mc}), {{"max_data_bytes", "8388608"}}, false);
  Browser b;
  log_in(f, b);
  Errc rc = b.request([&](Request& r) {
    r.session(f.store, "sid").set("blob", Value(Bytes{std::string(1536 * 1024, 'x')}));
  });
  CHECK(rc == Errc::value_too_large);
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.get("blob") == nullptr);
    CHECK(*s.get("user_id") == Value(42));
  });
}

TEST_CASE("memcached: a restart between two requests is not an error") {
  MemcachedServer mc;
  Fixture f(uri_for({&mc}, "pool=4"), {}, false);
  Browser b;
  log_in(f, b);
  mc.process.stop();
  mc.process.start();
  for (int i = 0; i < 6; ++i) {
    Errc rc = b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");  // memcached forgot it: a new session
      s.set("user_id", Value(int64_t(50 + i)));
    });
    CHECK(rc == Errc::ok);
  }
  b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("user_id") == Value(55)); });
}
