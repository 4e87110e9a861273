#include "redis_store.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <vector>

#include "error.h"
#include "builtin_stores.h"
#include "record.h"

namespace sessions::internal {
namespace {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;
using Command = std::initializer_list<std::string_view>;

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{time_t(ms.count() / 1000), suseconds_t(ms.count() % 1000 * 1000)};
}

std::string_view reply_text(const redisReply& r) { return std::string_view(r.str, r.len); }

int64_t ttl_ms(int64_t ttl) { return ttl > 0 ? ttl * 1000 : 1; }

std::string sha1_hex(std::string_view text, size_t digits) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  sha1(text, digest);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < SHA_DIGEST_LENGTH && out.size() < digits; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

// A Lua script, sent by digest (EVALSHA) and by text when the server lacks it.
struct Script {
  std::string text;
  std::string sha;
  explicit Script(std::string t) : text(std::move(t)), sha(sha1_hex(text, 40)) {}
};

// Shared by the scripts that write: indexes `member` in the principal's
// sorted set `set`, scored by its expiry; removes `gone` (a moved record's
// old key, or false) and the members expired by `now`; and keeps the set
// alive as long as its longest-lived record (PTTL is -1 on a new set), with
// a second to spare: Redis may time the PEXPIRE a millisecond before the
// SET's PX in one script. A key of another type there is someone else's:
// left alone, nothing indexed.
constexpr std::string_view kIndexFunction = R"lua(
local function index(set, gone, member, score, now, px)
  local t = redis.call('TYPE', set).ok
  if t ~= 'zset' and t ~= 'none' then return end
  if gone then redis.call('ZREM', set, gone) end
  redis.call('ZADD', set, score, member)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
  if redis.call('PTTL', set) < tonumber(px) then redis.call('PEXPIRE', set, tonumber(px) + 1000) end
end
)lua";

// save_if: KEYS = from, to[, the principal's set]; ARGV = the expected
// version (the first 16 hex digits of the record's SHA-1, content_version),
// the data, the PX expiry[, from and to without the prefix, the expiry in
// Unix seconds, now]. Returns 0 when `from` is gone, 1 when it changed, 2
// when written.
const Script& save_if_script() {
  static const Script script(std::string(kIndexFunction) + R"lua(
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if string.sub(redis.sha1hex(current), 1, 16) ~= ARGV[1] then return 1 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local moved = KEYS[1] ~= KEYS[2]
if moved then redis.call('DEL', KEYS[1]) end
if KEYS[3] then index(KEYS[3], moved and ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[3]) end
return 2
)lua");
  return script;
}

// save and move of a record with a principal: KEYS = from, to (the same for
// a save), the principal's set; ARGV = the data, the PX expiry, from and to
// without the prefix, the expiry in Unix seconds, now.
const Script& write_script() {
  static const Script script(std::string(kIndexFunction) + R"lua(
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
local moved = KEYS[1] ~= KEYS[2]
if moved then redis.call('DEL', KEYS[1]) end
index(KEYS[3], moved and ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[2])
return 1
)lua");
  return script;
}

// Listing's clean-up: KEYS = the principal's set, then records; ARGV = the
// principal, then the same records without the prefix. Removes each member
// whose record is gone or is not a string of this principal, checked here,
// atomically: one written again since the MGET stays.
const Script& prune_script() {
  static const Script script(std::string(R"lua(
local function principal_of(v)
  if string.byte(v, 1) ~= 3 or #v < 10 then return nil end
  local n = string.byte(v, 10)
  if #v < 10 + n then return nil end
  return string.sub(v, 11, 10 + n)
end
local removed = 0
for i = 2, #KEYS do
  local keep = false
  if redis.call('TYPE', KEYS[i]).ok == 'string' then
    keep = principal_of(redis.call('GET', KEYS[i])) == ARGV[1]
  end
  if not keep then removed = removed + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return removed
)lua"));
  return script;
}

bool is_error_containing(const redisReply& r, std::string_view text) {
  return r.type == REDIS_REPLY_ERROR && reply_text(r).find(text) != std::string_view::npos;
}

}  // namespace

void RedisStore::ContextCloser::operator()(redisContext* c) const { redisFree(c); }

// One pipeline of commands on a leased connection. The commands this store
// sends are idempotent, so a pipeline that failed on a reused connection
// because the server closed it since (a restart, an idle timeout) is sent
// once more on a new connection; any other failure is the caller's error.
class RedisStore::Call {
 public:
  explicit Call(RedisStore* store) : store_(store) {}

  // The replies, in order; throws store_unavailable on I/O failure and, when
  // `refuse_errors`, on error replies (value_too_large when Redis refuses the
  // size). WRONGTYPE is left to the caller: someone else's key.
  const std::vector<Reply>& run(std::initializer_list<Command> pipeline, bool refuse_errors = true) {
    return run_pipeline(pipeline, refuse_errors);
  }
  // One command of any length (MGET, EVALSHA with many keys).
  const redisReply& run_argv(const std::vector<std::string_view>& command,
                             bool refuse_errors = true) {
    const std::vector<std::vector<std::string_view>> pipeline{command};
    return *run_pipeline(pipeline, refuse_errors)[0];
  }

  // EVALSHA of `script` with `args` (numkeys, keys, arguments); a server
  // that has not seen it (restarted, SCRIPT FLUSH) gets its text, which it
  // then caches. Throws on an error reply, value_too_large when Redis
  // refuses the size; `what` names the operation in messages.
  const redisReply& eval(const Script& script, std::vector<std::string_view> args,
                         const char* what) {
    args.insert(args.begin(), {"EVALSHA", script.sha});
    const redisReply* r = &run_argv(args, false);
    if (r->type == REDIS_REPLY_ERROR && reply_text(*r).rfind("NOSCRIPT", 0) == 0) {
      args[0] = "EVAL";
      args[1] = script.text;
      r = &run_argv(args, false);
    }
    if (r->type == REDIS_REPLY_ERROR)
      fail(is_error_containing(*r, "invalid bulk length") ? Errc::value_too_large
                                                          : Errc::store_unavailable,
           store_->name_ + " refused " + what + ": " + std::string(reply_text(*r)));
    return *r;
  }

 private:
  template <typename Pipeline>
  const std::vector<Reply>& run_pipeline(const Pipeline& pipeline, bool refuse_errors) {
    auto lease = store_->pool_.acquire(store_->options_.timeout, store_->name_);
    bool reused = bool(lease.get());
    for (int attempt = 0;; ++attempt) {
      if (!lease.get()) lease.set(store_->connect());
      redisContext* c = lease.get().get();
      if (send(c, pipeline)) break;
      const bool closed_by_server =
          c->err == REDIS_ERR_EOF || (c->err == REDIS_ERR_IO && (errno == ECONNRESET || errno == EPIPE));
      std::string why = c->errstr;
      lease.discard();
      if (!(reused && closed_by_server && attempt == 0))
        fail(Errc::store_unavailable, store_->name_ + ": " + why);
      reused = false;
    }
    for (const Reply& reply : replies_) {
      if (reply->type != REDIS_REPLY_ERROR) continue;
      std::string_view text = reply_text(*reply);
      // Redis closes the connection after a protocol error.
      const bool too_large = text.find("invalid bulk length") != std::string_view::npos;
      if (too_large) lease.discard();
      if (!refuse_errors || text.rfind("WRONGTYPE", 0) == 0) continue;
      fail(too_large ? Errc::value_too_large : Errc::store_unavailable,
           store_->name_ + " refused the command: " + std::string(text));
    }
    return replies_;
  }

  template <typename Pipeline>
  bool send(redisContext* c, const Pipeline& pipeline) {
    replies_.clear();
    for (const auto& command : pipeline) {
      argv_.clear();
      lengths_.clear();
      for (std::string_view arg : command) {
        argv_.push_back(arg.data());
        lengths_.push_back(arg.size());
      }
      if (redisAppendCommandArgv(c, int(argv_.size()), argv_.data(), lengths_.data()) != REDIS_OK)
        return false;
    }
    for (size_t i = 0; i < pipeline.size(); ++i) {
      void* reply = nullptr;
      if (redisGetReply(c, &reply) != REDIS_OK) return false;
      replies_.emplace_back(static_cast<redisReply*>(reply));
    }
    return true;
  }

  RedisStore* store_;
  std::vector<const char*> argv_;
  std::vector<size_t> lengths_;
  std::vector<Reply> replies_;
};

std::unique_ptr<RedisStore> RedisStore::open(std::string_view scheme, std::string_view encoded_rest,
                                             OptionList* list) {
  Options o;
  std::optional<std::string> db_text;
  if (scheme == "redis+unix") {
    o.unix_socket = true;
    if (encoded_rest.substr(0, 3) != "///")
      fail(Errc::bad_uri, "redis+unix: URI must name a socket path: redis+unix:///path/redis.sock");
    o.host = std::string(encoded_rest.substr(2));
    if (o.host.find('%') != std::string::npos)
      fail(Errc::bad_uri, "redis+unix: socket paths cannot hold percent-escapes");
    if (auto user = take_option(list, "user")) o.user = *user;
    if (auto password = take_option(list, "password")) {
      o.password = *password;
      o.has_password = true;
    }
  } else {
    NetworkLocation loc = parse_network_location(scheme, encoded_rest, 6379);
    if (loc.hosts.size() != 1)
      fail(Errc::bad_uri, "redis: URI names one server (Sentinel and Cluster are not supported)");
    o.host = loc.hosts[0].host;
    o.port = loc.hosts[0].port;
    o.user = loc.user;
    o.password = loc.password;
    o.has_password = loc.has_password;
    if (!loc.path.empty()) db_text = loc.path;
    // "redis://:password@host" is the default user with a password.
    if (!o.has_password && !o.user.empty())
      fail(Errc::bad_uri, "redis: URI has a user without a password (use :password@ for "
                          "the default user)");
  }
  if (auto db = take_option(list, "db")) db_text = db;
  if (db_text) o.db = int(parse_int("db", *db_text, 0, 100000));
  if (auto prefix = take_option(list, "prefix")) o.prefix = *prefix;
  take_pool_size(list, &o.pool);
  take_milliseconds(list, "connect_timeout_ms", &o.connect_timeout);
  take_milliseconds(list, "timeout_ms", &o.timeout);
  if (o.prefix.size() > 200) fail(Errc::bad_option, "option prefix: at most 200 bytes");

  return std::make_unique<RedisStore>(std::move(o));
}

void RedisStore::start() {
  Call call(this);
  call.run({{"PING"}});  // connects, authenticates, selects
  // The largest value Redis takes. CONFIG may be refused by an ACL or renamed:
  // then saves learn it from Redis' error.
  const redisReply* r = call.run({{"CONFIG", "GET", "proto-max-bulk-len"}}, false)[0].get();
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[1]->type == REDIS_REPLY_STRING) {
    std::string_view text = reply_text(*r->element[1]);
    size_t limit = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    // Room for the key and the command around the value.
    if (ec == std::errc() && limit > 4096) max_value_bytes_ = limit - 1024;
  }
}

RedisStore::RedisStore(Options options)
    : options_(std::move(options)), name_(describe()), pool_(options_.pool) {}

RedisStore::~RedisStore() = default;

std::string RedisStore::describe() const {
  if (options_.unix_socket) return "redis " + options_.host;
  return "redis " + options_.host + ":" + std::to_string(options_.port);
}

RedisStore::Context RedisStore::connect() const {
  const timeval connect_timeout = to_timeval(options_.connect_timeout);
  Context c(options_.unix_socket
                ? redisConnectUnixWithTimeout(options_.host.c_str(), connect_timeout)
                : redisConnectWithTimeout(options_.host.c_str(), options_.port, connect_timeout));
  if (!c) fail(Errc::no_memory, name_ + ": out of memory");
  if (c->err) fail(Errc::store_unavailable, name_ + ": cannot connect: " + c->errstr);
  if (redisSetTimeout(c.get(), to_timeval(options_.timeout)) != REDIS_OK ||
      (!options_.unix_socket && redisEnableKeepAlive(c.get()) != REDIS_OK))
    fail(Errc::store_unavailable, name_ + ": " + c->errstr);

  auto setup = [&](std::vector<std::string_view> args, const char* what) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (auto a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    Reply reply(static_cast<redisReply*>(
        redisCommandArgv(c.get(), int(argv.size()), argv.data(), lengths.data())));
    if (!reply) fail(Errc::store_unavailable, name_ + ": " + what + ": " + c->errstr);
    if (reply->type == REDIS_REPLY_ERROR)
      fail(Errc::store_unavailable, name_ + " refused " + what + ": " + std::string(reply_text(*reply)));
  };
  if (options_.has_password) {
    if (options_.user.empty()) setup({"AUTH", options_.password}, "AUTH");
    else setup({"AUTH", options_.user, options_.password}, "AUTH");
  }
  if (options_.db != 0) setup({"SELECT", std::to_string(options_.db)}, "SELECT");
  return c;
}

bool RedisStore::load(std::string_view key, int64_t, std::string* data) {
  const std::string full_key = options_.prefix + std::string(key);
  Call call(this);
  const redisReply& r = *call.run({{"GET", full_key}})[0];
  if (r.type == REDIS_REPLY_NIL) return false;
  data->clear();  // not a string (WRONGTYPE): someone else's key, malformed for us
  if (r.type == REDIS_REPLY_STRING) data->assign(r.str, r.len);
  return true;
}

std::string RedisStore::index_key(std::string_view principal) const {
  return options_.prefix + "principal:" + std::string(principal);
}

void RedisStore::save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) {
  const std::string full_key = options_.prefix + std::string(key);
  const std::string px = std::to_string(ttl_ms(ttl));
  Call call(this);
  const std::string_view principal = record_principal(data);
  if (principal.empty()) {
    call.run({{"SET", full_key, data, "PX", px}});
    return;
  }
  const std::string set = index_key(principal);
  const std::string expires = std::to_string(now + ttl), at = std::to_string(now);
  call.eval(write_script(), {"3", full_key, full_key, set, data, px, key, key, expires, at},
            "the save");
}

void RedisStore::erase(std::string_view key) {
  const std::string full_key = options_.prefix + std::string(key);
  Call call(this);
  call.run({{"DEL", full_key}});
}

void RedisStore::move(std::string_view from, std::string_view to, std::string_view data,
                      int64_t now, int64_t ttl) {
  const std::string from_key = options_.prefix + std::string(from);
  const std::string to_key = options_.prefix + std::string(to);
  const std::string px = std::to_string(ttl_ms(ttl));
  Call call(this);
  const std::string_view principal = record_principal(data);
  if (!principal.empty()) {  // a script is atomic too
    const std::string set = index_key(principal);
    const std::string expires = std::to_string(now + ttl), at = std::to_string(now);
    call.eval(write_script(), {"3", from_key, to_key, set, data, px, from, to, expires, at},
              "the move");
    return;
  }
  // One transaction: every reader sees the record under exactly one ID.
  const auto& replies =
      call.run({{"MULTI"}, {"SET", to_key, data, "PX", px}, {"DEL", from_key}, {"EXEC"}});
  if (replies.back()->type != REDIS_REPLY_ARRAY)
    fail(Errc::store_unavailable, name_ + ": the transaction moving a session was aborted");
}

bool RedisStore::load_versioned(std::string_view key, int64_t now, std::string* data,
                                Version* version) {
  if (!load(key, now, data)) return false;
  *version = content_version(*data);
  return true;
}

Commit RedisStore::save_if(std::string_view from, std::string_view to, std::string_view data,
                           int64_t now, int64_t ttl, Version expected) {
  const std::string from_key = options_.prefix + std::string(from);
  const std::string to_key = options_.prefix + std::string(to);
  const std::string px = std::to_string(ttl_ms(ttl));
  char version[17];
  std::snprintf(version, sizeof version, "%016llx", static_cast<unsigned long long>(expected));
  Call call(this);
  const std::string_view principal = record_principal(data);
  std::string set, expires, at;
  std::vector<std::string_view> args = {"2", from_key, to_key, version, data, px};
  if (!principal.empty()) {
    set = index_key(principal);
    expires = std::to_string(now + ttl);
    at = std::to_string(now);
    args[0] = "3";
    args.insert(args.begin() + 3, set);
    args.insert(args.end(), {from, to, expires, at});
  }
  const redisReply& r = call.eval(save_if_script(), std::move(args), "the conditional save");
  if (r.type != REDIS_REPLY_INTEGER || r.integer < 0 || r.integer > 2)
    fail(Errc::store_unavailable, name_ + ": unexpected reply to the conditional save");
  return r.integer == 2 ? Commit::written : r.integer == 1 ? Commit::changed : Commit::gone;
}

void RedisStore::principal_records(std::string_view principal, int64_t now, KeyedRecords* out) {
  const std::string set = index_key(principal);
  const std::string at = std::to_string(now), after = "(" + at;
  Call call(this);
  // The expired go first; then the members that are left.
  const auto& replies = call.run(
      {{"ZREMRANGEBYSCORE", set, "-inf", at}, {"ZRANGEBYSCORE", set, after, "+inf"}}, false);
  const redisReply& members = *replies[1];
  if (members.type != REDIS_REPLY_ARRAY)
    fail(Errc::store_unavailable, name_ + ": cannot read the sessions of a principal: " +
                                      (members.type == REDIS_REPLY_ERROR
                                           ? std::string(reply_text(members))
                                           : std::string("unexpected reply")));
  if (members.elements == 0) return;
  std::vector<std::string> keys, full_keys;
  for (size_t i = 0; i < members.elements; ++i) {
    const redisReply& m = *members.element[i];
    if (m.type != REDIS_REPLY_STRING) continue;
    keys.emplace_back(m.str, m.len);
    full_keys.push_back(options_.prefix + keys.back());
  }
  std::vector<std::string_view> mget = {"MGET"};
  mget.insert(mget.end(), full_keys.begin(), full_keys.end());
  const redisReply& values = call.run_argv(mget);
  if (values.type != REDIS_REPLY_ARRAY || values.elements != keys.size())
    fail(Errc::store_unavailable, name_ + ": unexpected reply to MGET");
  // Gone (nil: deleted, expired, moved, or not a string) or another
  // principal's since: removed from the set, after a check in the script.
  std::vector<std::string_view> prune_keys, prune_members;
  for (size_t i = 0; i < keys.size(); ++i) {
    const redisReply& v = *values.element[i];
    if (v.type == REDIS_REPLY_STRING &&
        record_principal(std::string_view(v.str, v.len)) == principal) {
      out->emplace_back(keys[i], std::string(v.str, v.len));
    } else {
      prune_keys.push_back(full_keys[i]);
      prune_members.push_back(keys[i]);
    }
  }
  if (prune_keys.empty()) return;
  const std::string count = std::to_string(prune_keys.size() + 1);
  std::vector<std::string_view> args = {count, set};
  args.insert(args.end(), prune_keys.begin(), prune_keys.end());
  args.push_back(principal);
  args.insert(args.end(), prune_members.begin(), prune_members.end());
  call.eval(prune_script(), std::move(args), "the clean-up of a principal's index");
}

Scheme redis_scheme() {
  return {{"redis", "redis+unix"},
          {"prefix", "pool", "connect_timeout_ms", "timeout_ms", "db", "user", "password"},
          nullptr,
          [](const OpenRequest& r) {
            return RedisStore::open(r.uri.scheme, r.uri.rest_encoded, r.options);
          }};
}

}  // namespace sessions::internal
