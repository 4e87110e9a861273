// Principals, revocation stamps and CSRF tokens in the core, on memory: and
// cookie: (the server-side stores run the same checks against their servers
// in tests/stores/test_principals.cc).
#include <catch2/catch.hpp>

#include "csrf.h"
#include "harness.h"
#include "principals.h"
#include "record.h"
#include "session.h"

using namespace sessions::internal;
using namespace sessions::testing;

TEST_CASE("memory: a principal's sessions listed and ended") { check_principals("memory:"); }

TEST_CASE("cookie: with a revocation store, a principal's sessions revoked by a stamp") {
  check_principals("cookie:", {{"revocation", "memory:"}});
  check_principals("cookie:", {{"revocation", "memory:"}, {"revocation_cache", "0"}});
}

TEST_CASE("cookie: without a revocation store cannot end sessions, and says how to") {
  Fixture f("cookie:");
  CHECK(f.store->revocations() == nullptr);
  try {
    end_sessions(*f.store, "user:42", nullptr);
    FAIL("ended");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unsupported);
    CHECK(std::string(e.what()).find("revocation=") != std::string::npos);
  }
}

TEST_CASE("revocation options are checked at open") {
  CHECK_THROWS_AS(Fixture("memory:", {{"revocation", "memory:"}}), Error);  // has an index
  CHECK_THROWS_AS(Fixture("cookie:", {{"revocation", "cookie:"}}), Error);
  CHECK_THROWS_AS(Fixture("cookie:", {{"revocation", "nosuch://x"}}), Error);
  CHECK_THROWS_AS(Fixture("cookie:", {{"revocation", "memory:?bogus=1"}}), Error);
  CHECK_THROWS_AS(Fixture("cookie:", {{"revocation_cache", "-1"}}), Error);
  CHECK_THROWS_AS(Fixture("cookie:", {{"revocation_cache", "2h"}}), Error);
  CHECK_THROWS_AS(Fixture("cookie:", {{"revocation_fail", "maybe"}}), Error);
  Fixture ok("cookie:", {{"revocation", "memory:?max_sessions=10"}, {"revocation_fail", "open"}});
  CHECK(ok.store->revocations() != nullptr);
}

TEST_CASE("a principal must be UTF-8 of at most 255 bytes, metadata is bounded") {
  Fixture f("memory:");
  Request r("");
  Session& s = r.session(f.store, "sid");
  CHECK_THROWS_AS(s.set_principal(std::string(256, 'a')), Error);
  CHECK_THROWS_AS(s.set_principal("\xff"), Error);
  s.set_principal(std::string(255, 'a'));
  const std::string value(1025, 'x');
  std::string_view too_long(value);
  CHECK_THROWS_AS(s.set_metadata("ua", &too_long), Error);
  CHECK_THROWS_AS(s.set_metadata("", nullptr), Error);
  CHECK_THROWS_AS(s.set_metadata(std::string(65, 'k'), nullptr), Error);
  std::string_view v("x");
  for (int i = 0; i < 16; ++i) s.set_metadata("k" + std::to_string(i), &v);
  CHECK_THROWS_AS(s.set_metadata("k16", &v), Error);
  s.set_metadata("k3", nullptr);
  CHECK(s.metadata("k3") == nullptr);
  CHECK(*s.metadata("k4") == "x");
}

TEST_CASE("principal, metadata and CSRF secret survive a save, a cookie and compression") {
  for (const char* uri : {"memory:", "cookie:"}) {
    for (const char* compress : {"off", "on"}) {
      INFO(uri << " compress=" << compress);
      Fixture f(uri, {{"compress", compress}});
      Browser b;
      std::string token;
      b.request([&](Request& r) {
        Session& s = r.session(f.store, "sid");
        s.set_principal("user:42");
        std::string_view ua("Mozilla/5.0");
        s.set_metadata("user_agent", &ua);
        s.set("big", Value(std::string(3000, 'z')));
        s.csrf_token(&token);
      });
      b.request([&](Request& r) {
        Session& s = r.session(f.store, "sid");
        REQUIRE(s.status() == SESS_STATUS_VALID);
        CHECK(s.principal() == "user:42");
        CHECK(*s.metadata("user_agent") == "Mozilla/5.0");
        CHECK(s.csrf_matches(token));
        CHECK(s.get("big")->get_if<std::string>()->size() == 3000);
      });
    }
  }
}

TEST_CASE("a session without principal, metadata or token is stored as before") {
  SessionRecord record;
  record.created = record.last_seen = 1;
  std::string plain;
  encode_record(record, &plain);
  CHECK(record_principal(plain).empty());
  Identity id;
  id.principal = "user:42";
  id.auth_us = 5;
  std::string stored;
  encode_identity(id, &stored);
  stored += plain;
  CHECK(record_principal(stored) == "user:42");
  SessionRecord back;
  REQUIRE(decode_record(stored, &back));
  CHECK(back.identity.principal == "user:42");
  CHECK(back.identity.auth_us == 5);
  // Truncated headers, an empty one, a bad secret length: malformed.
  for (size_t cut = 1; cut < stored.size() - plain.size(); ++cut)
    CHECK_FALSE(decode_record(stored.substr(0, cut), &back));
  std::string empty_header = stored;
  empty_header[9] = 0;  // principal length 0 and no secret or metadata
  empty_header.erase(10, 7);
  CHECK_FALSE(decode_record(empty_header, &back));
  std::string bad_secret = stored;
  bad_secret[17] = 5;
  CHECK_FALSE(decode_record(bad_secret, &back));
}

TEST_CASE("merge keeps a concurrent request's principal and metadata") {
  Fixture f("memory:");
  Browser b;
  b.request([&](Request& r) { r.session(f.store, "sid").set("n", Value(1)); });
  Request login(b.jar), other(b.jar);
  login.session(f.store, "sid").set_principal("user:42");
  other.session(f.store, "sid").set("cart", Value(2));
  std::string message;
  REQUIRE(login.finish(&message) == Errc::ok);
  REQUIRE(other.finish(&message) == Errc::ok);
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.principal() == "user:42");
    CHECK(*s.get("cart") == Value(2));
  });
  CHECK(list_sessions(*f.store, "user:42").size() == 1);
}

TEST_CASE("destroy forgets the principal, the metadata and the CSRF secret") {
  Fixture f("memory:");
  Browser b;
  std::string token;
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.set_principal("user:42");
    s.csrf_token(&token);
  });
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.destroy();
    s.add_flash("_flash", Value("logged out"));
  });
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.principal().empty());
    CHECK_FALSE(s.csrf_matches(token));
  });
  CHECK(list_sessions(*f.store, "user:42").empty());
}

// ---- CSRF -------------------------------------------------------------------

TEST_CASE("CSRF tokens: masked afresh each call, bound to the session's secret") {
  Fixture f("memory:");
  Browser a, b;
  std::string t1, t2, other;
  a.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.csrf_token(&t1);
    s.csrf_token(&t2);
  });
  b.request([&](Request& r) { r.session(f.store, "sid").csrf_token(&other); });
  CHECK(t1.size() == kCsrfTokenLength);
  CHECK(t1 != t2);  // BREACH: no repeating bytes between two responses
  a.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.csrf_matches(t1));
    CHECK(s.csrf_matches(t2));
    CHECK_FALSE(s.csrf_matches(other));  // another session's
    CHECK_FALSE(s.csrf_matches(""));
    CHECK_FALSE(s.csrf_matches("forged"));
    CHECK_FALSE(s.csrf_matches(std::string(kCsrfTokenLength, 'A')));
    for (size_t cut = 0; cut < t1.size(); ++cut) CHECK_FALSE(s.csrf_matches(t1.substr(0, cut)));
    CHECK_FALSE(s.csrf_matches(t1 + "A"));
    for (size_t i = 0; i < t1.size(); ++i) {  // every byte flipped
      std::string flipped = t1;
      flipped[i] = flipped[i] == 'A' ? 'B' : 'A';
      CHECK_FALSE(s.csrf_matches(flipped));
    }
  });
  Browser fresh;
  fresh.request([&](Request& r) { CHECK_FALSE(r.session(f.store, "sid").csrf_matches(t1)); });
}

TEST_CASE("CSRF: regenerate_id replaces the secret, so an older token fails") {
  for (const char* uri : {"memory:", "cookie:"}) {
    INFO(uri);
    Fixture f(uri);
    Browser b;
    std::string before, after;
    b.request([&](Request& r) { r.session(f.store, "sid").csrf_token(&before); });
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      s.regenerate_id();
      s.set_principal("user:42");
      s.csrf_token(&after);
    });
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      CHECK_FALSE(s.csrf_matches(before));
      CHECK(s.csrf_matches(after));
    });
  }
}

TEST_CASE("revocation stamps are cached for revocation_cache seconds") {
  Fixture f("cookie:", {{"revocation", "memory:"}, {"revocation_cache", "5"}});
  Revocations& rev = *f.store->revocations();
  CHECK_FALSE(rev.revoked("user:1", 100, f.now));
  rev.revoke("user:1", 200, f.now);
  CHECK(rev.revoked("user:1", 100, f.now));
  CHECK_FALSE(rev.revoked("user:1", 200, f.now));
  rev.revoke("user:1", 150, f.now);  // an earlier stamp never replaces a later one
  CHECK(rev.revoked("user:1", 199, f.now + 10));
}
