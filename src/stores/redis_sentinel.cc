#include "redis_sentinel.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fcntl.h>

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
  if (watcher_.joinable()) {
    const char stop = 1;
    while (::write(wake_pipe_[1], &stop, 1) < 0 && errno == EINTR) {
    }
    watcher_.join();
  }
  for (int fd : wake_pipe_)
    if (fd >= 0) ::close(fd);
}

void RedisSentinelRouter::start() {
  master()->ping();
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0)
    fail(Errc::store_unavailable, name_ + ": cannot make the subscriber's pipe");
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

namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Subscription = std::unique_ptr<redisContext, ContextFree>;

// A connection to `sentinel` subscribed to the two channels that announce a
// new master, or nullptr (tried again later).
Subscription subscribe(const RedisNode& sentinel, const RedisLogin& login) {
  const timeval timeout = to_timeval(login.connect_timeout);
  Subscription c(redisConnectWithTimeout(sentinel.host().c_str(), sentinel.port(), timeout));
  if (!c || c->err || redisSetTimeout(c.get(), timeout) != REDIS_OK || !log_in(c.get(), login).empty())
    return nullptr;
  // The reply read here confirms the first channel; the second's comes later.
  RedisReply reply = run_command(c.get(), {"SUBSCRIBE", "+switch-master", "+promoted-slave"});
  if (!reply || is_error(*reply)) return nullptr;
  return c;
}

}  // namespace

// One thread polls a subscription to every sentinel and the wake pipe.
void RedisSentinelRouter::watch_switches() {
  using Clock = std::chrono::steady_clock;
  std::vector<Subscription> subscriptions(sentinels_.size());
  std::vector<Clock::time_point> retry_at(sentinels_.size());
  std::vector<pollfd> fds;
  std::vector<size_t> which;  // fds[i + 1] is subscriptions[which[i]]
  for (;;) {
    const auto now = Clock::now();
    fds.assign(1, pollfd{wake_pipe_[0], POLLIN, 0});
    which.clear();
    for (size_t i = 0; i < sentinels_.size(); ++i) {
      if (!subscriptions[i] && now >= retry_at[i]) {
        subscriptions[i] = subscribe(*sentinels_[i], sentinel_login_);
        if (!subscriptions[i]) retry_at[i] = now + std::chrono::seconds(1);
      }
      if (subscriptions[i]) {
        fds.push_back(pollfd{subscriptions[i]->fd, POLLIN, 0});
        which.push_back(i);
      }
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) return;
    if (fds[0].revents) return;  // the destructor
    for (size_t k = 1; k < fds.size(); ++k) {
      if (!fds[k].revents) continue;
      Subscription& c = subscriptions[which[k - 1]];
      void* raw = nullptr;
      bool alive = redisBufferRead(c.get()) == REDIS_OK;
      while (alive && (alive = redisGetReplyFromReader(c.get(), &raw) == REDIS_OK) && raw)
        on_message(RedisReply(static_cast<redisReply*>(raw)));
      if (!alive) {
        c.reset();
        retry_at[which[k - 1]] = Clock::now() + std::chrono::milliseconds(200);
      }
    }
  }
}

// ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"] or
// ["message", "+promoted-slave", "slave <ip:port> <ip> <port> @ <name> <old ip> <old port>"]
void RedisSentinelRouter::on_message(RedisReply message) {
  if (message->type != REDIS_REPLY_ARRAY || message->elements != 3 ||
      message->element[1]->type != REDIS_REPLY_STRING ||
      message->element[2]->type != REDIS_REPLY_STRING)
    return;
  const std::string_view channel = reply_text(*message->element[1]);
  const auto words = split_spaces(reply_text(*message->element[2]));
  int port = 0;
  if (channel == "+switch-master" && words.size() == 5 && words[0] == master_name_ &&
      parse_port(words[4], &port))
    install(std::string(words[3]), port);
  else if (channel == "+promoted-slave" && words.size() == 8 && words[0] == "slave" &&
           words[4] == "@" && words[5] == master_name_ && parse_port(words[3], &port))
    install(std::string(words[2]), port);
}

}  // namespace sessions::internal
