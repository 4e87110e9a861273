// The redis: store against a real redis-server started by the test.
#include <catch2/catch.hpp>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "harness.h"
#include "principals.h"
#include "record.h"
#include "servers.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

// A plain hiredis client, to look at what the store wrote.
struct RawRedis {
  redisContext* c;
  explicit RawRedis(int port) : c(redisConnect("127.0.0.1", port)) { REQUIRE(c); REQUIRE(c->err == 0); }
  ~RawRedis() { redisFree(c); }
  redisReply* run(const char* format, const std::string& arg = "") {
    return static_cast<redisReply*>(redisCommand(c, format, arg.c_str()));
  }
  std::string get_text(const char* format, const std::string& arg = "") {
    redisReply* r = run(format, arg);
    std::string out = r && r->str ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    return out;
  }
  long long get_int(const char* format, const std::string& arg = "") {
    redisReply* r = run(format, arg);
    long long out = r ? r->integer : -99;
    freeReplyObject(r);
    return out;
  }
  // One command from binary-safe arguments.
  redisReply* argv(const std::vector<std::string>& args) {
    std::vector<const char*> p;
    std::vector<size_t> n;
    for (const auto& a : args) {
      p.push_back(a.data());
      n.push_back(a.size());
    }
    return static_cast<redisReply*>(redisCommandArgv(c, int(p.size()), p.data(), n.data()));
  }
  long long argv_int(const std::vector<std::string>& args) {
    redisReply* r = argv(args);
    long long out = r ? r->integer : -99;
    freeReplyObject(r);
    return out;
  }
  bool argv_nil(const std::vector<std::string>& args) {
    redisReply* r = argv(args);
    bool out = r && r->type == REDIS_REPLY_NIL;
    freeReplyObject(r);
    return out;
  }
};

// A stored record of `principal` (none when empty), told apart by `n`.
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

}  // namespace

TEST_CASE("redis: the store contract") {
  RedisServer redis;
  SECTION("foreign value") { check_foreign_value(redis.uri()); }
  SECTION("hash_keys") { check_hash_keys(redis.uri()); }
  SECTION("concurrent cycles, pool smaller than the threads") {
    check_concurrent_cycles(redis.uri("pool=3"));
  }
  SECTION("over a unix socket") { check_round_trip("redis+unix://" + redis.dir.path() + "/redis.sock"); }
}

TEST_CASE("redis: parallel requests on one session") {
  RedisServer redis;
  check_concurrency(redis.uri());
}

TEST_CASE("redis: save_if compares the record's digest in one script, reloaded after a flush") {
  RedisServer redis;
  RawRedis raw(redis.port);
  Fixture f(redis.uri(), {}, false);
  Backend& store = *f.store->backend();
  store.save("a", "one", 0, 60);
  std::string data;
  Version version = 0;
  REQUIRE(store.load_versioned("a", 0, &data, &version));
  CHECK(version == content_version("one"));
  CHECK(store.save_if("a", "a", "two", 0, 60, version) == Commit::written);
  CHECK(store.save_if("a", "a", "three", 0, 60, version) == Commit::changed);  // stale
  CHECK(raw.get_text("GET session:a") == "two");
  CHECK(store.save_if("missing", "missing", "x", 0, 60, version) == Commit::gone);
  CHECK(raw.get_int("EXISTS session:missing") == 0);
  // A server that forgot its scripts is sent the text again.
  freeReplyObject(raw.run("SCRIPT FLUSH"));
  REQUIRE(store.load_versioned("a", 0, &data, &version));
  CHECK(store.save_if("a", "b", "moved", 0, 60, version) == Commit::written);
  CHECK(raw.get_int("EXISTS session:a") == 0);
  CHECK(raw.get_text("GET session:b") == "moved");
  CHECK(raw.get_int("PTTL session:b") > 50000);
}

TEST_CASE("redis: keys carry the prefix and a PX expiry from the max age") {
  RedisServer redis;
  RawRedis raw(redis.port);
  Fixture f(redis.uri("prefix=myapp:s:"), {{"max_age", "1h"}}, false);
  Browser b;
  const std::string id = log_in(f, b);
  CHECK(raw.get_int("EXISTS myapp:s:%s", id) == 1);
  const long long pttl = raw.get_int("PTTL myapp:s:%s", id);
  CHECK(pttl > 3590 * 1000);
  CHECK(pttl <= 3600 * 1000);

  SECTION("hash_keys: a dump holds no ID") {
    Fixture hashed(redis.uri("hash_keys=true"), {}, false);
    Browser b2;
    const std::string id2 = log_in(hashed, b2);
    CHECK(raw.get_int("EXISTS session:%s", id2) == 0);
    redisReply* keys = raw.run("KEYS session:*");
    REQUIRE(keys->elements == 1);
    std::string key(keys->element[0]->str, keys->element[0]->len);
    freeReplyObject(keys);
    CHECK(key.find(id2) == std::string::npos);
    CHECK(key.size() == std::string("session:").size() + 43);
  }
}

TEST_CASE("redis: regenerate_id moves the record in one transaction") {
  RedisServer redis;
  RawRedis raw(redis.port);
  Fixture f(redis.uri(), {}, false);
  Browser b;
  const std::string old_id = log_in(f, b);
  // A reader polling both keys while the ID changes never finds neither.
  std::atomic<bool> done{false};
  std::string new_id;
  std::mutex id_mu;
  std::atomic<int> neither{0};
  std::thread reader([&] {
    RawRedis watcher(redis.port);
    while (!done) {
      std::string candidate;
      {
        std::lock_guard<std::mutex> lock(id_mu);
        candidate = new_id;
      }
      if (candidate.empty()) continue;
      redisReply* r = watcher.run("EXISTS session:%s", old_id);
      long long old_exists = r->integer;
      freeReplyObject(r);
      r = static_cast<redisReply*>(redisCommand(watcher.c, "EXISTS session:%s", candidate.c_str()));
      long long new_exists = r->integer;
      freeReplyObject(r);
      // Checked old-then-new: once the old one is gone, the new one is there.
      if (!old_exists && !new_exists) ++neither;
    }
  });
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    s.regenerate_id();
    std::lock_guard<std::mutex> lock(id_mu);
    new_id = s.id_text();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  done = true;
  reader.join();
  CHECK(neither == 0);
  CHECK(raw.get_int("EXISTS session:%s", old_id) == 0);
  CHECK(raw.get_int("EXISTS session:%s", new_id) == 1);
}

TEST_CASE("redis: AUTH with an ACL user, the default user's password, and SELECT") {
  RedisServer redis(
      "requirepass defaultpass\n"
      "user alice on >alice-p@ss:w0rd ~app:* +@all\n");
  SECTION("ACL user and password, percent-encoded") {
    const std::string uri = "redis://alice:alice-p%40ss%3Aw0rd@127.0.0.1:" +
                            std::to_string(redis.port) + "/3?prefix=app:";
    check_round_trip(uri);
    RawRedis raw(redis.port);
    freeReplyObject(raw.run("AUTH defaultpass"));
    freeReplyObject(raw.run("SELECT 3"));
    redisReply* keys = raw.run("KEYS app:*");
    CHECK(keys->elements == 1);  // in database 3
    freeReplyObject(keys);
  }
  SECTION("default user's password") {
    check_round_trip("redis://:defaultpass@127.0.0.1:" + std::to_string(redis.port));
  }
  SECTION("wrong or missing credentials are refused at open") {
    CHECK(open_error("redis://:wrong@127.0.0.1:" + std::to_string(redis.port)) ==
          Errc::store_unavailable);
    CHECK(open_error(redis.uri()) == Errc::store_unavailable);  // NOAUTH
    // The ACL user may only touch app:*; the default prefix is refused.
    const std::string alice = "redis://alice:alice-p%40ss%3Aw0rd@127.0.0.1:" +
                              std::to_string(redis.port);
    Fixture f(alice, {}, false);
    Browser b;
    Errc rc = b.request([&](Request& r) { r.session(f.store, "sid").set("x", Value(1)); });
    CHECK(rc == Errc::store_unavailable);
  }
}

TEST_CASE("redis: bad URIs and options are refused before any connection") {
  CHECK(open_error("redis://127.0.0.1:99999") == Errc::bad_uri);
  CHECK(open_error("redis://a:1,b:2") == Errc::bad_uri);
  CHECK(open_error("redis://user@127.0.0.1") == Errc::bad_uri);
  CHECK(open_error("redis:127.0.0.1") == Errc::bad_uri);
  CHECK(open_error("redis://127.0.0.1/notanumber") == Errc::bad_option);
  CHECK(open_error("redis://127.0.0.1?pool=0") == Errc::bad_option);
  CHECK(open_error("redis://127.0.0.1?timeout_ms=abc") == Errc::bad_option);
  CHECK(open_error("redis://127.0.0.1?shards=2") == Errc::bad_option);  // memory:'s
  CHECK(open_error("redis+unix://relative/path") == Errc::bad_uri);
}

TEST_CASE("redis: a key of another type under a session's key") {
  RedisServer redis;
  RawRedis raw(redis.port);
  Fixture f(redis.uri(), {}, false);
  Browser b;
  const std::string id = log_in(f, b);
  freeReplyObject(raw.run("DEL session:%s", id));
  freeReplyObject(raw.run("HSET session:%s field value", id));
  b.request([&](Request& r) {
    Session& s = r.session(f.store, "sid");
    CHECK(s.status() == SESS_STATUS_MALFORMED);
    s.set("user_id", Value(1));
  });
  CHECK(raw.get_text("TYPE session:%s", id) == "hash");  // left alone
}

TEST_CASE("redis: nothing acknowledged is lost to a SIGKILL under load") {
  RedisServer redis("appendonly yes\nappendfsync always\n");
  Fixture f(redis.uri("timeout_ms=2000&pool=8"), {}, false);
  constexpr int kThreads = 8;
  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> acknowledged;  // jar, value
  std::atomic<bool> stop{false};
  std::atomic<int> failed_saves{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; !stop; ++i) {
        Browser b;
        const int64_t value = t * 1'000'000 + i;
        Errc rc;
        try {
          rc = b.request([&](Request& r) { r.session(f.store, "sid").set("v", Value(value)); });
        } catch (const Error& e) {
          rc = e.code();
        }
        if (rc == Errc::ok) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.emplace_back(b.jar, value);
        } else {
          ++failed_saves;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  redis.process.kill_hard();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& t : threads) t.join();
  redis.restart();

  INFO("acknowledged saves: " << acknowledged.size() << ", failed: " << failed_saves);
  REQUIRE(acknowledged.size() > 100);
  CHECK(failed_saves > 0);  // the kill did land under load
  size_t lost = 0;
  for (const auto& [jar, value] : acknowledged) {
    Browser b{jar, {}};
    b.request([&](Request& r) {
      const Value* v = r.session(f.store, "sid").get("v");
      if (!v || *v != Value(value)) ++lost;
    });
  }
  CHECK(lost == 0);
}

TEST_CASE("redis: a restart between two requests is invisible to the second") {
  RedisServer redis("appendonly yes\nappendfsync always\n");
  Fixture f(redis.uri("pool=4"), {}, false);
  // Several pooled connections, all to the server about to restart.
  check_concurrent_cycles(redis.uri("pool=4"));
  Browser b;
  log_in(f, b);
  redis.process.stop();
  redis.restart();
  for (int i = 0; i < 6; ++i)  // more requests than pooled connections
    b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      CHECK(s.status() == SESS_STATUS_VALID);
      CHECK(*s.get("user_id") == Value(42));
    });
}

TEST_CASE("redis: principal_records lists a principal's records from its sorted set",
          "[principals]") {
  RedisServer redis;
  RawRedis raw(redis.port);
  Fixture f(redis.uri(), {}, false);
  Backend& store = *f.store->backend();
  REQUIRE(store.indexes_principals());
  const int64_t now = int64_t(std::time(nullptr));
  const std::string set = "session:principal:user:42";
  const std::string a = principal_record("user:42", 1), b = principal_record("user:42", 2),
                    c = principal_record("user:42", 3);
  REQUIRE(record_principal(a) == "user:42");
  // Each writing path: save, move, save_if.
  store.save("a", a, now, 600);
  store.move("old-b", "b", b, now, 3600);
  store.save("c0", c, now, 60);
  Version version = 0;
  std::string data;
  REQUIRE(store.load_versioned("c0", now, &data, &version));
  REQUIRE(store.save_if("c0", "c", c, now, 60, version) == Commit::written);
  store.save("d", principal_record("user:7", 4), now, 600);
  store.save("e", principal_record("", 5), now, 600);

  CHECK(listed(store, "user:42", now) ==
        Backend::KeyedRecords{{"a", a}, {"b", b}, {"c", c}});
  CHECK(raw.argv_int({"ZCARD", set}) == 3);  // c0 left with its move
  {
    redisReply* r = raw.argv({"ZSCORE", set, "a"});
    REQUIRE(r->type == REDIS_REPLY_STRING);
    CHECK(std::string(r->str, r->len) == std::to_string(now + 600));  // the expiry
    freeReplyObject(r);
  }
  // The set lives as long as its longest-lived record, b's hour.
  CHECK(raw.argv_int({"PTTL", set}) > 3590 * 1000);
  CHECK(raw.argv_int({"PTTL", set}) >= raw.argv_int({"PTTL", "session:b"}));
  // A record without a principal is in no set.
  redisReply* sets = raw.run("KEYS session:principal:*");
  CHECK(sets->elements == 2);
  freeReplyObject(sets);
  CHECK(listed(store, "user:7", now).size() == 1);
  CHECK(listed(store, "nobody", now).empty());

  SECTION("an erased record leaves the listing and the set") {
    store.erase("b");
    CHECK(listed(store, "user:42", now) == Backend::KeyedRecords{{"a", a}, {"c", c}});
    CHECK(raw.argv_int({"ZCARD", set}) == 2);
    // A shorter-lived record does not shorten the set's life.
    store.save("a", a, now, 60);
    CHECK(raw.argv_int({"PTTL", set}) > 3590 * 1000);
  }
  SECTION("a moved record is listed under its new key only") {
    store.move("a", "a2", a, now, 600);
    CHECK(raw.argv_nil({"ZSCORE", set, "a"}));  // in the move's script
    CHECK(listed(store, "user:42", now) ==
          Backend::KeyedRecords{{"a2", a}, {"b", b}, {"c", c}});
    REQUIRE(store.load_versioned("a2", now, &data, &version));
    CHECK(store.save_if("a2", "a3", a, now, 600, version) == Commit::written);
    CHECK(raw.argv_nil({"ZSCORE", set, "a2"}));
    CHECK(listed(store, "user:42", now) ==
          Backend::KeyedRecords{{"a3", a}, {"b", b}, {"c", c}});
  }
  SECTION("an expired record leaves the listing and the set") {
    store.save("x", principal_record("user:42", 6), now - 100, 1);  // expired at now - 99
    CHECK(raw.argv_int({"ZCARD", set}) == 4);
    CHECK(listed(store, "user:42", now).size() == 3);
    CHECK(raw.argv_int({"ZCARD", set}) == 3);
    CHECK(raw.argv_nil({"ZSCORE", set, "x"}));
    // Writes drop the expired too, listed or not.
    store.save("y", principal_record("user:42", 7), now - 100, 1);
    store.save("a", a, now, 600);
    CHECK(raw.argv_int({"ZCARD", set}) == 3);
  }
  SECTION("a record whose principal changed is listed under the new one") {
    const std::string moved = principal_record("user:7", 8);
    store.save("a", moved, now, 600);  // a plain save: user:42's entry goes stale
    const auto seven = listed(store, "user:7", now);
    CHECK(seven == Backend::KeyedRecords{{"a", moved}, {"d", principal_record("user:7", 4)}});
    // Under user:42 it is not listed (the store checks, as the caller does),
    // and the stale entry is removed.
    const auto forty_two = listed(store, "user:42", now);
    for (const auto& [key, record] : forty_two) CHECK(record_principal(record) == "user:42");
    CHECK(forty_two == Backend::KeyedRecords{{"b", b}, {"c", c}});
    CHECK(raw.argv_nil({"ZSCORE", set, "a"}));
    // A principal set again (logged in again) is indexed again.
    store.save("a", a, now, 600);
    CHECK(listed(store, "user:42", now).size() == 3);
  }
  SECTION("rewriting one record a thousand times does not grow the set") {
    for (int i = 0; i < 1000; ++i) store.save("a", a, now, 600 + i);
    CHECK(raw.argv_int({"ZCARD", set}) == 3);
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(store.load_versioned("a", now, &data, &version));
      REQUIRE(store.save_if("a", "a", a, now, 600 + i, version) == Commit::written);
    }
    CHECK(raw.argv_int({"ZCARD", set}) == 3);
    CHECK(listed(store, "user:42", now).size() == 3);
  }
  SECTION("a server that forgot its scripts is sent them again") {
    freeReplyObject(raw.run("SCRIPT FLUSH"));
    store.save("f", principal_record("user:42", 9), now, 600);
    freeReplyObject(raw.run("SCRIPT FLUSH"));
    store.move("f", "g", principal_record("user:42", 9), now, 600);
    freeReplyObject(raw.run("SCRIPT FLUSH"));
    store.erase("g");
    CHECK(listed(store, "user:42", now).size() == 3);  // the clean-up script, resent
    CHECK(raw.argv_int({"ZCARD", set}) == 3);
  }
}

TEST_CASE("redis: records without a principal are saved with the commands as before",
          "[principals]") {
  RedisServer redis;
  RawRedis raw(redis.port);
  Fixture f(redis.uri(), {}, false);
  Backend& store = *f.store->backend();
  const int64_t now = int64_t(std::time(nullptr));
  store.save("warm", "x", now, 60);  // the pool's connection, made
  freeReplyObject(raw.run("CONFIG RESETSTAT"));
  store.save("a", principal_record("", 1), now, 60);
  store.move("a", "b", principal_record("", 1), now, 60);
  const std::string stats = raw.get_text("INFO commandstats");
  CHECK(stats.find("cmdstat_set:calls=2") != std::string::npos);
  CHECK(stats.find("cmdstat_evalsha") == std::string::npos);
  CHECK(stats.find("cmdstat_zadd") == std::string::npos);
  redisReply* sets = raw.run("KEYS session:principal:*");
  CHECK(sets->elements == 0);
  freeReplyObject(sets);
  // With a principal: one script call per write.
  freeReplyObject(raw.run("CONFIG RESETSTAT"));
  store.save("c", principal_record("user:1", 1), now, 60);
  const std::string indexed = raw.get_text("INFO commandstats");
  CHECK(indexed.find("cmdstat_evalsha:calls=1") != std::string::npos);
}

TEST_CASE("redis: principal sets under the prefix, binary-safe, and a foreign key there",
          "[principals]") {
  RedisServer redis;
  RawRedis raw(redis.port);
  Fixture f(redis.uri("prefix=myapp:"), {}, false);
  Backend& store = *f.store->backend();
  const int64_t now = int64_t(std::time(nullptr));
  // 255 bytes, with a space, a slash, a newline and a two-byte character.
  const std::string odd = std::string("us er/\xc3\xa9\n", 8) + std::string(247, 'z');
  REQUIRE(odd.size() == 255);
  const std::string data = principal_record(odd, 1);
  store.save("k", data, now, 60);
  CHECK(raw.argv_int({"ZCARD", "myapp:principal:" + odd}) == 1);
  CHECK(listed(store, odd, now) == Backend::KeyedRecords{{"k", data}});
  CHECK(listed(store, odd.substr(0, 254), now).empty());

  // Someone else's key where a set would be: the record is saved, not
  // indexed, and listing that principal is an error rather than "none".
  freeReplyObject(raw.run("HSET myapp:principal:user:9 field value"));
  const std::string nine = principal_record("user:9", 2);
  store.save("n", nine, now, 60);
  std::string loaded;
  REQUIRE(store.load("n", now, &loaded));
  CHECK(loaded == nine);
  Backend::KeyedRecords out;
  CHECK_THROWS_AS(store.principal_records("user:9", now, &out), Error);
  CHECK(raw.get_text("TYPE myapp:principal:user:9") == "hash");
}

TEST_CASE("redis: sessions that log in are listed and ended through the index", "[principals]") {
  RedisServer redis;
  Fixture f(redis.uri(), {}, false);
  // Logged in on a second request: the principal is set with a new ID (a
  // moved record), as applications do.
  auto log_in_as = [&](Browser& b, const std::string& principal) {
    REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").set("x", Value(1)); }) ==
            Errc::ok);
    REQUIRE(b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      s.set_principal(principal);
      s.regenerate_id();
    }) == Errc::ok);
  };
  Browser one, two, other;
  log_in_as(one, "user:42");
  log_in_as(two, "user:42");
  log_in_as(other, "user:7");
  CHECK(list_sessions(*f.store, "user:42").size() == 2);
  CHECK(list_sessions(*f.store, "user:7").size() == 1);
  CHECK(end_sessions(*f.store, "user:42", nullptr) == 2);
  for (Browser* b : {&one, &two})
    b->request([&](Request& r) {
      CHECK(r.session(f.store, "sid").status() == SESS_STATUS_UNKNOWN_ID);
    });
  CHECK(list_sessions(*f.store, "user:42").empty());
  other.request([&](Request& r) {
    CHECK(r.session(f.store, "sid").status() == SESS_STATUS_VALID);
  });
}
