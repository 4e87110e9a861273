// Which Redis server a command goes to, and what to do when that server
// goes away. Three deployments, one interface:
//   - one server (redis://, redis+unix://): every command to it; a failure
//     is the caller's error at once;
//   - Sentinel (redis+sentinel://): every command to the master the
//     sentinels name, followed across failovers (redis_sentinel.h);
//   - Cluster (redis+cluster://): each command to the master of its key's
//     slot, following MOVED and ASK redirects (redis_cluster.h).
// Sentinel and Cluster retry within the store's timeout_ms: a failover or a
// resharding is a pause, not an error, as long as it ends in time.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "redis_node.h"

namespace sessions::internal {

class RedisRouter {
 public:
  virtual ~RedisRouter() = default;

  // Finds the servers and connects once (throws Errc::store_unavailable).
  virtual void start() = 0;

  // Sends `pipeline`, every key of which hashes to the slot of `key`, to the
  // node that serves it, and fills *replies. Error replies the router does
  // not handle (WRONGTYPE, a script's error) are returned to the caller.
  // Throws Errc::store_unavailable when no node answers in time.
  virtual void run(std::string_view key, const RedisPipeline& pipeline, RedisReplies* replies) = 0;

  // False for Cluster: keys of different slots cannot meet in one command,
  // transaction or script.
  virtual bool one_node() const { return true; }

  // "redis 127.0.0.1:6379", "redis sentinel mymaster", "redis cluster ..."
  virtual const std::string& name() const = 0;
};

std::unique_ptr<RedisRouter> one_server_router(std::string host, int port, const RedisLogin& login);

// Time left to retry in: sleeps with a growing back-off (10 ms doubling up to
// 200 ms), never past the deadline.
class RetryDeadline {
 public:
  explicit RetryDeadline(std::chrono::milliseconds budget)
      : deadline_(std::chrono::steady_clock::now() + budget) {}
  bool passed() const { return std::chrono::steady_clock::now() >= deadline_; }
  // Sleeps before the next attempt; false (without sleeping) once the deadline passed.
  bool pause();

 private:
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::milliseconds backoff_{10};
};

}  // namespace sessions::internal
