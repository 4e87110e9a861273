// The request cycle in the core: loading, saving, lifetimes, strict IDs and
// failures, with a clock the tests move by hand.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include <unistd.h>

#include "error.h"
#include "harness.h"
#include "memory_store.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

// A backend the tests can take down, standing in for a server that goes away
// (real servers are exercised by the server-side store suites).
class SwitchableBackend : public Backend {
 public:
  bool down = false;
  MemoryStore inner{1000, 1};
  bool load(std::string_view k, int64_t now, std::string* d) override {
    check();
    return inner.load(k, now, d);
  }
  void save(std::string_view k, std::string_view d, int64_t now, int64_t ttl) override {
    check();
    inner.save(k, d, now, ttl);
  }
  void erase(std::string_view k) override {
    check();
    inner.erase(k);
  }

 private:
  void check() const {
    if (down) fail(Errc::store_unavailable, "test backend is down");
  }
};

}  // namespace

TEST_CASE("a session survives across requests in both built-in stores") {
  for (std::string uri : {"cookie:", "memory:"}) {
    INFO(uri);
    Fixture f(uri);
    Browser b;
    REQUIRE(b.request([&](Request& r) {
      Session& s = r.session(f.store, "mysession");
      CHECK(s.status() == SESS_STATUS_NEW);
      CHECK(s.is_new());
      s.set("user_id", Value(42));
      s.add_flash("_flash", Value("welcome"));
    }) == Errc::ok);
    REQUIRE(b.last_set_cookies.size() == 1);
    f.now += 10;
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "mysession");
      CHECK(s.status() == SESS_STATUS_VALID);
      CHECK_FALSE(s.is_new());
      CHECK(*s.get("user_id") == Value(42));
      CHECK(s.created() == f.now - 10);
      CHECK(s.last_seen() == f.now - 10);
      CHECK(s.take_flashes("_flash") == Array{Value("welcome")});
    });
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "mysession");
      CHECK(s.take_flashes("_flash").empty());  // read once
      CHECK_FALSE(s.is_modified());
    });
    CHECK(b.last_set_cookies.empty());  // nothing changed, nothing sent
  }
}

TEST_CASE("an untouched new session writes nothing") {
  Fixture f("memory:");
  Browser b;
  b.request([&](Request& r) { r.session(f.store, "sid"); });
  CHECK(b.last_set_cookies.empty());
  CHECK(static_cast<MemoryStore*>(f.store->backend())->size() == 0);
}

TEST_CASE("server-side cookies carry only an authenticated 256-bit ID") {
  Fixture f("memory:");
  Browser b;
  std::string id;
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.set("secret", Value(std::string(100, 's')));
  });
  b.request([&](Request& r) { id = r.session(f.store, "sid").id_text(); });
  CHECK(id.size() == 43);  // 32 bytes in base64url
  CHECK(b.jar.find(std::string(10, 's')) == std::string::npos);

  // A forged ID (sealed with another key) is refused without a lookup.
  Fixture other("memory:");
  Config config;
  config.secrets = {std::string(40, 'x')};
  auto forger = Store::open("memory:", config);
  Browser mallory;
  mallory.request([&](Request& r) { r.session(forger, "sid").set("x", Value(1)); });
  Browser victim{mallory.jar, {}};
  victim.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_UNKNOWN_KEY);
    CHECK(s.count() == 0);
  });
}

TEST_CASE("strict mode: an authentic cookie without a record gets a new ID") {
  Fixture f("memory:");
  Browser b;
  std::string old_id, new_id;
  b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
  b.request([&](Request& r) { old_id = r.session(f.store, "sid").id_text(); });
  f.store->backend()->erase(old_id);
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_UNKNOWN_ID);
    CHECK(s.id_text().empty());
    s.set("b", Value(2));
  });
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_VALID);
    new_id = s.id_text();
    CHECK_FALSE(s.get("a"));
  });
  CHECK(new_id != old_id);
}

TEST_CASE("tampered and malformed cookies give new sessions with the reason") {
  Fixture f("cookie:");
  Browser b;
  b.request([&](Request& r) { r.session(f.store, "sid").set("role", Value("user")); });
  std::string value = b.jar.substr(4);
  value[value.size() / 2] = value[value.size() / 2] == 'A' ? 'B' : 'A';
  Browser tampered{"sid=" + value, {}};
  tampered.request([&](Request& r) {
    CHECK(r.session(f.store, "sid").status() == SESS_STATUS_TAMPERED);
  });
  Browser junk{"sid=%%%not-base64%%%", {}};
  junk.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_MALFORMED); });
  // With a stale cookie first and a good one after (two paths), the good one wins.
  Browser both{"sid=" + value + "; " + b.jar, {}};
  both.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_VALID);
    CHECK(*s.get("role") == Value("user"));
  });
}

TEST_CASE("a corrupt record in the store is left alone") {
  Fixture f("memory:");
  Browser b;
  std::string id;
  b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
  b.request([&](Request& r) { id = r.session(f.store, "sid").id_text(); });
  f.store->backend()->save(id, "foreign value", f.now, 100);
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_MALFORMED);
    s.set("b", Value(2));
  });
  std::string data;
  REQUIRE(f.store->backend()->load(id, f.now, &data));
  CHECK(data == "foreign value");
}

TEST_CASE("lifetimes: max age, idle timeout and absolute timeout are separate") {
  SECTION("max age comes from the cookie") {
    Fixture f("cookie:", {{"max_age", "60"}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
    f.now += 61;
    b.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_EXPIRED); });
  }
  SECTION("idle timeout, with active sessions refreshed") {
    Fixture f("memory:", {{"idle_timeout", "100"}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
    for (int i = 0; i < 5; ++i) {  // visits 60 s apart keep it alive for 300 s
      f.now += 60;
      b.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_VALID); });
      CHECK(b.last_set_cookies.size() == 1);  // touched: last_seen moved
    }
    f.now += 101;
    b.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_EXPIRED); });
  }
  SECTION("absolute timeout ends even an active session") {
    Fixture f("cookie:", {{"absolute_timeout", "1h"}, {"idle_timeout", "10m"}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
    for (int i = 0; i < 6; ++i) {
      f.now += 9 * 60;
      b.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_VALID); });
    }
    f.now += 9 * 60;  // 63 minutes after creation
    b.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_EXPIRED); });
  }
  SECTION("a browser-session cookie never deletes the server record") {
    Fixture f("memory:", {{"max_age", "0"}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
    CHECK(b.last_set_cookies[0].find("Max-Age") == std::string::npos);
    f.now += 7 * 86400;
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      CHECK(s.status() == SESS_STATUS_VALID);
      CHECK(*s.get("a") == Value(1));
    });
  }
}

TEST_CASE("a per-session max_age is remembered by the session") {
  Fixture f("memory:", {{"max_age", "1h"}});
  Browser b;
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.set("user", Value("ann"));
    s.set_option("max_age", "90d");  // "remember me"
  });
  CHECK(b.last_set_cookies[0].find("Max-Age=7776000") != std::string::npos);
  f.now += 2 * 3600;
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    REQUIRE(s.status() == SESS_STATUS_VALID);
    s.set("n", Value(1));
  });
  CHECK(b.last_set_cookies[0].find("Max-Age=7776000") != std::string::npos);
}

TEST_CASE("regenerate_id keeps the data, moves it, and deletes the old ID") {
  Fixture f("memory:");
  Browser b;
  std::string old_id, new_id;
  b.request([&](Request& r) { r.session(f.store, "sid").set("cart", Value(3)); });
  std::string old_jar = b.jar;
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    old_id = s.id_text();
    s.regenerate_id();
    new_id = s.id_text();
  });
  CHECK(new_id != old_id);
  std::string data;
  CHECK_FALSE(f.store->backend()->load(old_id, f.now, &data));
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.id_text() == new_id);
    CHECK(*s.get("cart") == Value(3));
  });
  Browser replay{old_jar, {}};
  replay.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_UNKNOWN_ID); });
}

TEST_CASE("destroy deletes the record and expires the cookie") {
  for (std::string uri : {"cookie:", "memory:"}) {
    Fixture f(uri);
    Browser b;
    std::string id;
    b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      id = s.id_text();
      s.destroy();
    });
    REQUIRE(b.last_set_cookies.size() == 1);
    CHECK(b.last_set_cookies[0].rfind("sid=; Path=/; Max-Age=0;", 0) == 0);
    CHECK(b.jar.empty());
    if (f.store->backend()) {
      std::string data;
      CHECK_FALSE(f.store->backend()->load(id, f.now, &data));
    }
  }
}

TEST_CASE("with max_chunks=1 a cookie over 4096 bytes is refused at save and nothing is sent") {
  Fixture f("cookie:", {{"max_chunks", "1"}});
  Browser b;
  b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
  std::string jar = b.jar;
  Errc rc = b.request([&](Request& r) {
    r.session(f.store, "sid").set("big", Value(std::string(4000, 'x')));
  });
  CHECK(rc == Errc::cookie_too_large);
  CHECK(b.last_set_cookies.empty());
  CHECK(b.jar == jar);  // the browser keeps the previous session
}

TEST_CASE("max_data_bytes bounds server-side sessions") {
  Fixture f("memory:", {{"max_data_bytes", "1000"}});
  Browser b;
  Errc rc = b.request([&](Request& r) {
    r.session(f.store, "sid").set("big", Value(std::string(2000, 'x')));
  });
  CHECK(rc == Errc::value_too_large);
  CHECK(b.last_set_cookies.empty());
}

TEST_CASE("several sessions, names and stores in one request") {
  Fixture cookies("cookie:"), memory("memory:");
  Browser b;
  b.request([&](Request& r) {
    r.session(cookies.store, "a").set("hello", Value("world!"));
    r.session(memory.store, "b").set("hello", Value("world?"));
    CHECK(&r.session(cookies.store, "a") == &r.session(cookies.store, "a"));
    CHECK_THROWS_AS(r.session(memory.store, "a"), Error);
    CHECK_THROWS_AS(r.session(memory.store, "bad name"), Error);
  });
  CHECK(b.last_set_cookies.size() == 2);
  b.request([&](Request& r) {
    CHECK(*r.session(cookies.store, "a").get("hello") == Value("world!"));
    CHECK(*r.session(memory.store, "b").get("hello") == Value("world?"));
  });
}

TEST_CASE("an unreachable store is an error, never a fresh session over the data") {
  auto backend = std::make_unique<SwitchableBackend>();
  SwitchableBackend* sw = backend.get();
  auto store = std::make_shared<Store>(Settings(),
                                       std::make_unique<Codec>(CodecMode::aes_gcm,
                                                               std::vector<std::string>{kSecret}),
                                       std::move(backend));
  Browser b;
  b.request([&](Request& r) { r.session(store, "sid").set("cart", Value(5)); });
  std::string jar = b.jar;
  sw->down = true;
  {
    Request r(b.jar);
    try {
      r.session(store, "sid");
      FAIL("loaded a session from a store that is down");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::store_unavailable);
    }
  }
  sw->down = false;
  Errc rc = b.request([&](Request& r) {
    r.session(store, "sid").set("cart", Value(6));
    sw->down = true;  // goes away between load and save
  });
  CHECK(rc == Errc::store_unavailable);
  CHECK(b.last_set_cookies.empty());
  sw->down = false;
  b.request([&](Request& r) { CHECK(*r.session(store, "sid").get("cart") == Value(5)); });
  CHECK(b.jar == jar);
}

TEST_CASE("after finish, sessions refuse changes") {
  Fixture f("cookie:");
  Request r("");
  Session& s = r.session(f.store, "sid");
  std::string message;
  CHECK(r.finish(&message) == Errc::ok);
  CHECK_THROWS_AS(s.set("a", Value(1)), Error);
  CHECK_THROWS_AS(r.session(f.store, "other"), Error);
  CHECK(r.finish(&message) == Errc::state);
}

TEST_CASE("store URIs and options are validated at open") {
  auto code_of = [](const std::string& uri, OptionList options = {},
                    std::vector<std::string> secrets = {kSecret}) {
    try {
      Config config;
      config.secrets = secrets;
      config.options = options;
      Store::open(uri, config);
    } catch (const Error& e) {
      return e.code();
    }
    return Errc::ok;
  };
  CHECK(code_of("cookie:") == Errc::ok);
  CHECK(code_of("memory:?max_sessions=10&shards=2&idle_timeout=30m") == Errc::ok);
  CHECK(code_of("MEMORY:") == Errc::ok);
  CHECK(code_of("") == Errc::bad_uri);
  CHECK(code_of("nonsense") == Errc::bad_uri);
  CHECK(code_of("gopher://x") == Errc::bad_uri);
  CHECK(code_of("cookie:/path") == Errc::bad_uri);
  CHECK(code_of("cookie:?max_sessions=5") == Errc::bad_option);
  CHECK(code_of("memory:?max_sessions=abc") == Errc::bad_option);
  CHECK(code_of("memory:?path=%0d%0aX") == Errc::bad_option);
  CHECK(code_of("memory:?bad%zz=1") == Errc::bad_uri);
  CHECK(code_of("memory:?novalue") == Errc::bad_uri);
  CHECK(code_of("cookie:?same_site=none") == Errc::bad_option);
  CHECK(code_of("cookie:?same_site=none&secure=1") == Errc::ok);
  CHECK(code_of("cookie:", {{"codec", "rot13"}}) == Errc::bad_option);
  CHECK(code_of("cookie:", {}, {}) == Errc::bad_secret);
  CHECK(code_of("cookie:", {}, {"short"}) == Errc::bad_secret);
  Config config;
  CHECK_THROWS_AS(config.set("no_such_option", "1"), Error);
  CHECK_NOTHROW(config.set("max_sessions", "5"));  // a backend's: checked at open
}

TEST_CASE("the full cycle from many threads on one memory store", "[threads]") {
  Fixture f("memory:?max_sessions=100000");
  f.store->set_clock(nullptr);  // the fixture's clock is not shared-state safe
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      Browser b;
      for (int i = 0; i < 500; ++i) {
        Errc rc = b.request([&](Request& r) {
          Session& s = r.session(f.store, "sid");
          const Value* count = s.get("count");
          int64_t expected = i == 0 ? 0 : i;
          int64_t got = count ? *count->get_if<int64_t>() : 0;
          if (got != expected) ++failures;
          s.set("count", Value(got + 1));
        });
        if (rc != Errc::ok) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
}

TEST_CASE("a server-side ID cookie is re-sealed at most once a minute") {
  Fixture f("memory:");
  Browser b;
  auto value_of = [](const std::string& line) { return line.substr(0, line.find(';')); };
  auto touch = [&](Browser& browser) {
    REQUIRE(browser.request([&](Request& r) {
      r.session(f.store, "sid").set("n", Value(int64_t(f.now)));
    }) == Errc::ok);
    REQUIRE(browser.last_set_cookies.size() == 1);
    return browser.last_set_cookies[0];
  };
  const std::string first = touch(b);
  f.now += 30;
  const std::string second = touch(b);
  CHECK(value_of(second) == value_of(first));  // the same sealed value...
  CHECK(second != first);                      // ...with fresh Expires
  f.now += 31;
  const std::string third = touch(b);
  CHECK(value_of(third) != value_of(first));   // sealed anew after a minute
  b.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_VALID); });

  SECTION("a changed max age is sealed at once") {
    b.request([&](Request& r) { r.session(f.store, "sid").set_option("max_age", "90d"); });
    REQUIRE(b.last_set_cookies.size() == 1);
    CHECK(value_of(b.last_set_cookies[0]) != value_of(third));
  }
  SECTION("a new ID is sealed at once") {
    b.request([&](Request& r) { r.session(f.store, "sid").regenerate_id(); });
    REQUIRE(b.last_set_cookies.size() == 1);
    CHECK(value_of(b.last_set_cookies[0]) != value_of(third));
  }
  SECTION("a cookie sealed by a rotated-out key is sealed with the new one") {
    Config config;
    config.secrets = {"a-brand-new-secret-a-brand-new-secret!", kSecret};
    auto rotated = Store::open("memory:", config);
    // The session sends a value back only when the codec says the current
    // key sealed it.
    std::string buffer;
    std::string_view payload;
    Sealed sealed;
    const std::string cookie = value_of(third).substr(std::string("sid=").size());
    REQUIRE(rotated->codec().decode("sid", cookie, f.now, &buffer, &payload, &sealed) ==
            SESS_STATUS_VALID);
    CHECK_FALSE(sealed.current_key);
    REQUIRE(f.store->codec().decode("sid", cookie, f.now, &buffer, &payload, &sealed) ==
            SESS_STATUS_VALID);
    CHECK(sealed.current_key);
  }
}

TEST_CASE("touch renews a session's expiry without changing it, a few times per lifetime") {
  SECTION("cookie store: a rolling max age") {
    Fixture f("cookie:", {{"max_age", "100"}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
    f.now += 5;  // within a tenth of the max age: nothing written
    b.request([&](Request& r) { r.session(f.store, "sid").touch(); });
    CHECK(b.last_set_cookies.empty());
    for (int i = 0; i < 5; ++i) {  // 60 s apart: each touch re-seals, so 300 s pass
      f.now += 60;
      b.request([&](Request& r) {
        Session& s = r.session(f.store, "sid");
        REQUIRE(s.status() == SESS_STATUS_VALID);
        s.touch();
        CHECK_FALSE(s.is_modified());
      });
      CHECK(b.last_set_cookies.size() == 1);
    }
    b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("a") == Value(1)); });
    f.now += 101;  // untouched for longer than the max age
    b.request([&](Request& r) { CHECK(r.session(f.store, "sid").status() == SESS_STATUS_EXPIRED); });
  }
  SECTION("server-side store: last_seen and the record's expiry follow the visits") {
    Fixture f("memory:", {{"idle_timeout", "1h"}});
    Browser b;
    b.request([&](Request& r) { r.session(f.store, "sid").set("a", Value(1)); });
    f.now += 30;  // under a minute: no write
    b.request([&](Request& r) { r.session(f.store, "sid").touch(); });
    CHECK(b.last_set_cookies.empty());
    f.now += 31;
    int64_t seen = 0;
    b.request([&](Request& r) { r.session(f.store, "sid").touch(); });
    CHECK(b.last_set_cookies.size() == 1);
    b.request([&](Request& r) { seen = r.session(f.store, "sid").last_seen(); });
    CHECK(seen == f.now);
  }
  SECTION("a new or invalid session is not created by a touch") {
    Fixture f("memory:");
    Browser b;
    b.jar = "sid=forged";
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      CHECK(s.status() == SESS_STATUS_MALFORMED);
      s.touch();
    });
    CHECK(b.last_set_cookies.empty());
  }
}

TEST_CASE("Store::check validates without dialling or touching files") {
  Config config;
  config.secrets = {kSecret};
  // Nothing listens on port 1, and the directory does not exist: check
  // passes where open would fail.
  CHECK_NOTHROW(Store::check("redis://127.0.0.1:1/0", config));
  CHECK_NOTHROW(Store::check("file:///nonexistent/libsessions-check", config));
  CHECK(::access("/nonexistent/libsessions-check", F_OK) != 0);
  CHECK_THROWS_AS(Store::open("redis://127.0.0.1:1/0?connect_timeout_ms=200", config), Error);
  CHECK_THROWS_AS(Store::check("redis://127.0.0.1:notaport", config), Error);
  CHECK_THROWS_AS(Store::check("bogus:", config), Error);
  CHECK_THROWS_AS(Store::check("memory:?shards=0", config), Error);
  Config no_secret;
  CHECK_THROWS_AS(Store::check("cookie:", no_secret), Error);
}

TEST_CASE("a __Host- session is refused at sess_request_session unless its options allow it") {
  Fixture insecure("memory:");
  Request r("");
  CHECK_THROWS_AS(r.session(insecure.store, "__Host-sid"), Error);
  CHECK_THROWS_AS(r.session(insecure.store, "__Secure-sid"), Error);
  Fixture secure("memory:", {{"secure", "true"}});
  Session& s = r.session(secure.store, "__Host-sid");
  s.set("n", Value(1));
  // A per-session override cannot break it either.
  CHECK_THROWS_AS(s.set_option("domain", "example.com"), Error);
  CHECK_THROWS_AS(s.set_option("path", "/app"), Error);
  CHECK_THROWS_AS(s.set_option("secure", "false"), Error);
  std::string message;
  REQUIRE(r.finish(&message) == Errc::ok);
  REQUIRE(r.set_cookie_count() == 1);
  CHECK(r.set_cookie(0).rfind("__Host-sid=", 0) == 0);
  CHECK(r.set_cookie(0).find("; Secure") != std::string::npos);
}
