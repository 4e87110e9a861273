#include "contract.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "harness.h"

namespace sessions::testing {
Errc open_error(const std::string& uri, OptionList options) {
  try {
    Fixture f(uri, std::move(options));
  } catch (const Error& e) {
    UNSCOPED_INFO(e.what());
    return e.code();
  }
  return Errc::ok;
}

std::string log_in(Fixture& f, Browser& b, int64_t user_id) {
  REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").set("user_id", Value(user_id)); }) ==
          Errc::ok);
  REQUIRE(b.last_set_cookies.size() == 1);
  // A new session's ID is drawn when it is saved: read it back.
  std::string id;
  b.request([&](Request& r) { id = r.session(f.store, "sid").id_text(); });
  REQUIRE(id.size() == 43);
  return id;
}

void check_round_trip(const std::string& uri) {
  Fixture f(uri, {}, /*fake_clock=*/false);
  Browser b;
  REQUIRE(b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_NEW);
    s.set("user_id", Value(42));
    s.set("name", Value("Zoë"));
    s.set("cart", Value(Array{Value(1), Value(2.5), Value(true), Value()}));
    s.add_flash("_flash", Value("welcome"));
  }) == Errc::ok);
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_VALID);
    CHECK(*s.get("user_id") == Value(42));
    CHECK(*s.get("name") == Value("Zoë"));
    CHECK(*s.get("cart") == Value(Array{Value(1), Value(2.5), Value(true), Value()}));
    CHECK(s.take_flashes("_flash") == Array{Value("welcome")});
    s.set("user_id", Value(43));
  });
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(*s.get("user_id") == Value(43));
    CHECK(s.take_flashes("_flash").empty());
  });
}

void check_foreign_value(const std::string& uri) {
  Fixture f(uri, {}, false);
  Browser b;
  const std::string id = log_in(f, b);
  const std::string foreign = "{\"not\": \"ours\"}";
  f.store->backend()->save(id, foreign, f.store->now(), 600);
  std::string new_id;
  REQUIRE(b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_MALFORMED);
    CHECK(s.count() == 0);
    s.set("user_id", Value(7));
    new_id = s.id_text();
  }) == Errc::ok);
  CHECK(new_id != id);  // a new session under a new ID
  std::string data;
  REQUIRE(f.store->backend()->load(id, f.store->now(), &data));
  CHECK(data == foreign);  // left alone
  b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("user_id") == Value(7)); });
}

void check_hash_keys(const std::string& uri) {
  Fixture f(uri, {{"hash_keys", "true"}}, false);
  Browser b;
  const std::string id = log_in(f, b);
  std::string data;
  CHECK_FALSE(f.store->backend()->load(id, f.store->now(), &data));
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_VALID);
    CHECK(*s.get("user_id") == Value(42));
    s.regenerate_id();
  });
  b.request([&](Request& r) { CHECK(*r.session(f.store, "sid").get("user_id") == Value(42)); });
}

void check_concurrent_cycles(const std::string& uri) {
  Fixture f(uri, {}, false);
  constexpr int kThreads = 8, kCycles = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Browser b;
      for (int i = 0; i < kCycles; ++i) {
        Errc rc = b.request([&](Request& r) {
          Session& s = r.session(f.store, "sid");
          const Value* count = s.get("count");
          int64_t expected = i == 0 ? 0 : i;
          int64_t seen = count ? *count->get_if<int64_t>() : 0;
          if (seen != expected || (i > 0 && *s.get("thread") != Value(t))) ++failures;
          s.set("count", Value(seen + 1));
          s.set("thread", Value(t));
        });
        if (rc != Errc::ok) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
}

}  // namespace sessions::testing
