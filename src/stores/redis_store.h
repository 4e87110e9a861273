// redis://[user:password@]host:port/db?prefix=&pool=&connect_timeout_ms=&timeout_ms=
// redis+unix:///path/redis.sock?db=&user=&password=&...
//
// Records are Redis strings under prefix + key, written with SET ... PX so
// that Redis expires them with the session; regenerate_id moves a record with
// MULTI/SET/DEL/EXEC in one round trip. concurrency=merge and cas write
// through a Lua script that compares the record's SHA-1 with the one it had
// when loaded and writes only if it is unchanged: atomic, one round trip,
// and nothing stored beside the record (any writer that changes the bytes
// changes the version). hiredis contexts are not thread-safe,
// so each call leases one from a pool; a broken connection is dropped and the
// next call opens a new one, so a restarted server is picked up without
// reopening the store.
//
// Principals: each principal has a sorted set under
// prefix + "principal:" + principal (binary-safe; never a record's key, which
// is base64url and holds no ':'), whose members are the keys of its records
// without the prefix, scored by their expiry (now + ttl, Unix seconds on the
// library's clock). A write of a record with a principal adds it in the same
// round trip, by script: SET, ZADD, ZREMRANGEBYSCORE -inf now (the expired go),
// ZREM of a moved record's old key, and a PEXPIRE that keeps the set alive as
// long as its longest-lived record (so an idle principal's set expires too).
// Writes of records without one send the same commands as before. Listing
// drops expired members, reads the records with MGET, and removes members
// whose record is gone or now belongs to another principal (a script that
// checks again, atomically). For Redis Cluster (not supported yet) the set
// and its records will need one hash tag, e.g. {principal} in both keys.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend.h"
#include "options.h"
#include "pool.h"

struct redisContext;

namespace sessions::internal {

class RedisStore : public Backend {
 public:
  struct Options {
    bool unix_socket = false;
    std::string host = "127.0.0.1";  // or the socket path
    int port = 6379;
    std::string user, password;  // user empty: AUTH password (the default user)
    bool has_password = false;
    int db = 0;
    std::string prefix = "session:";
    size_t pool = 16;
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds timeout{1000};
  };

  // scheme is "redis" or "redis+unix"; consumes its options from *options.
  static std::unique_ptr<RedisStore> open(std::string_view scheme, std::string_view encoded_rest,
                                          OptionList* options);
  explicit RedisStore(Options options);
  ~RedisStore() override;

  // Connects once, so a server that is down or refuses the credentials is an
  // error at open, not at the first request.
  void start() override;

  bool load(std::string_view key, int64_t now, std::string* data) override;
  void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) override;
  void erase(std::string_view key) override;
  void move(std::string_view from, std::string_view to, std::string_view data, int64_t now,
            int64_t ttl) override;
  size_t max_record_bytes() const override { return max_value_bytes_; }
  bool load_versioned(std::string_view key, int64_t now, std::string* data,
                      Version* version) override;
  Commit save_if(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                 int64_t ttl, Version expected) override;
  bool atomic_save_if() const override { return true; }

  bool indexes_principals() const override { return true; }
  void principal_records(std::string_view principal, int64_t now, KeyedRecords* out) override;

 private:
  struct ContextCloser {
    void operator()(redisContext* c) const;
  };
  using Context = std::unique_ptr<redisContext, ContextCloser>;
  class Call;

  Context connect() const;
  std::string describe() const;  // "redis 127.0.0.1:6379" for messages
  std::string index_key(std::string_view principal) const;  // the principal's sorted set

  Options options_;
  std::string name_;
  size_t max_value_bytes_ = size_t(512) << 20;  // Redis' default proto-max-bulk-len
  Pool<Context> pool_;
};

}  // namespace sessions::internal
