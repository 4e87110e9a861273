#include "redis_node.h"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <charconv>

#include "error.h"

namespace sessions::internal {
timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{time_t(ms.count() / 1000), suseconds_t(ms.count() % 1000 * 1000)};
}

RedisReply run_command(redisContext* c, std::initializer_list<std::string_view> args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (auto a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return RedisReply(static_cast<redisReply*>(
      redisCommandArgv(c, int(argv.size()), argv.data(), lengths.data())));
}

std::string log_in(redisContext* c, const RedisLogin& login) {
  if (!login.has_password) return "";
  RedisReply reply = login.user.empty() ? run_command(c, {"AUTH", login.password})
                                        : run_command(c, {"AUTH", login.user, login.password});
  if (!reply) return std::string("AUTH: ") + c->errstr;
  if (reply->type == REDIS_REPLY_ERROR) return "refused AUTH: " + std::string(reply_text(*reply));
  return "";
}

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

  const std::string refused = log_in(c.get(), login_);
  if (!refused.empty()) fail(Errc::store_unavailable, name_ + " " + refused);
  if (login_.db != 0) {
    RedisReply reply = run_command(c.get(), {"SELECT", std::to_string(login_.db)});
    if (!reply) fail(Errc::store_unavailable, name_ + ": SELECT: " + c->errstr);
    if (reply->type == REDIS_REPLY_ERROR)
      fail(Errc::store_unavailable, name_ + " refused SELECT: " + std::string(reply_text(*reply)));
  }
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

namespace {

void append_number(std::string* out, size_t n) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  out->append(digits, end);
}

// The pipeline in RESP, as one buffer: hiredis' own formatting (sds
// strings, a printf-style pass per argument) cost a fifth of a Redis
// request cycle's instructions on the client.
void format(const RedisPipeline& pipeline, bool asking, std::string* out) {
  out->clear();
  if (asking) out->append("*1\r\n$6\r\nASKING\r\n");
  for (size_t i = 0; i < pipeline.size(); ++i) {
    const std::string_view* args = pipeline.begin(i);
    const size_t n = pipeline.length(i);
    out->push_back('*');
    append_number(out, n);
    out->append("\r\n");
    for (size_t k = 0; k < n; ++k) {
      out->push_back('$');
      append_number(out, args[k].size());
      out->append("\r\n");
      out->append(args[k]);
      out->append("\r\n");
    }
  }
}

}  // namespace

bool RedisNode::send(redisContext* c, const RedisPipeline& pipeline, bool asking,
                     RedisReplies* replies) {
  replies->clear();
  thread_local std::string buffer;
  format(pipeline, asking, &buffer);
  if (redisAppendFormattedCommand(c, buffer.data(), buffer.size()) != REDIS_OK) return false;
  if (buffer.capacity() > (size_t(1) << 20)) std::string().swap(buffer);  // after a large record
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
