// Real Redis Cluster and Redis Sentinel topologies for the store tests:
// Debian's redis-server (and redis-cli to build and reshard the cluster),
// every process on a free 127.0.0.1 port with its config in a TempDir of its
// own, killed, restarted and failed over by the tests, killed at the end.
// Every wait polls with a deadline and throws std::runtime_error on expiry,
// so a broken topology fails a test instead of hanging it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "servers.h"

namespace sessions::testing {

// A Redis Cluster of `masters` masters (at least 3: redis-cli refuses fewer)
// with `replicas_per_master` replicas each, made with `redis-cli --cluster
// create ... --cluster-replicas R --cluster-yes`. Each node is a redis-server
// with cluster-enabled yes, its nodes.conf in its own TempDir, and
// cluster-node-timeout = node_timeout_ms; `extra` is appended to every node's
// config (later lines win: "appendonly yes\n" or a changed default).
// The constructor returns on a settled cluster (see wait_settled).
// Queries ask a live node at the time; they are safe to call from a second
// thread while the first one reshards.
struct RedisCluster {
  explicit RedisCluster(int masters = 3, int replicas_per_master = 1, int node_timeout_ms = 1000,
                        const std::string& extra = "");
  ~RedisCluster();  // kills every node it started
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // "redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...[?query]": the masters as
  // created (the seeds a client starts from, even after failovers).
  std::string uri(const std::string& query = "") const;
  std::vector<int> master_ports() const;  // live masters now (with or without slots), by port
  std::vector<int> node_ports() const;    // every live node, masters and replicas, as started
  int port_of_slot(int slot) const;       // the master serving a slot now
  std::vector<int> slots_of(int master_port) const;  // the slots it serves now
  int replica_of(int master_port) const;  // one live replica of that master
  std::string node_id(int port) const;    // CLUSTER MYID
  ServerProcess& process(int port);       // to pause() / resume() a node

  void kill_master(int port);  // SIGKILL the node (kill_hard); any node, in fact
  // Starts a killed node again on its port with its nodes.conf: it rejoins
  // (a failed-over master comes back as a replica of its successor).
  // Returns once it listens; wait_settled() for the cluster to take it in.
  void restart_node(int port);

  // Until every live node says cluster_state:ok and all of them agree that
  // every slot is served by a live master; returns the milliseconds it took.
  long wait_until_ok(int timeout_ms = 30000);
  // wait_until_ok, and also: every live node knows every node, all agree on
  // the whole topology (roles, slots, no slot half-migrated), and every
  // live replica reports master_link_status:up. Returns the milliseconds.
  long wait_settled(int timeout_ms = 30000);

  // Moves `slots` slots from the master at from_port to the master at
  // to_port with `redis-cli --cluster reshard ... --cluster-yes` (node ids
  // from CLUSTER MYID), keys and all. Waits first until the cluster is
  // settled (redis-cli refuses to reshard a cluster whose nodes disagree).
  // Blocking: returns when redis-cli exits (throws if it fails); the other
  // nodes may learn the last moves by gossip a moment later (wait_settled).
  void reshard(int from_port, int to_port, int slots);
  // A new empty master (redis-cli --cluster add-node), once every node knows
  // it; returns its port.
  int add_master();
  // redis-cli --cluster del-node (which also shuts the node down): the node
  // must serve no slots (reshard them away first). Returns once every
  // remaining node has forgotten it.
  void remove_node(int port);

  struct Node;

 private:
  Node& node(int port) const;
  Node& start_node();
  long wait(bool settled, int timeout_ms);

  int node_timeout_ms_;
  std::string extra_;
  TempDir dir_;  // redis-cli's output, shown when it fails
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<int> created_masters_;
};

// A Sentinel group: one master, `replicas` replicas (replicaof) and
// `sentinels` sentinels (quorum 2, or 1 with a single sentinel) watching it
// under `master_name`, with down-after-milliseconds = down_after_ms and
// failover-timeout 2000. data_password: requirepass + masterauth on the data
// nodes, sentinel auth-pass in the sentinels; sentinel_password: requirepass
// (and sentinel-pass, to talk to each other) in the sentinels.
// The sentinels are `redis-server sentinel.conf --sentinel`: the same binary
// (Debian's redis-sentinel package only adds a symlink to it from redis-tools,
// and a system service on port 26379), so that package is not needed.
// The constructor returns on a settled group (see wait_settled).
struct RedisSentinelGroup {
  explicit RedisSentinelGroup(const std::string& master_name = "mymaster", int replicas = 2,
                              int sentinels = 3, int down_after_ms = 1000,
                              const std::string& data_password = "",
                              const std::string& sentinel_password = "");
  ~RedisSentinelGroup();
  RedisSentinelGroup(const RedisSentinelGroup&) = delete;
  RedisSentinelGroup& operator=(const RedisSentinelGroup&) = delete;

  // "redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/mymaster[?query]"
  std::string uri(const std::string& query = "") const;
  int master_port() const;  // what a live sentinel says now (get-master-addr-by-name)
  std::vector<int> sentinel_ports() const;
  std::vector<int> data_ports() const;     // every live data node, master and replicas
  std::vector<int> replica_ports() const;  // the live data nodes but master_port()
  ServerProcess& process(int port);        // a data node's or a sentinel's

  void kill_master();  // SIGKILL the current master
  // Starts a killed data node again on its port (with its config as Sentinel
  // last rewrote it); Sentinel makes an old master a replica of the new one.
  void restart(int port);

  // Until the live sentinels all name a master other than old_port that is
  // alive and whose ROLE is master; returns the milliseconds it took.
  long wait_for_new_master(int old_port, int timeout_ms = 30000);
  // Until the live sentinels agree on a live master (ROLE master), know each
  // other and every live replica, and every live replica replicates from
  // it with master_link_status:up; returns the milliseconds it took.
  long wait_settled(int timeout_ms = 30000);
  // SENTINEL FAILOVER <name> (a clean, manual failover) on a live sentinel,
  // retried while one is still in progress (INPROG) or the sentinel has not
  // yet seen a replica fit to promote (NOGOODSLAVE). Returns once a sentinel
  // accepted it: wait_for_new_master() for the outcome.
  void failover(int timeout_ms = 30000);

  struct Sentinel;

 private:
  RedisServer& data_node(int port) const;
  std::vector<int> live_sentinels() const;

  std::string name_;
  std::string data_password_, sentinel_password_;
  std::vector<std::unique_ptr<RedisServer>> data_;
  std::vector<std::unique_ptr<Sentinel>> sentinels_;
};

}  // namespace sessions::testing
