#include "redis_store.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <charconv>
#include <cstdio>
#include <vector>

#include "builtin_stores.h"
#include "error.h"
#include "record.h"
#include "redis_cluster.h"
#include "redis_sentinel.h"

namespace sessions::internal {
namespace {

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

// The compare of save_if: the record under KEYS[1] as loaded, its version
// ARGV[1] (the first 16 hex digits of its SHA-1, content_version)? Returns
// 0 when it is gone and 1 when it changed.
constexpr std::string_view kCompareFragment = R"lua(
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if string.sub(redis.sha1hex(current), 1, 16) ~= ARGV[1] then return 1 end
)lua";

// save_if: KEYS = from, to[, the principal's set]; ARGV = the expected
// version, the data, the PX expiry[, from and to without the prefix, the
// expiry in Unix seconds, now]. Returns 0 when `from` is gone, 1 when it
// changed, 2 when written.
const Script& save_if_script() {
  static const Script script(std::string(kIndexFunction) + std::string(kCompareFragment) + R"lua(
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local moved = KEYS[1] ~= KEYS[2]
if moved then redis.call('DEL', KEYS[1]) end
if KEYS[3] then index(KEYS[3], moved and ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[3]) end
return 2
)lua");
  return script;
}

// A Cluster's conditional move, on the old key's node once the new key is
// written: KEYS = from; ARGV = the expected version. Deletes `from` if
// unchanged (2); 0 when gone, 1 when changed.
const Script& take_if_script() {
  static const Script script(std::string(kCompareFragment) + "redis.call('DEL', KEYS[1])\nreturn 2\n");
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

// A Cluster's index entry, written after its record: KEYS = the set; ARGV =
// the member, its expiry in Unix seconds, now, the PX expiry.
const Script& index_script() {
  static const Script script(std::string(kIndexFunction) +
                             "index(KEYS[1], false, ARGV[1], ARGV[2], ARGV[3], ARGV[4])\n");
  return script;
}

// Listing's clean-up: KEYS = the principal's set; ARGV = member, score,
// member, score... of the members whose record was gone or another
// principal's when read. Each goes only if its score is still the one read:
// a record written again since was re-scored, and stays.
const Script& prune_script() {
  static const Script script(std::string(R"lua(
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
)lua"));
  return script;
}

}  // namespace

// One store operation: its commands, sent through the router, and their
// replies (kept until the next command of the same Call).
class RedisStore::Call {
 public:
  explicit Call(RedisStore* store) : store_(store) {}

  // Runs `pipeline` on the node of `key`; a write is followed by WAIT when
  // min_replicas is set, and refused unless enough replicas have it. Throws
  // store_unavailable when no node answers and, when `refuse_errors`, on
  // error replies (value_too_large when Redis refuses the size). WRONGTYPE
  // is left to the caller: someone else's key.
  const RedisReplies& run(std::string_view key, RedisPipeline pipeline, bool write,
                          bool refuse_errors = true) {
    const bool wait = write && store_->options_.min_replicas > 0;
    if (wait) pipeline.add({"WAIT", store_->wait_replicas_, store_->wait_ms_});
    store_->router_->run(key, pipeline, &replies_);
    bool any_error = false;
    for (size_t i = 0; i < pipeline.size() - (wait ? 1 : 0); ++i) {
      const redisReply& reply = *replies_[i];
      if (!is_error(reply)) continue;
      any_error = true;
      if (!refuse_errors || is_error_code(reply, "WRONGTYPE")) continue;
      fail(too_large(reply) ? Errc::value_too_large : Errc::store_unavailable,
           store_->router_->name() + " refused the command: " + std::string(reply_text(reply)));
    }
    if (!wait) return replies_;
    const redisReply& acks = *replies_.back();
    if (!any_error && (acks.type != REDIS_REPLY_INTEGER || acks.integer < store_->options_.min_replicas))
      fail(Errc::store_unavailable,
           store_->router_->name() + ": the write reached " +
               (acks.type == REDIS_REPLY_INTEGER ? std::to_string(acks.integer) : "no") + " of " +
               store_->wait_replicas_ + " replicas within replica_timeout_ms (not acknowledged)");
    replies_.pop_back();
    return replies_;
  }

  // EVALSHA of `script` with `args` (numkeys, keys, arguments) on the node
  // of `key`; a server that has not seen it (restarted, SCRIPT FLUSH, a new
  // node) gets its text, which it then caches. Throws on an error reply,
  // value_too_large when Redis refuses the size; `what` names the operation.
  const redisReply& eval(std::string_view key, const Script& script,
                         std::vector<std::string_view> args, const char* what, bool write = true) {
    args.insert(args.begin(), {"EVALSHA", script.sha});
    RedisPipeline pipeline;
    pipeline.add(args.begin(), args.end());
    const redisReply* r = run(key, pipeline, write, false)[0].get();
    if (is_error_code(*r, "NOSCRIPT")) {
      args[0] = "EVAL";
      args[1] = script.text;
      RedisPipeline with_text;
      with_text.add(args.begin(), args.end());
      r = run(key, with_text, write, false)[0].get();
    }
    if (is_error(*r))
      fail(too_large(*r) ? Errc::value_too_large : Errc::store_unavailable,
           store_->router_->name() + " refused " + what + ": " + std::string(reply_text(*r)));
    return *r;
  }

 private:
  static bool too_large(const redisReply& r) {
    return reply_text(r).find("invalid bulk length") != std::string_view::npos;
  }

  RedisStore* store_;
  RedisReplies replies_;
};

namespace {

// The options every deployment takes, and the URI's credentials.
RedisLogin take_login(OptionList* list, const NetworkLocation* loc) {
  RedisLogin login;
  if (loc) {
    login.user = loc->user;
    login.password = loc->password;
    login.has_password = loc->has_password;
    // "redis://:password@host" is the default user with a password.
    if (!login.has_password && !login.user.empty())
      fail(Errc::bad_uri, "redis: URI has a user without a password (use :password@ for "
                          "the default user)");
  }
  take_pool_size(list, &login.pool);
  take_milliseconds(list, "connect_timeout_ms", &login.connect_timeout);
  take_milliseconds(list, "timeout_ms", &login.timeout);
  return login;
}

int parse_db(std::string_view text) { return int(parse_int("db", text, 0, 100000)); }

}  // namespace

std::unique_ptr<RedisStore> RedisStore::open(std::string_view scheme, std::string_view encoded_rest,
                                             OptionList* list) {
  Options o;
  if (auto prefix = take_option(list, "prefix")) o.prefix = *prefix;
  if (o.prefix.size() > 200) fail(Errc::bad_option, "option prefix: at most 200 bytes");
  if (auto n = take_option(list, "min_replicas")) o.min_replicas = int(parse_int("min_replicas", *n, 0, 100));
  take_milliseconds(list, "replica_timeout_ms", &o.replica_timeout);
  const auto sentinel_user = take_option(list, "sentinel_user");
  const auto sentinel_password = take_option(list, "sentinel_password");
  if ((sentinel_user || sentinel_password) && scheme != "redis+sentinel")
    fail(Errc::bad_option, "options sentinel_user and sentinel_password are for redis+sentinel: URIs");

  std::unique_ptr<RedisRouter> router;
  RedisLogin login;
  if (scheme == "redis+unix") {
    if (encoded_rest.substr(0, 3) != "///")
      fail(Errc::bad_uri, "redis+unix: URI must name a socket path: redis+unix:///path/redis.sock");
    std::string path(encoded_rest.substr(2));
    if (path.find('%') != std::string::npos)
      fail(Errc::bad_uri, "redis+unix: socket paths cannot hold percent-escapes");
    login = take_login(list, nullptr);
    if (auto user = take_option(list, "user")) login.user = *user;
    if (auto password = take_option(list, "password")) {
      login.password = *password;
      login.has_password = true;
    }
    if (auto db = take_option(list, "db")) login.db = parse_db(*db);
    router = one_server_router(std::move(path), 0, login);
  } else if (scheme == "redis") {
    NetworkLocation loc = parse_network_location(scheme, encoded_rest, 6379);
    if (loc.hosts.size() != 1)
      fail(Errc::bad_uri, "redis: URI names one server (for several, use redis+sentinel: or "
                          "redis+cluster:)");
    login = take_login(list, &loc);
    if (!loc.path.empty()) login.db = parse_db(loc.path);
    if (auto db = take_option(list, "db")) login.db = parse_db(*db);
    router = one_server_router(loc.hosts[0].host, loc.hosts[0].port, login);
  } else if (scheme == "redis+sentinel") {
    NetworkLocation loc = parse_network_location(scheme, encoded_rest, 26379);
    const size_t slash = loc.path.find('/');
    std::string master_name = loc.path.substr(0, slash);
    if (master_name.empty())
      fail(Errc::bad_uri, "redis+sentinel: URI must name the master: "
                          "redis+sentinel://host:26379,.../MASTERNAME[/db]");
    login = take_login(list, &loc);
    if (slash != std::string::npos) login.db = parse_db(loc.path.substr(slash + 1));
    if (auto db = take_option(list, "db")) login.db = parse_db(*db);
    RedisLogin sentinel_login = login;
    sentinel_login.user = sentinel_user.value_or("");
    sentinel_login.password = sentinel_password.value_or("");
    sentinel_login.has_password = bool(sentinel_password);
    if (sentinel_user && !sentinel_password)
      fail(Errc::bad_option, "option sentinel_user needs sentinel_password");
    router = std::make_unique<RedisSentinelRouter>(std::move(loc.hosts), std::move(master_name),
                                                   sentinel_login, login);
  } else {  // redis+cluster
    NetworkLocation loc = parse_network_location(scheme, encoded_rest, 6379);
    if (!loc.path.empty() || take_option(list, "db"))
      fail(Errc::bad_uri, "redis+cluster: Redis Cluster has only database 0: no /db or db=");
    login = take_login(list, &loc);
    router = std::make_unique<RedisClusterRouter>(std::move(loc.hosts), login);
  }
  if (o.min_replicas > 0 && o.replica_timeout >= login.timeout)
    fail(Errc::bad_option, "option replica_timeout_ms: must be less than timeout_ms (" +
                               std::to_string(login.timeout.count()) + " ms)");
  return std::make_unique<RedisStore>(std::move(o), std::move(router));
}

RedisStore::RedisStore(Options options, std::unique_ptr<RedisRouter> router)
    : options_(std::move(options)),
      router_(std::move(router)),
      wait_replicas_(std::to_string(options_.min_replicas)),
      wait_ms_(std::to_string(options_.replica_timeout.count())) {}

RedisStore::~RedisStore() = default;

void RedisStore::start() {
  router_->start();  // connects, authenticates, selects
  // The largest value Redis takes. CONFIG may be refused by an ACL or renamed:
  // then saves learn it from Redis' error.
  Call call(this);
  const redisReply* r = call.run("", {{"CONFIG", "GET", "proto-max-bulk-len"}}, false, false)[0].get();
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[1]->type == REDIS_REPLY_STRING) {
    std::string_view text = reply_text(*r->element[1]);
    size_t limit = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    // Room for the key and the command around the value.
    if (ec == std::errc() && limit > 4096) max_value_bytes_ = limit - 1024;
  }
}

bool RedisStore::load(std::string_view key, int64_t, std::string* data) {
  const std::string full = full_key(key);
  Call call(this);
  const redisReply& r = *call.run(full, {{"GET", full}}, false)[0];
  if (r.type == REDIS_REPLY_NIL) return false;
  data->clear();  // not a string (WRONGTYPE): someone else's key, malformed for us
  if (r.type == REDIS_REPLY_STRING) data->assign(r.str, r.len);
  return true;
}

std::string RedisStore::index_key(std::string_view principal) const {
  return options_.prefix + "principal:" + std::string(principal);
}

void RedisStore::index_after_write(Call& call, std::string_view principal, std::string_view member,
                                   int64_t now, int64_t ttl) {
  const std::string set = index_key(principal);
  const std::string expires = std::to_string(now + ttl), at = std::to_string(now);
  const std::string px = std::to_string(ttl_ms(ttl));
  call.eval(set, index_script(), {"1", set, member, expires, at, px}, "indexing the session");
}

void RedisStore::save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) {
  const std::string full = full_key(key);
  const std::string px = std::to_string(ttl_ms(ttl));
  Call call(this);
  const std::string_view principal = record_principal(data);
  if (principal.empty() || !router_->one_node()) {
    call.run(full, {{"SET", full, data, "PX", px}}, true);
    if (!principal.empty()) index_after_write(call, principal, key, now, ttl);
    return;
  }
  const std::string set = index_key(principal);
  const std::string expires = std::to_string(now + ttl), at = std::to_string(now);
  call.eval(full, write_script(), {"3", full, full, set, data, px, key, key, expires, at},
            "the save");
}

void RedisStore::erase(std::string_view key) {
  const std::string full = full_key(key);
  Call call(this);
  call.run(full, {{"DEL", full}}, true);
}

void RedisStore::move(std::string_view from, std::string_view to, std::string_view data,
                      int64_t now, int64_t ttl) {
  const std::string from_key = full_key(from), to_key = full_key(to);
  const std::string px = std::to_string(ttl_ms(ttl));
  Call call(this);
  const std::string_view principal = record_principal(data);
  if (!router_->one_node()) {  // two slots: the new record first, never neither
    call.run(to_key, {{"SET", to_key, data, "PX", px}}, true);
    if (!principal.empty()) index_after_write(call, principal, to, now, ttl);
    call.run(from_key, {{"DEL", from_key}}, true);
    if (!principal.empty()) drop_from_index(call, principal, from);
    return;
  }
  if (!principal.empty()) {  // a script is atomic too
    const std::string set = index_key(principal);
    const std::string expires = std::to_string(now + ttl), at = std::to_string(now);
    call.eval(from_key, write_script(), {"3", from_key, to_key, set, data, px, from, to, expires, at},
              "the move");
    return;
  }
  // One transaction: every reader sees the record under exactly one ID.
  const auto& replies = call.run(
      from_key, {{"MULTI"}, {"SET", to_key, data, "PX", px}, {"DEL", from_key}, {"EXEC"}}, true);
  if (replies.back()->type != REDIS_REPLY_ARRAY)
    fail(Errc::store_unavailable,
         router_->name() + ": the transaction moving a session was aborted");
}

// A moved record's old member, after the move: an entry left behind (the
// set's node failed just now) is stale, which listing prunes, so this does
// not fail the move.
void RedisStore::drop_from_index(Call& call, std::string_view principal, std::string_view member) {
  const std::string set = index_key(principal);
  try {
    call.run(set, {{"ZREM", set, member}}, false);
  } catch (const Error& e) {
    if (e.code() != Errc::store_unavailable) throw;
  }
}

bool RedisStore::load_versioned(std::string_view key, int64_t now, std::string* data,
                                Version* version) {
  if (!load(key, now, data)) return false;
  *version = content_version(*data);
  return true;
}

Commit RedisStore::save_if(std::string_view from, std::string_view to, std::string_view data,
                           int64_t now, int64_t ttl, Version expected) {
  const std::string from_key = full_key(from), to_key = full_key(to);
  const std::string px = std::to_string(ttl_ms(ttl));
  char version[17];
  std::snprintf(version, sizeof version, "%016llx", static_cast<unsigned long long>(expected));
  Call call(this);
  const std::string_view principal = record_principal(data);
  const bool one_node = router_->one_node();
  auto commit_of = [&](const redisReply& r) {
    if (r.type != REDIS_REPLY_INTEGER || r.integer < 0 || r.integer > 2)
      fail(Errc::store_unavailable, router_->name() + ": unexpected reply to the conditional save");
    return r.integer == 2 ? Commit::written : r.integer == 1 ? Commit::changed : Commit::gone;
  };
  if (!one_node && from != to) {
    // The new key is one no other request knows: written first, taken back
    // when the old record is not as loaded.
    call.run(to_key, {{"SET", to_key, data, "PX", px}}, true);
    const Commit commit =
        commit_of(call.eval(from_key, take_if_script(), {"1", from_key, version}, "the conditional move"));
    if (commit != Commit::written) {
      call.run(to_key, {{"DEL", to_key}}, true);
      return commit;
    }
    if (!principal.empty()) {
      index_after_write(call, principal, to, now, ttl);
      drop_from_index(call, principal, from);
    }
    return commit;
  }
  std::string set, expires, at;
  std::vector<std::string_view> args = {"2", from_key, to_key, version, data, px};
  if (!principal.empty() && one_node) {
    set = index_key(principal);
    expires = std::to_string(now + ttl);
    at = std::to_string(now);
    args[0] = "3";
    args.insert(args.begin() + 3, set);
    args.insert(args.end(), {from, to, expires, at});
  }
  const Commit commit =
      commit_of(call.eval(from_key, save_if_script(), std::move(args), "the conditional save"));
  if (commit == Commit::written && !principal.empty() && !one_node)
    index_after_write(call, principal, to, now, ttl);
  return commit;
}

void RedisStore::principal_records(std::string_view principal, int64_t now, KeyedRecords* out) {
  const std::string set = index_key(principal);
  const std::string at = std::to_string(now), after = "(" + at;
  Call call(this);
  // The expired go first; then the members that are left, with their scores.
  const auto& replies = call.run(
      set,
      {{"ZREMRANGEBYSCORE", set, "-inf", at}, {"ZRANGEBYSCORE", set, after, "+inf", "WITHSCORES"}},
      false, false);
  const redisReply& members = *replies[1];
  if (members.type != REDIS_REPLY_ARRAY || members.elements % 2)
    fail(Errc::store_unavailable, router_->name() + ": cannot read the sessions of a principal: " +
                                      (is_error(members) ? std::string(reply_text(members))
                                                         : std::string("unexpected reply")));
  std::vector<std::string> keys, scores, full_keys;
  for (size_t i = 0; i + 1 < members.elements; i += 2) {
    const redisReply& m = *members.element[i];
    const redisReply& score = *members.element[i + 1];
    if (m.type != REDIS_REPLY_STRING || score.type != REDIS_REPLY_STRING) continue;
    keys.emplace_back(reply_text(m));
    scores.emplace_back(reply_text(score));
    full_keys.push_back(full_key(keys.back()));
  }
  if (keys.empty()) return;
  // The records: one MGET on one node; in a Cluster each from its own slot.
  std::vector<std::optional<std::string>> values;
  if (router_->one_node()) {
    RedisPipeline mget;
    std::vector<std::string_view> args = {"MGET"};
    args.insert(args.end(), full_keys.begin(), full_keys.end());
    mget.add(args.begin(), args.end());
    const redisReply& r = *call.run(full_keys[0], std::move(mget), false)[0];
    if (r.type != REDIS_REPLY_ARRAY || r.elements != keys.size())
      fail(Errc::store_unavailable, router_->name() + ": unexpected reply to MGET");
    for (size_t i = 0; i < r.elements; ++i)
      values.push_back(r.element[i]->type == REDIS_REPLY_STRING
                           ? std::optional<std::string>(std::string(reply_text(*r.element[i])))
                           : std::nullopt);
  } else {
    for (const std::string& key : full_keys) {
      const redisReply& r = *call.run(key, {{"GET", key}}, false, false)[0];
      values.push_back(r.type == REDIS_REPLY_STRING
                           ? std::optional<std::string>(std::string(reply_text(r)))
                           : std::nullopt);
    }
  }
  // Gone (deleted, expired, moved, not a string) or another principal's
  // since: removed from the set unless written again meanwhile.
  std::vector<std::string_view> prune = {"1", set};
  for (size_t i = 0; i < keys.size(); ++i) {
    if (values[i] && record_principal(*values[i]) == principal) {
      out->emplace_back(std::move(keys[i]), std::move(*values[i]));
    } else {
      prune.push_back(keys[i]);
      prune.push_back(scores[i]);
    }
  }
  if (prune.size() > 2) call.eval(set, prune_script(), std::move(prune), "the clean-up of a principal's index");
}

Scheme redis_scheme() {
  return {{"redis", "redis+unix", "redis+sentinel", "redis+cluster"},
          {"prefix", "pool", "connect_timeout_ms", "timeout_ms", "db", "user", "password",
           "min_replicas", "replica_timeout_ms", "sentinel_user", "sentinel_password"},
          nullptr,
          [](const OpenRequest& r) {
            return RedisStore::open(r.uri.scheme, r.uri.rest_encoded, r.options);
          }};
}

}  // namespace sessions::internal
