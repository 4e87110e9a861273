// The redis+cluster: store against a real Redis Cluster (3 masters, each
// with replicas) made by redis-cli on 127.0.0.1: slots, hash tags, MOVED
// and ASK while slots are resharded under load, a master SIGKILLed.
#include <catch2/catch.hpp>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <set>
#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "load.h"
#include "principals.h"
#include "redis_cluster.h"
#include "redis_topologies.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

// CLUSTER KEYSLOT, asked of a node.
int server_slot(int port, const std::string& key) {
  redisContext* c = redisConnect("127.0.0.1", port);
  REQUIRE(c);
  auto* r = static_cast<redisReply*>(redisCommand(c, "CLUSTER KEYSLOT %b", key.data(), key.size()));
  const int slot = r && r->type == REDIS_REPLY_INTEGER ? int(r->integer) : -1;
  freeReplyObject(r);
  redisFree(c);
  return slot;
}

// How many keys each master holds (DBSIZE).
std::vector<long long> keys_per_master(const RedisCluster& cluster) {
  std::vector<long long> out;
  for (int port : cluster.master_ports()) {
    redisContext* c = redisConnect("127.0.0.1", port);
    auto* r = static_cast<redisReply*>(redisCommand(c, "DBSIZE"));
    out.push_back(r ? r->integer : -1);
    freeReplyObject(r);
    redisFree(c);
  }
  return out;
}

// Failures after `from` that fell outside [from, until].
size_t failures_outside(const std::vector<CycleLoad::Clock::time_point>& failures,
                        CycleLoad::Clock::time_point from, CycleLoad::Clock::time_point until) {
  return size_t(std::count_if(failures.begin(), failures.end(),
                              [&](auto t) { return t < from || t > until; }));
}

}  // namespace

TEST_CASE("redis+cluster: key slots are CRC16 modulo 16384, with hash tags") {
  CHECK(cluster_key_slot("123456789") == 0x31C3);  // the specification's CRC16 check value
  CHECK(cluster_key_slot("{user1000}.following") == cluster_key_slot("user1000"));
  CHECK(cluster_key_slot("foo{}{bar}") == cluster_key_slot("foo{}{bar}"));  // empty tag: whole key
  CHECK(cluster_key_slot("foo{{bar}}zap") == cluster_key_slot("{bar"));
  CHECK(cluster_key_slot("foo{bar}{zap}") == cluster_key_slot("bar"));
  RedisCluster cluster(3, 0);
  const int port = cluster.master_ports()[0];
  for (const std::string& key : std::vector<std::string>{"session:abc", "foo{}{bar}", "foo{{bar}}zap", "a{b}c", "",
                                std::string("bin\0ary", 7), "session:principal:alice@example.com"})
    CHECK(cluster_key_slot(key) == server_slot(port, key));
}

TEST_CASE("redis+cluster: the store contract on three masters") {
  RedisCluster cluster(3, 0);
  SECTION("round trip, records spread over every master") {
    check_round_trip(cluster.uri());
    check_concurrent_cycles(cluster.uri("pool=2"));
    Fixture f(cluster.uri());
    for (int i = 0; i < 60; ++i) {  // all on one master: (1/3)^59
      Browser b;
      log_in(f, b, i);
    }
    for (long long keys : keys_per_master(cluster)) CHECK(keys > 0);
  }
  SECTION("parallel requests on one session") { check_concurrency(cluster.uri()); }
  SECTION("principals: listed and ended across slots") { check_principals(cluster.uri()); }
  SECTION("hash_keys and a foreign value") {
    check_hash_keys(cluster.uri());
    check_foreign_value(cluster.uri());
  }
}

TEST_CASE("redis+cluster: regenerate_id across two slots never shows neither record") {
  RedisCluster cluster(3, 0);
  Fixture f(cluster.uri());
  Backend* backend = f.store->backend();
  REQUIRE(backend);
  const int64_t now = 1'800'000'000;
  for (int round = 0; round < 50; ++round) {
    const std::string from = "from" + std::to_string(round), to = "to" + std::to_string(round);
    REQUIRE(cluster_key_slot("session:" + from) != cluster_key_slot("session:" + to));
    backend->save(from, "record", now, 60);
    std::atomic<bool> moved{false}, saw_neither{false};
    std::thread reader([&] {
      std::string data;
      while (!moved) {
        // The old key first: if it is gone, the new one was written before.
        const bool at_from = backend->load(from, now, &data);
        const bool at_to = backend->load(to, now, &data);
        if (!at_from && !at_to) saw_neither = true;
        if (at_to && !at_from) break;
      }
    });
    if (round % 2) {
      backend->move(from, to, "record", now, 60);
    } else {
      std::string data;
      Version version = 0;
      REQUIRE(backend->load_versioned(from, now, &data, &version));
      CHECK(backend->save_if(from, to, "record", now, 60, version) == Commit::written);
    }
    moved = true;
    reader.join();
    CHECK_FALSE(saw_neither);
  }
}

TEST_CASE("redis+cluster: a conditional move across slots is refused when the record changed") {
  RedisCluster cluster(3, 0);
  Fixture f(cluster.uri());
  Backend* backend = f.store->backend();
  const int64_t now = 1'800'000'000;
  std::string data;
  Version version = 0;
  backend->save("a", "one", now, 60);
  REQUIRE(backend->load_versioned("a", now, &data, &version));
  backend->save("a", "two", now, 60);  // another request wrote it
  CHECK(backend->save_if("a", "b", "three", now, 60, version) == Commit::changed);
  CHECK_FALSE(backend->load("b", now, &data));  // the new key was taken back
  REQUIRE(backend->load("a", now, &data));
  CHECK(data == "two");
  backend->erase("a");
  CHECK(backend->save_if("a", "b", "three", now, 60, version) == Commit::gone);
  CHECK_FALSE(backend->load("b", now, &data));
}

TEST_CASE("redis+cluster: resharding under 8 threads fails no request and loses no session") {
  RedisCluster cluster(3, 0);
  Fixture f(cluster.uri("timeout_ms=5000&pool=8"), {}, false);
  const auto masters = cluster.master_ports();
  CycleLoad load(f.store, 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // A quarter of the first master's slots away and back: keys migrate
  // under the threads (ASK, TRYAGAIN), then the map changes (MOVED).
  cluster.reshard(masters[0], masters[1], 1200);
  cluster.reshard(masters[1], masters[2], 600);
  cluster.reshard(masters[2], masters[0], 600);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  load.stop();
  INFO("acknowledged " << load.acknowledged() << ", first failure: " << load.first_failure());
  CHECK(load.acknowledged() > 500);
  CHECK(load.failures().empty());
  CHECK(load.lost_in_flight() == 0);
  CHECK(load.lost_after_reload() == 0);
}

TEST_CASE("redis+cluster: nodes added and removed while the store runs") {
  RedisCluster cluster(3, 0);
  Fixture f(cluster.uri("timeout_ms=5000"), {}, false);
  const auto masters = cluster.master_ports();
  CycleLoad load(f.store, 4);
  const int added = cluster.add_master();
  cluster.reshard(masters[0], added, 500);  // the new node takes slots, keys and all
  cluster.reshard(added, masters[1], 500);  // and gives them up
  cluster.remove_node(added);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  load.stop();
  INFO("first failure: " << load.first_failure());
  CHECK(load.failures().empty());
  CHECK(load.lost_after_reload() == 0);
}

TEST_CASE("redis+cluster: a master SIGKILLed under load loses nothing acknowledged with "
          "min_replicas=1") {
  // Two replicas each, so that the promoted one still has a replica to WAIT for.
  RedisCluster cluster(3, 2, 1000, "appendonly no\n");
  // timeout_ms above the failover (node timeout + election): calls wait it out.
  Fixture f(cluster.uri("timeout_ms=8000&pool=8&min_replicas=1&replica_timeout_ms=1000"), {}, false);
  CycleLoad load(f.store, 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const int victim = cluster.port_of_slot(cluster_key_slot("session:x"));
  const auto killed_at = CycleLoad::Clock::now();
  cluster.kill_master(victim);
  const long failover_ms = cluster.wait_until_ok();
  // min_replicas=1: saves wait until the new master's replica has synced.
  cluster.wait_settled();
  const auto ok_at = CycleLoad::Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  load.stop();
  INFO("failover took " << failover_ms << " ms; acknowledged " << load.acknowledged()
                        << "; failed " << load.failures().size() << ": " << load.first_failure());
  CHECK(load.acknowledged() > 200);
  // Requests may fail only while the slot has no master or the new master
  // no synced replica (and one replica_timeout_ms after).
  CHECK(failures_outside(load.failures(), killed_at, ok_at + std::chrono::milliseconds(2000)) == 0);
  CHECK(load.lost_in_flight() == 0);
  CHECK(load.lost_after_reload() == 0);
}

TEST_CASE("redis+cluster: min_replicas refuses a save no replica acknowledged") {
  RedisCluster cluster(3, 1);
  Fixture f(cluster.uri("min_replicas=1&replica_timeout_ms=1000&timeout_ms=3000"), {}, false);
  Browser b;
  REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").set("v", Value(1)); }) == Errc::ok);
  // Every replica paused: WAIT times out with 0 of 1.
  for (int master : cluster.master_ports()) cluster.process(cluster.replica_of(master)).pause();
  Browser other;
  CHECK(other.request([&](Request& r) { r.session(f.store, "sid").set("v", Value(2)); }) ==
        Errc::store_unavailable);
  for (int port : cluster.node_ports()) cluster.process(port).resume();
}

TEST_CASE("redis+cluster: bad URIs and options") {
  CHECK(open_error("redis+cluster://127.0.0.1:7000/1") == Errc::bad_uri);
  CHECK(open_error("redis+cluster://127.0.0.1:7000?db=2") == Errc::bad_uri);
  CHECK(open_error("redis+cluster://127.0.0.1:7000?sentinel_password=x") == Errc::bad_option);
  CHECK(open_error("redis+cluster://127.0.0.1:7000?min_replicas=-1") == Errc::bad_option);
  CHECK(open_error("redis+cluster://127.0.0.1:7000?min_replicas=1&replica_timeout_ms=1000") ==
        Errc::bad_option);  // not under timeout_ms
  CHECK(open_error("redis+cluster://127.0.0.1:1") == Errc::store_unavailable);
  RedisServer plain;  // not a cluster: CLUSTER SLOTS is refused
  CHECK(open_error("redis+cluster://127.0.0.1:" + std::to_string(plain.port)) ==
        Errc::store_unavailable);
}
