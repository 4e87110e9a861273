// concurrency=merge|cas|last_write in the core, on memory: (the server-side
// stores run the same checks against their servers in tests/stores).
#include <catch2/catch.hpp>

#include "concurrency.h"
#include "harness.h"

using namespace sessions::internal;
using namespace sessions::testing;

TEST_CASE("memory: parallel requests on one session") { check_concurrency("memory:"); }

TEST_CASE("concurrency is an option of server-side stores only") {
  CHECK_THROWS_AS(Fixture("memory:", {{"concurrency", "sometimes"}}), Error);
  CHECK_THROWS_AS(Fixture("cookie:", {{"concurrency", "merge"}}), Error);
  CHECK_THROWS_AS(Fixture("cookie:", {{"concurrency", "cas"}}), Error);
  Fixture last("cookie:", {{"concurrency", "last_write"}});
}

TEST_CASE("cas refuses a save whose record changed since load, and saves nothing") {
  Fixture f("memory:", {{"concurrency", "cas"}});
  Browser a;
  a.request([&](Request& r) { r.session(f.store, "sid").set("n", Value(1)); });
  Request slow(a.jar), fast(a.jar);
  slow.session(f.store, "sid").set("n", Value(100));
  fast.session(f.store, "sid").set("n", Value(2));
  std::string message;
  REQUIRE(fast.finish(&message) == Errc::ok);
  CHECK(slow.finish(&message) == Errc::conflict);
  CHECK(message.find("concurrency=cas") != std::string::npos);
  CHECK(slow.set_cookie_count() == 0);
  Request check(a.jar);
  CHECK(*check.session(f.store, "sid").get("n") == Value(2));
}

TEST_CASE("merge applies only this request's changes, last_write replaces the record") {
  for (const char* mode : {"merge", "last_write"}) {
    INFO(mode);
    Fixture f("memory:", {{"concurrency", mode}});
    Browser a;
    a.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      s.set("keep", Value(1));
      s.set("drop", Value(1));
      s.add_flash("_flash", Value("old"));
    });
    Request slow(a.jar), fast(a.jar);
    Session& s1 = slow.session(f.store, "sid");
    Session& s2 = fast.session(f.store, "sid");
    s1.set("mine", Value("slow"));
    s1.erase("drop");
    CHECK(s1.take_flashes("_flash").size() == 1);
    s1.set_option("max_age", "600");
    s2.set("theirs", Value("fast"));
    s2.set("keep", Value(2));
    s2.add_flash("_flash", Value("new"));
    std::string message;
    REQUIRE(fast.finish(&message) == Errc::ok);
    REQUIRE(slow.finish(&message) == Errc::ok);
    Request check(a.jar);
    Session& s = check.session(f.store, "sid");
    CHECK(*s.get("mine") == Value("slow"));
    CHECK(s.get("drop") == nullptr);
    if (std::string(mode) == "merge") {
      CHECK(*s.get("theirs") == Value("fast"));
      CHECK(*s.get("keep") == Value(2));
      Array flashes = s.take_flashes("_flash");
      REQUIRE(flashes.size() == 1);
      CHECK(flashes[0] == Value("new"));  // "old" was shown by the slow request
    } else {
      CHECK(s.get("theirs") == nullptr);  // the lost update
      CHECK(*s.get("keep") == Value(1));
    }
  }
}

TEST_CASE("merge: a session destroyed meanwhile stays destroyed") {
  Fixture f("memory:");
  Browser a;
  a.request([&](Request& r) { r.session(f.store, "sid").set("user_id", Value(7)); });
  Request slow(a.jar), logout(a.jar);
  slow.session(f.store, "sid").set("cart", Value("shoes"));
  logout.session(f.store, "sid").destroy();
  std::string message;
  REQUIRE(logout.finish(&message) == Errc::ok);
  CHECK(slow.finish(&message) == Errc::ok);
  CHECK(slow.set_cookie_count() == 0);
  Request check(a.jar);
  CHECK(check.session(f.store, "sid").status() == SESS_STATUS_UNKNOWN_ID);
}

TEST_CASE("merge of a clear keeps only keys added by others since") {
  Fixture f("memory:");
  Browser a;
  a.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.set("a", Value(1));
    s.set("b", Value(1));
  });
  Request slow(a.jar), fast(a.jar);
  slow.session(f.store, "sid").clear();
  slow.session(f.store, "sid").set("c", Value(3));
  fast.session(f.store, "sid").set("d", Value(4));
  std::string message;
  REQUIRE(fast.finish(&message) == Errc::ok);
  REQUIRE(slow.finish(&message) == Errc::ok);
  Request check(a.jar);
  Session& s = check.session(f.store, "sid");
  CHECK(s.keys() == std::vector<std::string>{"c", "d"});
}
