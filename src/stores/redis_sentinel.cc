#include "redis_sentinel.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <charconv>

#include "error.h"

namespace sessions::internal {
namespace {

bool parse_port(std::string_view text, int* port) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *port);
  return ec == std::errc() && end == text.data() + text.size() && *port > 0 && *port < 65536;
}

// The first reply of a server that cannot take our writes now.
const redisReply* first_not_master(const RedisReplies& replies) {
  for (const RedisReply& r : replies)
    if (is_error_code(*r, "READONLY") || is_error_code(*r, "LOADING") ||
        is_error_code(*r, "MASTERDOWN"))
      return r.get();
  return nullptr;
}

std::vector<std::string_view> split_spaces(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t space = text.find(' ');
    if (space) out.push_back(text.substr(0, space));
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
  return out;
}

}  // namespace

RedisSentinelRouter::RedisSentinelRouter(std::vector<HostPort> sentinels, std::string master_name,
                                         const RedisLogin& sentinel_login,
                                         const RedisLogin& data_login)
    : master_name_(std::move(master_name)),
      sentinel_login_(sentinel_login),
      data_login_(data_login),
      name_("redis sentinel " + master_name_) {
  sentinel_login_.pool = 2;
  sentinel_login_.db = 0;
  for (const HostPort& s : sentinels)
    sentinels_.push_back(std::make_unique<RedisNode>(s.host, s.port, sentinel_login_));
}

RedisSentinelRouter::~RedisSentinelRouter() {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stop_ = true;
    if (watch_fd_ >= 0) ::shutdown(watch_fd_, SHUT_RDWR);  // wakes its blocking read
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

void RedisSentinelRouter::start() {
  master()->ping();
  watcher_ = std::thread([this] { watch_switches(); });
}

RedisSentinelRouter::NodePtr RedisSentinelRouter::master() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (master_) return master_;
  }
  return discover();
}

void RedisSentinelRouter::forget(const NodePtr& stale) {
  std::lock_guard<std::mutex> lock(mu_);
  if (master_ == stale) master_.reset();
}

void RedisSentinelRouter::install(const std::string& host, int port) {
  std::lock_guard<std::mutex> lock(mu_);
  if (master_ && master_->host() == host && master_->port() == port) return;
  if (master_) master_->forget_connections();
  master_ = std::make_shared<RedisNode>(host, port, data_login_);
}

RedisSentinelRouter::NodePtr RedisSentinelRouter::discover() {
  std::lock_guard<std::mutex> serial(discover_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (master_) return master_;  // found by the thread before us
  }
  std::string reasons;
  for (const auto& sentinel : sentinels_) {
    RedisReplies replies;
    std::string host;
    int port = 0;
    try {
      sentinel->run({{"SENTINEL", "get-master-addr-by-name", master_name_}}, &replies);
      const redisReply& r = *replies[0];
      if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 ||
          r.element[0]->type != REDIS_REPLY_STRING || r.element[1]->type != REDIS_REPLY_STRING ||
          !parse_port(reply_text(*r.element[1]), &port)) {
        reasons += "; " + sentinel->name() + " named no master " + master_name_ +
                   (is_error(r) ? ": " + std::string(reply_text(r)) : "");
        continue;
      }
      host = std::string(reply_text(*r.element[0]));
      auto candidate = std::make_shared<RedisNode>(host, port, data_login_);
      candidate->run({{"ROLE"}}, &replies);
      const redisReply& role = *replies[0];
      if (role.type == REDIS_REPLY_ARRAY && role.elements > 0 &&
          role.element[0]->type == REDIS_REPLY_STRING && reply_text(*role.element[0]) == "master") {
        std::lock_guard<std::mutex> lock(mu_);
        master_ = candidate;
        return candidate;
      }
      reasons += "; " + sentinel->name() + " named " + candidate->name() + ", which is not a master" +
                 (is_error(role) ? ": " + std::string(reply_text(role)) : "");
    } catch (const Error& e) {
      if (e.code() != Errc::store_unavailable) throw;
      reasons += std::string("; ") + e.what();
    }
  }
  fail(Errc::store_unavailable, name_ + ": no master found" + reasons);
}

void RedisSentinelRouter::run(std::string_view, const RedisPipeline& pipeline,
                              RedisReplies* replies) {
  RetryDeadline deadline(data_login_.timeout);
  std::string last_error;
  for (;;) {
    NodePtr node;
    try {
      node = master();
      node->run(pipeline, replies);
      const redisReply* refused = first_not_master(*replies);
      if (!refused) return;
      last_error = node->name() + ": " + std::string(reply_text(*refused));
      forget(node);
    } catch (const Error& e) {
      if (e.code() != Errc::store_unavailable) throw;
      last_error = e.what();
      if (node) forget(node);
    }
    if (!deadline.pause())
      fail(Errc::store_unavailable, name_ + ": " + last_error + " (retried for " +
                                        std::to_string(data_login_.timeout.count()) + " ms)");
  }
}

// Subscribed to +switch-master on one sentinel at a time; a lost connection
// moves on to the next sentinel after a short wait.
void RedisSentinelRouter::watch_switches() {
  const timeval connect_timeout{time_t(sentinel_login_.connect_timeout.count() / 1000),
                                suseconds_t(sentinel_login_.connect_timeout.count() % 1000 * 1000)};
  std::unique_lock<std::mutex> lock(watch_mu_);
  for (size_t next = 0; !stop_; ++next) {
    const RedisNode& sentinel = *sentinels_[next % sentinels_.size()];
    lock.unlock();
    redisContext* c = redisConnectWithTimeout(sentinel.host().c_str(), sentinel.port(), connect_timeout);
    bool subscribed = c && !c->err;
    auto command = [&](std::initializer_list<std::string_view> args) {
      std::vector<const char*> argv;
      std::vector<size_t> lengths;
      for (auto a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
      }
      RedisReply reply(static_cast<redisReply*>(
          redisCommandArgv(c, int(argv.size()), argv.data(), lengths.data())));
      return reply && !is_error(*reply);
    };
    if (subscribed && sentinel_login_.has_password)
      subscribed = sentinel_login_.user.empty()
                       ? command({"AUTH", sentinel_login_.password})
                       : command({"AUTH", sentinel_login_.user, sentinel_login_.password});
    if (subscribed) subscribed = command({"SUBSCRIBE", "+switch-master"});
    lock.lock();
    if (subscribed && !stop_) {
      watch_fd_ = c->fd;
      lock.unlock();
      void* raw = nullptr;
      while (redisGetReply(c, &raw) == REDIS_OK) {
        RedisReply message(static_cast<redisReply*>(raw));
        // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
        if (message->type != REDIS_REPLY_ARRAY || message->elements != 3 ||
            message->element[2]->type != REDIS_REPLY_STRING)
          continue;
        const auto words = split_spaces(reply_text(*message->element[2]));
        int port = 0;
        if (words.size() == 5 && words[0] == master_name_ && parse_port(words[4], &port))
          install(std::string(words[3]), port);
      }
      lock.lock();
      watch_fd_ = -1;
    }
    lock.unlock();
    if (c) redisFree(c);
    lock.lock();
    watch_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_; });
  }
}

}  // namespace sessions::internal
