// The mongodb: store through the real driver (libmongoc). Against the
// wire-protocol test server in CI; against a real MongoDB as well when
// SESSIONS_TEST_MONGODB_URI is set (e.g. mongodb://127.0.0.1:27017/test).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "contract.h"
#include "mongo_wire_server.h"
#include "servers.h"

using namespace sessions;
using namespace sessions::testing;

namespace {

void check_contract(const std::string& uri) {
  SECTION("round trip") { check_round_trip(uri); }
  SECTION("regenerate_id") { check_regenerate_id(uri); }
  SECTION("destroy") { check_destroy(uri); }
  SECTION("foreign value") { check_foreign_value(uri); }
  SECTION("hash_keys") { check_hash_keys(uri); }
  SECTION("expiry") { check_expiry(uri); }
  SECTION("concurrent cycles") { check_concurrent_cycles(uri); }
}

}  // namespace

TEST_CASE("mongodb: the store contract, on the wire-protocol test server") {
  MongoWireServer server;
  check_contract(server.uri("serverSelectionTimeoutMS=2000"));
}

// Hidden (not run by default): scripts/test.sh runs it when
// SESSIONS_TEST_MONGODB_URI names a real server.
TEST_CASE("mongodb: the store contract, on a real MongoDB", "[.][real-mongodb]") {
  const char* uri = std::getenv("SESSIONS_TEST_MONGODB_URI");
  REQUIRE(uri != nullptr);
  REQUIRE(*uri != '\0');
  check_contract(std::string(uri) + (std::string(uri).find('?') == std::string::npos ? "?" : "&") +
                 "collection=libsessions_test");
}

TEST_CASE("mongodb: documents, the TTL index, and the driver's URI options") {
  MongoWireServer server;
  Fixture f(server.uri("collection=web_sessions&appname=shop&w=majority"), {{"max_age", "1h"}},
            false);
  Browser b;
  const std::string id = log_in(f, b);
  auto docs = server.documents("test.web_sessions");
  REQUIRE(docs.size() == 1);
  CHECK_THAT(docs[0], Catch::Contains("\"_id\" : \"" + id + "\""));
  CHECK_THAT(docs[0], Catch::Contains("\"$binary\""));
  CHECK_THAT(docs[0], Catch::Contains("\"expires_at\" : { \"$date\""));
  auto indexes = server.indexes("test.web_sessions");
  REQUIRE(indexes.size() == 1);
  CHECK_THAT(indexes[0], Catch::Contains("\"expireAfterSeconds\" : { \"$numberInt\" : \"0\" }"));
  CHECK_THAT(indexes[0], Catch::Contains("\"expires_at\""));
}

TEST_CASE("mongodb: a document that is not ours under a session's _id") {
  MongoWireServer server;
  Fixture f(server.uri(), {}, false);
  Browser b;
  const std::string id = log_in(f, b);
  server.put("test.sessions", "{\"_id\": \"" + id +
                                  "\", \"data\": \"a string\", \"expires_at\": {\"$date\": "
                                  "\"2099-01-01T00:00:00Z\"}}");
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_MALFORMED);
    s.set("user_id", Value(1));
  });
  bool left_alone = false;
  for (const auto& doc : server.documents("test.sessions"))
    if (doc.find(id) != std::string::npos) left_alone = doc.find("a string") != std::string::npos;
  CHECK(left_alone);
}

TEST_CASE("mongodb: bad URIs and collection names are refused at open") {
  MongoWireServer server;
  CHECK(open_error(server.uri("collection=bad-name")) == Errc::bad_option);
  CHECK(open_error(server.uri("collection=a.b")) == Errc::bad_option);
  CHECK(open_error(server.uri("collection=%24cmd")) == Errc::bad_option);
  CHECK(open_error("mongodb://") == Errc::bad_uri);
  CHECK(open_error("mongodb://127.0.0.1:99999/x") == Errc::bad_uri);
  CHECK(open_error(server.uri("nosuchoption=1")) == Errc::bad_option);
}

TEST_CASE("mongodb: a server down at open is a clear error") {
  const int port = free_port();
  try {
    Fixture f("mongodb://127.0.0.1:" + std::to_string(port) + "/test?timeout_ms=500");
    FAIL("opened a store on a closed port");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::store_unavailable);
    CHECK_THAT(e.what(), Catch::Contains(std::to_string(port)));
  }
}

TEST_CASE("mongodb: a server killed between requests, then back") {
  MongoWireServer server;
  Fixture f(server.uri("timeout_ms=500"), {}, false);
  Browser b;
  log_in(f, b);
  server.stop();
  CHECK_THROWS_MATCHES(b.request([&](Request& r) { r.session(f.store, "sid"); }), Error,
                       Catch::Predicate<Error>([](const Error& e) {
                         return e.code() == Errc::store_unavailable;
                       }));
  Browser other;
  CHECK(other.request([&](Request& r) { r.session(f.store, "sid").set("x", Value(1)); }) ==
        Errc::store_unavailable);
  CHECK(other.last_set_cookies.empty());
  server.start();  // same port, same documents
  // The driver may need a moment to see the server again.
  // The driver's monitor sees the server again within its minimum
  // heartbeat (500 ms); until then a request is refused, never answered
  // with a new session.
  bool back = false;
  Value user_id;
  for (int i = 0; i < 30 && !back; ++i) {
    try {
      b.request([&](Request& r) {
        const Value* v = r.session(f.store, "sid").get("user_id");
        user_id = v ? *v : Value();
      });
      back = true;
    } catch (const Error& e) {
      CHECK(e.code() == Errc::store_unavailable);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  CHECK(back);
  CHECK(user_id == Value(42));
}

TEST_CASE("mongodb: a hung server times out") {
  MongoWireServer server;
  Fixture f(server.uri("timeout_ms=300"), {}, false);
  Browser b;
  log_in(f, b);
  server.pause();
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(b.request([&](Request& r) { r.session(f.store, "sid"); }), Error);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(3000));
  server.resume();
}

TEST_CASE("mongodb: a document larger than the server accepts is a clear error") {
  MongoWireServer server;
  server.set_max_document_bytes(64 * 1024);
  Fixture f(server.uri(), {}, false);
  Browser b;
  log_in(f, b);
  Errc rc = b.request([&](Request& r) {
    r.session(f.store, "sid").set("blob", Value(Bytes{std::string(100 * 1024, 'x')}));
  });
  CHECK(rc == Errc::value_too_large);
  b.request([&](Request& r) { CHECK(r.session(f.store, "sid").get("blob") == nullptr); });
}
