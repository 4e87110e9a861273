// The redis: store against a real redis-server started by the test.
#include <catch2/catch.hpp>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "harness.h"
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
};


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
