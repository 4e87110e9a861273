// redis://[user:password@]host:port/db?prefix=&pool=&connect_timeout_ms=&timeout_ms=
// redis+unix:///path/redis.sock?db=&user=&password=&...
// redis+sentinel://[user:password@]s1:26379,s2:26379/MASTERNAME[/db]?sentinel_user=&sentinel_password=&...
// redis+cluster://[user:password@]h1:7000,h2:7001,...?...
//   min_replicas=N         each write waits (WAIT) until N replicas have it,
//   replica_timeout_ms=    up to this long (default 500, under timeout_ms);
//                          fewer is store_unavailable: not acknowledged
//
// Records are Redis strings under prefix + key, written with SET ... PX so
// that Redis expires them with the session. Which server a command goes to
// is the router's (redis_router.h): one server, the Sentinel's master, or
// the master of the key's slot in a Cluster.
//
// On one server (and on a Sentinel's master) regenerate_id moves a record
// with MULTI/SET/DEL/EXEC in one round trip; concurrency=merge and cas write
// through a Lua script that compares the record's SHA-1 with the one it had
// when loaded and writes only if it is unchanged: atomic, one round trip,
// and nothing stored beside the record (any writer that changes the bytes
// changes the version).
//
// In a Cluster a moved record's two keys are in different slots, so on
// different nodes: the new record is written first and the old one deleted
// after (a reader may briefly see both, never neither). A conditional move
// writes the new key, then compares and deletes the old one in a script on
// its node, and deletes the new key again when the old one had changed:
// still atomic against every other writer of the record, which only ever
// writes under the old key.
//
// Principals: each principal has a sorted set under
// prefix + "principal:" + principal (binary-safe; never a record's key, which
// is base64url and holds no ':'), whose members are the keys of its records
// without the prefix, scored by their expiry (now + ttl, Unix seconds on the
// library's clock). On one server a write of a record with a principal adds
// it in the same script: SET, ZADD, ZREMRANGEBYSCORE -inf now (the expired
// go), ZREM of a moved record's old key, and a PEXPIRE that keeps the set
// alive as long as its longest-lived record. In a Cluster the set lives in
// its own slot (a principal's records are spread over every slot: no hash
// tag could put them with it), so the record is written first and indexed
// after: a save that returned has its index entry, and a save whose index
// write failed reports store_unavailable. Listing drops expired members,
// reads the records, and removes members whose record is gone or now
// belongs to another principal, each only if its score is still the one
// read (a write since re-scores it).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend.h"
#include "options.h"
#include "redis_router.h"

namespace sessions::internal {

class RedisStore : public Backend {
 public:
  struct Options {
    std::string prefix = "session:";
    int min_replicas = 0;
    std::chrono::milliseconds replica_timeout{500};
  };

  // scheme is "redis", "redis+unix", "redis+sentinel" or "redis+cluster";
  // consumes its options from *options.
  static std::unique_ptr<RedisStore> open(std::string_view scheme, std::string_view encoded_rest,
                                          OptionList* options);
  RedisStore(Options options, std::unique_ptr<RedisRouter> router);
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
  class Call;

  std::string full_key(std::string_view key) const { return options_.prefix + std::string(key); }
  std::string index_key(std::string_view principal) const;  // the principal's sorted set
  // Cluster: adds `member` to its principal's set after its record was written.
  void index_after_write(Call& call, std::string_view principal, std::string_view member,
                         int64_t now, int64_t ttl);
  void drop_from_index(Call& call, std::string_view principal, std::string_view member);

  Options options_;
  std::unique_ptr<RedisRouter> router_;
  const std::string wait_replicas_, wait_ms_;  // WAIT's arguments
  size_t max_value_bytes_ = size_t(512) << 20;  // Redis' default proto-max-bulk-len
};

}  // namespace sessions::internal
