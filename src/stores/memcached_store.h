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
//
// concurrency=merge and cas use memcached's CAS values (one per item, changed
// by every write): a load fetches the item's, save_if is a CAS write, and
// the server checks it, so it is atomic (save_if() explains a moved ID). A
// server started with -C keeps no CAS values: the store then falls back to
// the default, non-atomic, reload-and-compare save_if.
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

  // The version is the item's CAS value, fetched with it in one round trip.
  bool load_versioned(std::string_view key, int64_t now, std::string* data,
                      Version* version) override;
  Commit save_if(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                 int64_t ttl, Version expected) override;
  bool atomic_save_if() const override { return cas_enabled_; }

 private:
  struct ClientCloser {
    void operator()(memcached_st* mc) const;
  };
  using Client = std::unique_ptr<memcached_st, ClientCloser>;
  class Call;

  // One operation each on the leased client; full_key includes the prefix.
  bool get_with_cas(Call& call, const std::string& full_key, std::string* data, Version* cas);
  void set(Call& call, const std::string& full_key, std::string_view data, int64_t ttl);
  Commit cas_write(Call& call, const std::string& full_key, std::string_view data, int64_t ttl,
                   Version expected);
  void remove(Call& call, const std::string& full_key);

  Options options_;
  std::string name_;
  size_t max_value_bytes_ = (size_t(1) << 20) - 512;  // memcached's default -I 1m
  bool cas_enabled_ = true;  // false when a server runs with -C (read by start())
  Client template_;  // configured once; the pool's clients are its clones
  Pool<Client> pool_;
};

}  // namespace sessions::internal
