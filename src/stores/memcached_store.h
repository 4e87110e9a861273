// memcached://host1:11211,host2:11211?prefix=&pool=&connect_timeout_ms=&timeout_ms=
//
// Records are memcached items under prefix + key, spread over the servers by
// consistent hashing (ketama: adding a server moves only its share of the
// keys), spoken over the binary protocol by libmemcached. A libmemcached
// client is not thread-safe: each call leases one from a pool. A client that
// failed is discarded, because libmemcached would keep refusing to dial the
// failed server for up to a second; a fresh clone dials at once, so a
// restarted server serves the next request. Memcached has no transactions:
// regenerate_id saves the new key before deleting the old, so a reader may
// briefly see both, never neither.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend.h"
#include "options.h"
#include "pool.h"

struct memcached_st;

namespace sessions::internal {

class MemcachedStore : public Backend {
 public:
  struct Options {
    std::vector<HostPort> servers;
    std::string prefix = "session:";
    size_t pool = 16;
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds timeout{1000};
  };

  // Consumes its options from *options.
  static std::unique_ptr<MemcachedStore> open(std::string_view encoded_rest, OptionList* options);
  explicit MemcachedStore(const Options& options);
  ~MemcachedStore() override;

  // Asks every server for its settings, so a server that is down is an
  // error at open (Errc::store_unavailable), and learns the item size limit.
  void start() override;
  size_t max_record_bytes() const override { return max_value_bytes_; }

  bool load(std::string_view key, int64_t now, std::string* data) override;
  void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) override;
  void erase(std::string_view key) override;

 private:
  struct ClientCloser {
    void operator()(memcached_st* mc) const;
  };
  using Client = std::unique_ptr<memcached_st, ClientCloser>;
  class Call;

  Options options_;
  std::string name_;
  size_t max_value_bytes_ = (size_t(1) << 20) - 512;  // memcached's default -I 1m
  Client template_;  // configured once; the pool's clients are its clones
  Pool<Client> pool_;
};

}  // namespace sessions::internal
