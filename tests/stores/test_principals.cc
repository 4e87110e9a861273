// Principals on every store against its real server: a principal's sessions
// listed and ended within a process and from another one (tests/stores/
// principals.h); cookie: and memcached: through revocation stamps, and what
// happens when the revocation store goes away.
#include <catch2/catch.hpp>

#include "harness.h"
#include "mongo_wire_server.h"
#include "principals.h"
#include "servers.h"
#include "session.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

// The store finds a principal's sessions by its own index (no stamps).
void require_index(const std::string& uri) {
  Fixture f(uri);
  REQUIRE(f.store->backend()->indexes_principals());
  REQUIRE(f.store->revocations() == nullptr);
}

}  // namespace

TEST_CASE("redis: a principal's sessions listed and ended, in and across processes") {
  RedisServer redis;
  require_index(redis.uri());
  check_principals(redis.uri());
  check_principals_across_processes(redis.uri("prefix=other:"));
  check_principals(redis.uri("hash_keys=true&prefix=hashed:"));
}

TEST_CASE("file: a principal's sessions listed and ended, in and across processes") {
  TempDir dir;
  require_index("file://" + dir.path() + "/a?fsync=false");
  check_principals("file://" + dir.path() + "/a?fsync=false");
  check_principals_across_processes("file://" + dir.path() + "/b?fsync=false");
}

TEST_CASE("sqlite: a principal's sessions listed and ended, in and across processes") {
  TempDir dir;
  require_index("sqlite://" + dir.path() + "/a.db");
  check_principals("sqlite://" + dir.path() + "/a.db?synchronous=normal");
  check_principals_across_processes("sqlite://" + dir.path() + "/b.db?synchronous=normal");
}

TEST_CASE("postgresql: a principal's sessions listed and ended, in and across processes") {
  PostgresServer pg;
  require_index(pg.uri());
  check_principals(pg.uri());
  check_principals_across_processes(pg.uri("table=other_sessions"));
}

TEST_CASE("mongodb: a principal's sessions listed and ended, in and across processes") {
  MongoWireServer server;
  require_index(server.uri("serverSelectionTimeoutMS=2000"));
  check_principals(server.uri("serverSelectionTimeoutMS=2000"));
  check_principals_across_processes(server.uri("serverSelectionTimeoutMS=2000&collection=other"));
}

TEST_CASE("memcached: a principal's sessions ended by a stamp, in and across processes") {
  MemcachedServer memcached;
  const std::string uri = "memcached://127.0.0.1:" + std::to_string(memcached.port);
  check_principals(uri);
  check_principals_across_processes(uri + "?prefix=other:");
}

TEST_CASE("cookie: with revocation=redis://, sessions revoked across processes") {
  RedisServer redis;
  check_principals("cookie:", {{"revocation", redis.uri()}});
  check_principals_across_processes("cookie:", {{"revocation", redis.uri("prefix=rev:")}});
}

TEST_CASE("cookie: with its revocation store down: fail closed by default, open when asked") {
  RedisServer redis;
  Fixture closed("cookie:", {{"revocation", redis.uri("timeout_ms=300")}});
  Fixture open("cookie:", {{"revocation", redis.uri("timeout_ms=300")},
                           {"revocation_fail", "open"}, {"revocation_cache", "0"}});
  Browser user, anonymous, user_open;
  auto login = [](Fixture& f, Browser& b) {
    REQUIRE(b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      s.set_principal("user:42");
      s.set("cart", Value(3));
    }) == Errc::ok);
  };
  login(closed, user);
  login(open, user_open);
  anonymous.request([&](Request& r) { r.session(closed.store, "sid").set("n", Value(1)); });
  closed.now += closed.store->settings().revocation_cache;  // the cached stamp is stale
  redis.process.kill_hard();

  // Closed: the request fails (503 for the application); the browser keeps
  // its cookie, no new session replaces it.
  Request r(user.jar);
  try {
    r.session(closed.store, "sid");
    FAIL("a session whose revocation could not be checked was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::store_unavailable);
    CHECK(std::string(e.what()).find("revocation_fail=closed") != std::string::npos);
  }
  // A session without a principal needs no stamp.
  anonymous.request([&](Request& r2) {
    CHECK(r2.session(closed.store, "sid").status() == SESS_STATUS_VALID);
  });
  // Open: accepted, its values intact.
  user_open.request([&](Request& r2) {
    Session& s = r2.session(open.store, "sid");
    CHECK(s.status() == SESS_STATUS_VALID);
    CHECK(*s.get("cart") == Value(3));
  });
  // Ending sessions needs the store: an error, never a silent success.
  CHECK_THROWS_AS(end_sessions(*closed.store, "user:42", nullptr), Error);

  redis.process.start();
  user.request([&](Request& r2) {
    Session& s = r2.session(closed.store, "sid");
    CHECK(s.status() == SESS_STATUS_VALID);
    CHECK(*s.get("cart") == Value(3));
  });
}

TEST_CASE("cookie: a revocation store that is down at open is an error at open") {
  const int port = free_port();
  CHECK_THROWS_AS(Fixture("cookie:", {{"revocation", "redis://127.0.0.1:" + std::to_string(port) +
                                                         "/0?connect_timeout_ms=200"}}),
                  Error);
}
