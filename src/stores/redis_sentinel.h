// redis+sentinel://[user:password@]s1:26379[,s2:26379...]/MASTERNAME[/DB]?...
//   sentinel_user=, sentinel_password=  how to log in to the sentinels (the
//                                       URI's user and password are the data
//                                       nodes')
//
// The master is the one a sentinel names (SENTINEL get-master-addr-by-name,
// asking the sentinels in turn) and that says so itself (ROLE): a sentinel
// that has not yet heard of a failover is not believed over the server.
// Every command goes to that master. It is looked up again
//   - when a command cannot reach it or it answers READONLY (demoted to a
//     replica), LOADING or MASTERDOWN: the command is retried, with back-off,
//     until timeout_ms has passed since the call began; and
//   - when a sentinel publishes +switch-master or +promoted-slave for this
//     name: a background thread stays subscribed to every sentinel (one
//     lost is subscribed again a second later), so that the pool moves on
//     even while the old master still takes writes. That matters in a
//     manual failover (SENTINEL FAILOVER): Sentinel leaves the old master a
//     writable master until its next look at it (up to 10 s), and what is
//     written there is lost when it becomes a replica. The leader sentinel
//     says +promoted-slave as soon as the replica is a master; the others
//     say +switch-master when they hear of it.
// So a failover is a pause of at most the sentinels' down-after-milliseconds
// plus their election (about a second) for calls that wait long enough
// (timeout_ms above that), and store_unavailable for calls that do not.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "options.h"
#include "redis_router.h"

namespace sessions::internal {

class RedisSentinelRouter : public RedisRouter {
 public:
  RedisSentinelRouter(std::vector<HostPort> sentinels, std::string master_name,
                      const RedisLogin& sentinel_login, const RedisLogin& data_login);
  ~RedisSentinelRouter() override;

  void start() override;
  void run(std::string_view key, const RedisPipeline& pipeline, RedisReplies* replies) override;
  const std::string& name() const override { return name_; }

 private:
  using NodePtr = std::shared_ptr<RedisNode>;

  NodePtr master();
  // Asks the sentinels; installs and returns the confirmed master, or throws
  // store_unavailable with each sentinel's answer.
  NodePtr discover();
  // `stale` failed: the next call looks the master up again.
  void forget(const NodePtr& stale);
  void install(const std::string& host, int port);
  void watch_switches();  // the subscriber thread
  void on_message(RedisReply message);

  std::vector<std::unique_ptr<RedisNode>> sentinels_;
  std::string master_name_;
  RedisLogin sentinel_login_, data_login_;
  std::string name_;

  std::mutex mu_;  // guards master_
  NodePtr master_;
  std::mutex discover_mu_;  // one lookup at a time

  // The subscriber thread polls every sentinel's subscription and this
  // pipe's read end: the destructor writes to it to stop the thread.
  int wake_pipe_[2] = {-1, -1};
  std::thread watcher_;
};

}  // namespace sessions::internal
