// The memcached: store against real memcached servers started by the test.
#include <catch2/catch.hpp>
#include <libmemcached/memcached.h>

#include <unistd.h>

#include <chrono>
#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "harness.h"
#include "memcached_store.h"
#include "servers.h"

using namespace sessions::internal;
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

std::unique_ptr<MemcachedStore> backend_on(int port) {
  MemcachedStore::Options options;
  options.servers = {{"127.0.0.1", port}};
  auto store = std::make_unique<MemcachedStore>(options);
  store->start();
  return store;
}


}  // namespace

TEST_CASE("memcached: the store contract") {
  MemcachedServer mc;
  const std::string uri = uri_for({&mc});
  SECTION("foreign value") { check_foreign_value(uri); }
  SECTION("hash_keys") { check_hash_keys(uri); }
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
  // Found by fuzz_store_uri: past 100 servers libmemcached aborted the process.
  auto servers = [](int n) {
    std::string uri = "memcached://";
    for (int i = 0; i < n; ++i) uri += (i ? ",h" : "h") + std::to_string(i) + ":11211";
    return uri;
  };
  Config config;
  config.secrets = {kSecret};
  CHECK_NOTHROW(Store::check(servers(100), config));
  CHECK_THROWS_WITH(Store::check(servers(101), config), Catch::Contains("at most 100"));
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

TEST_CASE("memcached: parallel requests on one session") {
  // Two servers: a moved ID usually changes server too.
  MemcachedServer a, b;
  check_concurrency(uri_for({&a, &b}));
}

TEST_CASE("memcached: save_if is a CAS write") {
  MemcachedServer mc;
  auto store = backend_on(mc.port);
  CHECK(store->atomic_save_if());
  store->save("a", "one", 0, 60);
  std::string data;
  Version loaded = 0;
  REQUIRE(store->load_versioned("a", 0, &data, &loaded));
  CHECK(data == "one");

  SECTION("a stale version is refused and nothing is written") {
    store->save("a", "two", 0, 60);
    CHECK(store->save_if("a", "a", "three", 0, 60, loaded) == Commit::changed);
    REQUIRE(store->load("a", 0, &data));
    CHECK(data == "two");
    // The server's version, not the bytes': the same bytes again are a new one.
    store->save("a", "one", 0, 60);
    CHECK(store->save_if("a", "a", "three", 0, 60, loaded) == Commit::changed);
    Version latest = 0;
    REQUIRE(store->load_versioned("a", 0, &data, &latest));
    CHECK(store->save_if("a", "a", "three", 0, 60, latest) == Commit::written);
    Version written = 0;
    REQUIRE(store->load_versioned("a", 0, &data, &written));
    CHECK(data == "three");
    CHECK(written != latest);
  }
  SECTION("a deleted record is gone, and stays deleted") {
    store->erase("a");
    CHECK(store->save_if("a", "a", "two", 0, 60, loaded) == Commit::gone);
    CHECK_FALSE(store->load("a", 0, &data));
  }
  SECTION("a moved ID: the old record is checked, the new written, the old deleted") {
    store->save("a", "two", 0, 60);
    CHECK(store->save_if("a", "b", "moved", 0, 60, loaded) == Commit::changed);
    CHECK_FALSE(store->load("b", 0, &data));
    REQUIRE(store->load("a", 0, &data));
    CHECK(data == "two");

    REQUIRE(store->load_versioned("a", 0, &data, &loaded));
    CHECK(store->save_if("a", "b", "moved", 0, 60, loaded) == Commit::written);
    CHECK_FALSE(store->load("a", 0, &data));
    REQUIRE(store->load("b", 0, &data));
    CHECK(data == "moved");
    // A request still holding the old ID finds it ended.
    CHECK(store->save_if("a", "a", "late", 0, 60, loaded) == Commit::gone);
    CHECK(store->save_if("a", "c", "late", 0, 60, loaded) == Commit::gone);
    CHECK_FALSE(store->load("c", 0, &data));
  }
}

TEST_CASE("memcached: a server without CAS values (-C) falls back to comparing the bytes") {
  const int port = free_port();
  std::vector<std::string> argv = {"memcached", "-l", "127.0.0.1", "-p", std::to_string(port),
                                   "-U", "0", "-C"};
  if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "root"});
  ServerProcess server(argv, port);
  server.start();
  auto store = backend_on(port);
  // Its CAS writes would all succeed (every item's value is 0): not atomic.
  CHECK_FALSE(store->atomic_save_if());
  store->save("a", "one", 0, 60);
  std::string data;
  Version loaded = 0;
  REQUIRE(store->load_versioned("a", 0, &data, &loaded));
  CHECK(loaded == content_version("one"));
  store->save("a", "two", 0, 60);
  CHECK(store->save_if("a", "a", "three", 0, 60, loaded) == Commit::changed);
  REQUIRE(store->load_versioned("a", 0, &data, &loaded));
  CHECK(store->save_if("a", "a", "three", 0, 60, loaded) == Commit::written);
  REQUIRE(store->load("a", 0, &data));
  CHECK(data == "three");
}
