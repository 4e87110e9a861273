// The mongodb: store through the real driver (libmongoc). Against the
// wire-protocol test server in CI; against a real MongoDB as well when
// SESSIONS_TEST_MONGODB_URI is set (e.g. mongodb://127.0.0.1:27017/test).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "mongo_wire_server.h"
#include "random.h"
#include "record.h"
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

// A stored record of `principal` (none when empty), told apart by `n`: the
// identity header, then a record (the store never decodes it).
std::string principal_record(const std::string& principal, int64_t n) {
  Identity id;
  id.principal = principal;
  id.auth_us = 1;
  std::string data;
  encode_identity(id, &data);
  SessionRecord record;
  record.created = record.last_seen = 1'700'000'000;
  record.values.set("n", Value(n));
  std::string body;
  encode_record(record, &body);
  return data + body;
}

// principal_records, sorted by key.
Backend::KeyedRecords listed(Backend& store, const std::string& principal, int64_t now) {
  Backend::KeyedRecords out;
  store.principal_records(principal, now, &out);
  std::sort(out.begin(), out.end());
  return out;
}

// The principal index through every writing path, on keys and principals
// that start with `p` (a real server's collection may hold others').
void check_principal_index(Backend& store, const std::string& p, int64_t now) {
  REQUIRE(store.indexes_principals());
  const std::string u42 = p + "user:42", u7 = p + "user:7";
  const std::string a = principal_record(u42, 1), b = principal_record(u42, 2),
                    c = principal_record(u42, 3), d = principal_record(u7, 4),
                    e = principal_record("", 5);
  // Each writing path: save, move, save_if with a moved ID.
  store.save(p + "a", a, now, 600);
  store.move(p + "old-b", p + "b", b, now, 600);
  store.save(p + "c0", c, now, 600);
  Version version = 0;
  std::string data;
  REQUIRE(store.load_versioned(p + "c0", now, &data, &version));
  REQUIRE(store.save_if(p + "c0", p + "c", c, now, 600, version) == Commit::written);
  store.save(p + "d", d, now, 600);
  store.save(p + "e", e, now, 600);
  using KR = Backend::KeyedRecords;
  CHECK(listed(store, u42, now) == KR{{p + "a", a}, {p + "b", b}, {p + "c", c}});
  CHECK(listed(store, u7, now) == KR{{p + "d", d}});
  CHECK(listed(store, p + "user:404", now).empty());
  CHECK(listed(store, p + "user:4", now).empty());  // equality, not a prefix

  // An erased document leaves the listing.
  store.erase(p + "b");
  CHECK(listed(store, u42, now) == KR{{p + "a", a}, {p + "c", c}});
  // A moved one (regenerate_id) is listed under its new key only, by move
  // and by save_if; a save_if that writes nothing moves nothing.
  store.move(p + "a", p + "a2", a, now, 600);
  CHECK(listed(store, u42, now) == KR{{p + "a2", a}, {p + "c", c}});
  REQUIRE(store.load_versioned(p + "a2", now, &data, &version));
  CHECK(store.save_if(p + "a2", p + "a3", a, now, 600, version) == Commit::written);
  CHECK(listed(store, u42, now) == KR{{p + "a3", a}, {p + "c", c}});
  CHECK(store.save_if(p + "a3", p + "a4", a, now, 600, version) == Commit::changed);
  CHECK(listed(store, u42, now) == KR{{p + "a3", a}, {p + "c", c}});
  // An expired one is not listed (the TTL monitor deletes it later).
  store.save(p + "x", principal_record(u42, 6), now - 100, 10);
  CHECK(listed(store, u42, now) == KR{{p + "a3", a}, {p + "c", c}});
  CHECK(listed(store, u42, now + 600).empty());
  // One whose principal changed is listed under the new one only: by a
  // save, by save_if in place, and to none (logged out without destroy).
  const std::string seven = principal_record(u7, 8);
  store.save(p + "a3", seven, now, 600);
  CHECK(listed(store, u7, now) == KR{{p + "a3", seven}, {p + "d", d}});
  CHECK(listed(store, u42, now) == KR{{p + "c", c}});
  REQUIRE(store.load_versioned(p + "c", now, &data, &version));
  CHECK(store.save_if(p + "c", p + "c", seven, now, 600, version) == Commit::written);
  CHECK(listed(store, u7, now).size() == 3);
  CHECK(listed(store, u42, now).empty());
  store.save(p + "c", e, now, 600);
  CHECK(listed(store, u7, now).size() == 2);
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
  REQUIRE(indexes.size() == 2);
  CHECK_THAT(indexes[0], Catch::Contains("\"expireAfterSeconds\" : { \"$numberInt\" : \"0\" }"));
  CHECK_THAT(indexes[0], Catch::Contains("\"expires_at\""));
  CHECK(indexes[1] == "{ \"key\" : { \"principal\" : { \"$numberInt\" : \"1\" } }, "
                      "\"name\" : \"principal\", \"sparse\" : true }");
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

TEST_CASE("mongodb: principal_records finds a principal's documents by their principal field",
          "[principals]") {
  MongoWireServer server;
  Fixture f(server.uri("serverSelectionTimeoutMS=2000"), {}, false);
  Backend& store = *f.store->backend();
  const int64_t now = int64_t(std::time(nullptr));
  check_principal_index(store, "", now);
  // What the documents hold: the principal as a string, or no field at all.
  auto doc = [&](const std::string& id) {
    for (const auto& d : server.documents("test.sessions"))
      if (d.find("\"_id\" : \"" + id + "\"") != std::string::npos) return d;
    return std::string();
  };
  CHECK_THAT(doc("d"), Catch::Contains("\"principal\" : \"user:7\""));
  CHECK_THAT(doc("a3"), Catch::Contains("\"principal\" : \"user:7\""));
  REQUIRE_THAT(doc("e"), Catch::Contains("\"data\""));
  CHECK(doc("e").find("principal") == std::string::npos);
  CHECK(doc("c").find("principal") == std::string::npos);  // removed with its principal
  CHECK(doc("b").empty());
  CHECK(doc("a").empty());

  // Any UTF-8, NUL included (the string's length is sent).
  const std::string odd = std::string("us\0er/\xc3\xa9", 8) + std::string(247, 'z');
  const std::string o = principal_record(odd, 9);
  store.save("o", o, now, 600);
  CHECK(listed(store, odd, now) == Backend::KeyedRecords{{"o", o}});
  CHECK(listed(store, odd.substr(0, 2), now).empty());
  // A document that is not ours with that principal: no string _id, skipped.
  server.put("test.sessions",
             "{\"_id\": \"weird\", \"principal\": \"user:7\", \"expires_at\": {\"$date\": "
             "\"2099-01-01T00:00:00Z\"}}");
  const auto seven = listed(store, "user:7", now);
  REQUIRE(seven.size() == 3);
  CHECK(seven[2] == std::make_pair(std::string("weird"), std::string()));  // no data: malformed

  // The server down: an error, never "none".
  server.stop();
  Backend::KeyedRecords out;
  CHECK_THROWS_AS(store.principal_records("user:7", now, &out), Error);
}

TEST_CASE("mongodb: a collection of an earlier release gets its principal index at open",
          "[principals]") {
  MongoWireServer server;
  const int64_t now = int64_t(std::time(nullptr));
  // A document of the previous release: no principal field (nor a version).
  server.put("test.sessions",
             "{\"_id\": \"old\", \"data\": {\"$binary\": {\"base64\": \"a2VwdA==\", "
             "\"subType\": \"00\"}}, \"expires_at\": {\"$date\": {\"$numberLong\": \"" +
                 std::to_string((now + 60) * 1000) + "\"}}}");
  Fixture f(server.uri("serverSelectionTimeoutMS=2000"), {}, false);
  Backend& store = *f.store->backend();
  auto indexes = server.indexes("test.sessions");
  CHECK(std::count_if(indexes.begin(), indexes.end(), [](const std::string& spec) {
          return spec.find("\"principal\" : { \"$numberInt\" : \"1\" }") != std::string::npos &&
                 spec.find("\"sparse\" : true") != std::string::npos;
        }) == 1);
  std::string data;
  Version version = 1;
  REQUIRE(store.load_versioned("old", now, &data, &version));
  CHECK(data == "kept");
  CHECK(version == 0);
  CHECK(listed(store, "user:42", now).empty());
  // It works: the old document rewritten with a principal is listed.
  const std::string mine = principal_record("user:42", 1);
  CHECK(store.save_if("old", "old", mine, now, 60, version) == Commit::written);
  store.save("new", principal_record("user:42", 2), now, 60);
  CHECK(listed(store, "user:42", now).size() == 2);
  // Opened again: the index asked for again (createIndexes is idempotent on
  // a server), nothing else.
  Fixture again(server.uri("serverSelectionTimeoutMS=2000"), {}, false);
  CHECK(listed(*again.store->backend(), "user:42", now).size() == 2);
}

// Hidden (not run by default), like the contract on a real MongoDB.
TEST_CASE("mongodb: principal_records on a real MongoDB", "[.][real-mongodb][principals]") {
  const char* uri = std::getenv("SESSIONS_TEST_MONGODB_URI");
  REQUIRE(uri != nullptr);
  REQUIRE(*uri != '\0');
  Fixture f(std::string(uri) + (std::string(uri).find('?') == std::string::npos ? "?" : "&") +
                "collection=libsessions_test",
            {}, false);
  // Keys and principals of this run only: the collection may hold others'.
  uint64_t run = 0;
  random_bytes(&run, sizeof run);
  check_principal_index(*f.store->backend(), "run" + std::to_string(run) + ":",
                        int64_t(std::time(nullptr)));
}
