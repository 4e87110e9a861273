// redis+cluster://[user:password@]host:port[,host:port...]?...
//
// Routing for Redis Cluster on hiredis connections (Debian's hiredis 0.14
// has no cluster client), after the Redis Cluster specification: a key's
// slot is CRC16 of the key, or of its hash tag (the text between the first
// '{' and the next '}', when not empty), modulo 16384; the slot map comes
// from CLUSTER SLOTS, asked of any node that answers (the seeds in the URI
// first, then the nodes learnt since); each master has its own connection
// pool (pool= connections each).
//
// Redirects: MOVED updates the slot's entry and refreshes the whole map (a
// resharding moves many slots); ASK sends ASKING and the command once to the
// importing node without touching the map. TRYAGAIN (a multi-key command
// during a slot's migration), CLUSTERDOWN (no master for the slot yet) and
// a node that cannot be reached (killed; its replica not yet promoted) are
// retried with back-off until timeout_ms has passed since the call began,
// refreshing the map between attempts: a failover that ends within
// timeout_ms is a slow request, not a failed one.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "options.h"
#include "redis_router.h"

namespace sessions::internal {

constexpr int kClusterSlots = 16384;

// The slot of `key`, with hash tags.
int cluster_key_slot(std::string_view key);

class RedisClusterRouter : public RedisRouter {
 public:
  RedisClusterRouter(std::vector<HostPort> seeds, const RedisLogin& login);

  void start() override;
  void run(std::string_view key, const RedisPipeline& pipeline, RedisReplies* replies) override;
  bool one_node() const override { return false; }
  const std::string& name() const override { return name_; }

 private:
  using NodePtr = std::shared_ptr<RedisNode>;

  NodePtr node_of_slot(int slot);
  // The node at host:port, made when first named (by the map or a redirect).
  NodePtr node_at(const std::string& host, int port);
  // Asks the nodes for CLUSTER SLOTS and installs the answer; `force` skips
  // the rate limit (at most one refresh per 100 ms otherwise). Throws
  // store_unavailable when no node answers.
  void refresh(bool force);
  bool refresh_from(RedisNode& node, std::string* why);

  std::vector<HostPort> seeds_;
  RedisLogin login_;
  std::string name_;

  std::shared_mutex mu_;  // guards slots_ and nodes_
  std::vector<NodePtr> slots_;
  std::map<std::string, NodePtr> nodes_;  // "host:port"

  std::mutex refresh_mu_;  // one refresh at a time; guards the two below
  std::chrono::steady_clock::time_point last_refresh_{};
  NodePtr last_answered_;
};

}  // namespace sessions::internal
