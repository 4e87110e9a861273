// The mongodb: store through the real driver (libmongoc). Against the
// wire-protocol test server in CI; against a real MongoDB as well when
// SESSIONS_TEST_MONGODB_URI is set (e.g. mongodb://127.0.0.1:27017/test).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "mongo_wire_server.h"
#include "servers.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

void check_contract(const std::string& uri) {
  SECTION("foreign value") { check_foreign_value(uri); }
  SECTION("hash_keys") { check_hash_keys(uri); }
  SECTION("merge keeps every key") { check_merge_keeps_every_key(uri); }
  SECTION("cas counter") { check_cas_counter(uri); }
  SECTION("flashes shown once") { check_merge_flashes_once(uri); }
  SECTION("merge with regenerate") { check_merge_with_regenerate(uri); }
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

TEST_CASE("mongodb: save_if updates only the version loaded; documents without one are version 0") {
  MongoWireServer server;
  Fixture f(server.uri("serverSelectionTimeoutMS=2000"), {}, false);
  Backend& store = *f.store->backend();
  const int64_t now = 1'800'000'000;
  store.save("a", "one", now, 60);
  std::string data;
  Version version = 0;
  REQUIRE(store.load_versioned("a", now, &data, &version));
  CHECK(version != 0);
  CHECK(store.save_if("a", "a", "two", now, 60, version) == Commit::written);
  CHECK(store.save_if("a", "a", "three", now, 60, version) == Commit::changed);
  REQUIRE(store.load("a", now, &data));
  CHECK(data == "two");
  CHECK(store.save_if("gone", "gone", "x", now, 60, version) == Commit::gone);
  CHECK(store.save_if("a", "a", "late", now + 61, 60, version) == Commit::gone);  // expired
  REQUIRE(store.load_versioned("a", now, &data, &version));
  CHECK(store.save_if("a", "b", "moved", now, 60, version) == Commit::written);
  CHECK_FALSE(store.load("a", now, &data));
  REQUIRE(store.load("b", now, &data));
  CHECK(data == "moved");
  // A document written before versions existed: version 0, and save_if works.
  server.put("test.sessions",
             "{\"_id\": \"old\", \"data\": {\"$binary\": {\"base64\": \"b2xkIHJlY29yZA==\", "
             "\"subType\": \"00\"}}, \"expires_at\": {\"$date\": {\"$numberLong\": \"" +
                 std::to_string((now + 60) * 1000) + "\"}}}");
  REQUIRE(store.load_versioned("old", now, &data, &version));
  CHECK(version == 0);
  CHECK(store.save_if("old", "old", "new", now, 60, 0) == Commit::written);
  CHECK(store.save_if("old", "old", "newer", now, 60, 0) == Commit::changed);
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
