// memory:?max_sessions=N&shards=M -- records in this process's memory.
// Sharded hash maps, each with its own lock and LRU list, so threads rarely
// contend. Expired records are dropped when met and swept once a second per
// shard; past max_sessions the least recently used record goes. Lost when the
// process exits: use it for one process, and for tests.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "backend.h"
#include "options.h"

namespace sessions::internal {

class MemoryStore : public Backend {
 public:
  static constexpr size_t kDefaultMaxSessions = 100000;
  static constexpr size_t kDefaultShards = 64;

  // Consumes the options it knows from *options (max_sessions, shards).
  static std::unique_ptr<MemoryStore> open(const std::string& location, OptionList* options);
  MemoryStore(size_t max_sessions, size_t shards);
  ~MemoryStore() override;

  bool load(std::string_view key, int64_t now, std::string* data) override;
  void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) override;
  void erase(std::string_view key) override;
  void move(std::string_view from, std::string_view to, std::string_view data, int64_t now,
            int64_t ttl) override;
  // Versions are a store-wide counter, checked and written under the shard
  // locks: merge and cas are atomic.
  bool load_versioned(std::string_view key, int64_t now, std::string* data,
                      Version* version) override;
  Commit save_if(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                 int64_t ttl, Version expected) override;
  bool atomic_save_if() const override { return true; }

  // Each shard indexes its records by principal, in step with its writes,
  // evictions and sweeps.
  bool indexes_principals() const override { return true; }
  void principal_records(std::string_view principal, int64_t now, KeyedRecords* out) override;

  bool private_to_process() const override { return true; }
  size_t size() const;  // live and not-yet-collected records

 private:
  struct Shard;
  Shard& shard_for(std::string_view key) const;

  size_t per_shard_cap_;
  std::atomic<Version> last_version_{0};
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace sessions::internal
