#include "redis_node.h"

#include <hiredis/hiredis.h>

#include <cerrno>

#include "error.h"

namespace sessions::internal {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{time_t(ms.count() / 1000), suseconds_t(ms.count() % 1000 * 1000)};
}

}  // namespace

void RedisReplyFree::operator()(redisReply* r) const { freeReplyObject(r); }

std::string_view reply_text(const redisReply& r) { return std::string_view(r.str, r.len); }

bool is_error(const redisReply& r) { return r.type == REDIS_REPLY_ERROR; }

bool is_error_code(const redisReply& r, std::string_view code) {
  if (r.type != REDIS_REPLY_ERROR) return false;
  std::string_view text = reply_text(r);
  return text.substr(0, code.size()) == code &&
         (text.size() == code.size() || text[code.size()] == ' ');
}

void RedisNode::ContextCloser::operator()(redisContext* c) const { redisFree(c); }

RedisNode::RedisNode(std::string host, int port, const RedisLogin& login)
    : host_(std::move(host)),
      port_(port),
      login_(login),
      name_(port ? "redis " + host_ + ":" + std::to_string(port) : "redis " + host_),
      pool_(login.pool) {}

RedisNode::Context RedisNode::connect() const {
  const timeval connect_timeout = to_timeval(login_.connect_timeout);
  Context c(port_ == 0 ? redisConnectUnixWithTimeout(host_.c_str(), connect_timeout)
                       : redisConnectWithTimeout(host_.c_str(), port_, connect_timeout));
  if (!c) fail(Errc::no_memory, name_ + ": out of memory");
  if (c->err) fail(Errc::store_unavailable, name_ + ": cannot connect: " + c->errstr);
  if (redisSetTimeout(c.get(), to_timeval(login_.timeout)) != REDIS_OK ||
      (port_ != 0 && redisEnableKeepAlive(c.get()) != REDIS_OK))
    fail(Errc::store_unavailable, name_ + ": " + c->errstr);

  auto setup = [&](std::initializer_list<std::string_view> args, const char* what) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (auto a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    RedisReply reply(static_cast<redisReply*>(
        redisCommandArgv(c.get(), int(argv.size()), argv.data(), lengths.data())));
    if (!reply) fail(Errc::store_unavailable, name_ + ": " + what + ": " + c->errstr);
    if (reply->type == REDIS_REPLY_ERROR)
      fail(Errc::store_unavailable,
           name_ + " refused " + what + ": " + std::string(reply_text(*reply)));
  };
  if (login_.has_password) {
    if (login_.user.empty()) setup({"AUTH", login_.password}, "AUTH");
    else setup({"AUTH", login_.user, login_.password}, "AUTH");
  }
  if (login_.db != 0) setup({"SELECT", std::to_string(login_.db)}, "SELECT");
  return c;
}

void RedisNode::run(const RedisPipeline& pipeline, RedisReplies* replies, bool asking) {
  auto lease = pool_.acquire(login_.timeout, name_);
  bool reused = bool(lease.get());
  for (int attempt = 0;; ++attempt) {
    if (!lease.get()) lease.set(connect());
    redisContext* c = lease.get().get();
    if (send(c, pipeline, asking, replies)) break;
    const bool closed_by_server =
        c->err == REDIS_ERR_EOF ||
        (c->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
    std::string why = c->errstr;
    lease.discard();
    if (!(reused && closed_by_server && attempt == 0))
      fail(Errc::store_unavailable, name_ + ": " + why);
    reused = false;
  }
  // Redis closes the connection after a protocol error (a value over
  // proto-max-bulk-len): the next call must not reuse it.
  for (const RedisReply& reply : *replies)
    if (reply->type == REDIS_REPLY_ERROR &&
        reply_text(*reply).find("invalid bulk length") != std::string_view::npos)
      lease.discard();
}

void RedisNode::ping() {
  RedisReplies replies;
  run({{"PING"}}, &replies);
  if (is_error(*replies[0]))
    fail(Errc::store_unavailable, name_ + " refused PING: " + std::string(reply_text(*replies[0])));
}

bool RedisNode::send(redisContext* c, const RedisPipeline& pipeline, bool asking,
                     RedisReplies* replies) {
  replies->clear();
  const char* argv[64];
  size_t lengths[64];
  std::vector<const char*> long_argv;
  std::vector<size_t> long_lengths;
  if (asking && redisAppendCommand(c, "ASKING") != REDIS_OK) return false;
  for (size_t i = 0; i < pipeline.size(); ++i) {
    const std::string_view* args = pipeline.begin(i);
    const size_t n = pipeline.length(i);
    const char** a = argv;
    size_t* l = lengths;
    if (n > 64) {  // MGET or a script over many keys
      long_argv.resize(n);
      long_lengths.resize(n);
      a = long_argv.data();
      l = long_lengths.data();
    }
    for (size_t k = 0; k < n; ++k) {
      a[k] = args[k].data();
      l[k] = args[k].size();
    }
    if (redisAppendCommandArgv(c, int(n), a, l) != REDIS_OK) return false;
  }
  const size_t expected = pipeline.size() + (asking ? 1 : 0);
  for (size_t i = 0; i < expected; ++i) {
    void* reply = nullptr;
    if (redisGetReply(c, &reply) != REDIS_OK) return false;
    if (asking && i == 0) {
      freeReplyObject(reply);
      continue;
    }
    replies->emplace_back(static_cast<redisReply*>(reply));
  }
  return true;
}

}  // namespace sessions::internal
