// One Redis server as the redis stores see it: its address, how to log in,
// and a pool of hiredis connections to it (hiredis contexts are not
// thread-safe, so each call leases one). A pipeline of commands is sent on
// one leased connection and its replies read back in order. The routers
// (redis_router.h) decide which node a command goes to; this file only
// talks to one.
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pool.h"

struct redisContext;
struct redisReply;
struct timeval;

namespace sessions::internal {

struct RedisReplyFree {
  void operator()(redisReply* r) const;
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyFree>;
using RedisReplies = std::vector<RedisReply>;

std::string_view reply_text(const redisReply& r);
bool is_error(const redisReply& r);
// An error reply that starts with `code` ("MOVED", "READONLY", ...).
bool is_error_code(const redisReply& r, std::string_view code);

// Commands sent together. The arguments are views: they must outlive run().
class RedisPipeline {
 public:
  RedisPipeline() = default;
  RedisPipeline(std::initializer_list<std::initializer_list<std::string_view>> commands) {
    for (auto c : commands) add(c.begin(), c.end());
  }
  void add(std::initializer_list<std::string_view> command) { add(command.begin(), command.end()); }
  template <typename It>
  void add(It begin, It end) {
    for (It it = begin; it != end; ++it) args_.push_back(*it);
    ends_.push_back(args_.size());
  }
  size_t size() const { return ends_.size(); }
  // The arguments of command i.
  const std::string_view* begin(size_t i) const { return args_.data() + (i ? ends_[i - 1] : 0); }
  size_t length(size_t i) const { return ends_[i] - (i ? ends_[i - 1] : 0); }

 private:
  std::vector<std::string_view> args_;
  std::vector<size_t> ends_;
};

// How to reach and log in to the data nodes (or, for a Sentinel, to the
// sentinels: their credentials are separate).
struct RedisLogin {
  std::string user, password;  // user empty: AUTH password (the default user)
  bool has_password = false;
  int db = 0;  // SELECT after connecting (Redis Cluster has only db 0)
  size_t pool = 16;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds timeout{1000};
};

timeval to_timeval(std::chrono::milliseconds ms);
// One command on a blocking connection outside any pool (a connection's
// setup, a subscription): its reply, nullptr when the connection failed.
RedisReply run_command(redisContext* c, std::initializer_list<std::string_view> args);
// AUTH as `login` says, when it has a password: "" when logged in (or no
// password), else why not.
std::string log_in(redisContext* c, const RedisLogin& login);

class RedisNode {
 public:
  // host is a name or address, or a socket path when port is 0.
  RedisNode(std::string host, int port, const RedisLogin& login);

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  const std::string& name() const { return name_; }  // "redis 127.0.0.1:6379", for messages

  // Sends `pipeline` (after ASKING when `asking`, whose reply is dropped) and
  // fills *replies in order. Throws Errc::store_unavailable when the node
  // cannot be reached or the connection breaks; error replies are returned,
  // not thrown. A pipeline that failed on a reused connection because the
  // server closed it since (a restart, an idle timeout) is sent once more on
  // a new connection: the stores only send commands that may run twice.
  void run(const RedisPipeline& pipeline, RedisReplies* replies, bool asking = false);

  // PING: connects, logs in; throws store_unavailable when refused (NOAUTH).
  void ping();

  // Drops the idle connections (a master that became a replica): the next
  // calls connect anew.
  void forget_connections() { pool_.clear_idle(); }

 private:
  struct ContextCloser {
    void operator()(redisContext* c) const;
  };
  using Context = std::unique_ptr<redisContext, ContextCloser>;

  Context connect() const;
  bool send(redisContext* c, const RedisPipeline& pipeline, bool asking, RedisReplies* replies);

  std::string host_;
  int port_;
  RedisLogin login_;
  std::string name_;
  Pool<Context> pool_;
};

}  // namespace sessions::internal
