// The redis+sentinel: store against real sentinels (3, quorum 2) watching a
// master and 2 replicas on 127.0.0.1: the master found and confirmed, a
// SIGKILLed master replaced, a manual failover followed at once through
// +switch-master, credentials for the sentinels and the data nodes apart.
#include <catch2/catch.hpp>
#include <hiredis/hiredis.h>

#include <thread>

#include "concurrency.h"
#include "contract.h"
#include "load.h"
#include "principals.h"
#include "redis_topologies.h"

using namespace sessions::internal;
using namespace sessions::testing;

namespace {

// The port of the server that holds the session record `key` (no prefix).
bool holds_key(int port, const std::string& key, const std::string& password = "") {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!password.empty()) freeReplyObject(redisCommand(c, "AUTH %s", password.c_str()));
  auto* r = static_cast<redisReply*>(redisCommand(c, "EXISTS session:%s", key.c_str()));
  const bool exists = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  freeReplyObject(r);
  redisFree(c);
  return exists;
}

// The ID of the browser's session "sid".
std::string session_id(Fixture& f, const Browser& b) {
  Request r(b.jar);
  const std::string id = r.session(f.store, "sid").id_text();
  std::string message;
  r.finish(&message);
  return id;
}

}  // namespace

TEST_CASE("redis+sentinel: the store contract on the master the sentinels name") {
  RedisSentinelGroup group;
  check_round_trip(group.uri());
  check_concurrent_cycles(group.uri("pool=2"));
  check_concurrency(group.uri());
  check_principals(group.uri());
  Fixture f(group.uri(), {}, false);
  Browser b;
  log_in(f, b);
  CHECK(holds_key(group.master_port(), session_id(f, b)));
}

TEST_CASE("redis+sentinel: separate credentials for the sentinels and the data nodes") {
  RedisSentinelGroup group("cache", 1, 3, 1000, "data-secret", "sentinel-secret");
  const std::string hosts = group.uri().substr(std::string("redis+sentinel://").size());
  check_round_trip("redis+sentinel://:data-secret@" + hosts + "?sentinel_password=sentinel-secret");
  CHECK(open_error("redis+sentinel://:data-secret@" + hosts) == Errc::store_unavailable);
  CHECK(open_error("redis+sentinel://" + hosts + "?sentinel_password=sentinel-secret") ==
        Errc::store_unavailable);  // NOAUTH from the master
  CHECK(open_error("redis+sentinel://:data-secret@" + hosts.substr(0, hosts.find('/')) +
                   "/other?sentinel_password=sentinel-secret") == Errc::store_unavailable);
}

TEST_CASE("redis+sentinel: a master SIGKILLed under load is replaced and with min_replicas=1 "
          "nothing acknowledged is lost") {
  RedisSentinelGroup group("mymaster", 2, 3, 1000);
  Fixture f(group.uri("timeout_ms=8000&pool=8&min_replicas=1&replica_timeout_ms=1000"), {}, false);
  CycleLoad load(f.store, 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const int old_master = group.master_port();
  const auto killed_at = CycleLoad::Clock::now();
  group.kill_master();
  const long failover_ms = group.wait_for_new_master(old_master);
  // min_replicas=1: saves wait until Sentinel has pointed the other replica
  // at the new master and it has synced; until then they are refused.
  group.wait_settled();
  const auto switched_at = CycleLoad::Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  load.stop();
  INFO("failover took " << failover_ms << " ms; acknowledged " << load.acknowledged()
                        << "; failed " << load.failures().size() << ": " << load.first_failure());
  CHECK(load.acknowledged() > 200);
  for (auto t : load.failures()) CHECK((t >= killed_at && t <= switched_at + std::chrono::seconds(2)));
  CHECK(load.lost_in_flight() == 0);
  CHECK(load.lost_after_reload() == 0);
}

TEST_CASE("redis+sentinel: with timeout_ms shorter than a failover, requests fail only during it") {
  RedisSentinelGroup group("mymaster", 2, 3, 1000);
  Fixture f(group.uri("timeout_ms=300&connect_timeout_ms=200&pool=8"), {}, false);
  CycleLoad load(f.store, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int old_master = group.master_port();
  const auto killed_at = CycleLoad::Clock::now();
  group.kill_master();
  group.wait_for_new_master(old_master);
  const auto switched_at = CycleLoad::Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const size_t acknowledged_before = load.acknowledged();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  load.stop();
  INFO("failed " << load.failures().size() << ": " << load.first_failure());
  CHECK(!load.failures().empty());  // the kill landed: 300 ms is shorter than the failover
  for (auto t : load.failures()) CHECK((t >= killed_at && t <= switched_at + std::chrono::seconds(1)));
  CHECK(load.acknowledged() > acknowledged_before);  // and the store works again
}

TEST_CASE("redis+sentinel: a manual failover is followed at once through +switch-master") {
  RedisSentinelGroup group("mymaster", 2, 3, 1000);
  Fixture f(group.uri("timeout_ms=8000"), {}, false);
  Browser b;
  log_in(f, b);
  const int old_master = group.master_port();
  group.failover();
  group.wait_for_new_master(old_master);
  // For about 10 s Sentinel leaves the old master a writable master (until
  // its next INFO of it): only +switch-master tells the store to move. A
  // session written there now would be lost when it is made a replica.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 0; i < 20; ++i)
    REQUIRE(b.request([&](Request& r) {
      Session& s = r.session(f.store, "sid");
      CHECK(*s.get("user_id") == Value(42));
      s.set("n", Value(i));
    }) == Errc::ok);
  Browser fresh;
  log_in(f, fresh);
  CHECK(holds_key(group.master_port(), session_id(f, fresh)));
  CHECK(holds_key(group.master_port(), session_id(f, b)));
}

TEST_CASE("redis+sentinel: bad URIs and options") {
  CHECK(open_error("redis+sentinel://127.0.0.1:26379") == Errc::bad_uri);  // no master name
  CHECK(open_error("redis+sentinel://127.0.0.1:26379/mymaster/x") == Errc::bad_option);
  CHECK(open_error("redis+sentinel://127.0.0.1:26379/mymaster?sentinel_user=u") == Errc::bad_option);
  CHECK(open_error("redis://127.0.0.1:6379?sentinel_password=x") == Errc::bad_option);
  CHECK(open_error("redis+sentinel://127.0.0.1:1/mymaster") == Errc::store_unavailable);
}
