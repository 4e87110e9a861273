#include "memory_store.h"

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "error.h"
#include "builtin_stores.h"
#include "record.h"

namespace sessions::internal {

namespace {

// Keys are session IDs the library generated (random base64url, checked by
// the codec before any lookup), so their first bytes are already uniform and
// no client can choose keys to flood a bucket: hashing 8 bytes is enough.
struct IdHash {
  size_t operator()(std::string_view key) const {
    uint64_t h = 0;
    std::memcpy(&h, key.data(), std::min<size_t>(key.size(), 8));
    h ^= key.size();
    h *= 0x9E3779B97F4A7C15ull;  // spread the bits (Fibonacci hashing)
    return size_t(h ^ (h >> 32));
  }
};

}  // namespace

struct MemoryStore::Shard {
  struct Entry {
    std::string key;
    std::string data;
    int64_t expires_at;
    Version version;
  };
  // Most recently used at the front. List nodes never move, so the index can
  // key on views into them.
  std::list<Entry> lru;
  std::unordered_map<std::string_view, std::list<Entry>::iterator, IdHash> index;
  // The keys of this shard's records that belong to a principal: a
  // principal's sessions are found by asking every shard.
  std::unordered_map<std::string, std::unordered_set<std::string>> by_principal;
  int64_t next_sweep = 0;
  mutable std::mutex mu;

  void index_principal(const Entry& entry) {
    std::string_view principal = record_principal(entry.data);
    if (!principal.empty()) by_principal[std::string(principal)].insert(entry.key);
  }
  void unindex_principal(const Entry& entry) {
    std::string_view principal = record_principal(entry.data);
    if (principal.empty()) return;
    auto it = by_principal.find(std::string(principal));
    if (it == by_principal.end()) return;
    it->second.erase(entry.key);
    if (it->second.empty()) by_principal.erase(it);
  }

  void remove(std::list<Entry>::iterator it) {
    unindex_principal(*it);
    index.erase(it->key);
    lru.erase(it);
  }

  void sweep(int64_t now) {
    for (auto it = lru.begin(); it != lru.end();) {
      auto next = std::next(it);
      if (it->expires_at <= now) remove(it);
      it = next;
    }
    next_sweep = now + 1;
  }

  // The live entry under `key`, or end(); an expired one is dropped.
  std::list<Entry>::iterator live(std::string_view key, int64_t now) {
    auto found = index.find(key);
    if (found == index.end()) return lru.end();
    auto it = found->second;
    if (it->expires_at <= now) {
      remove(it);
      return lru.end();
    }
    return it;
  }

  void put(std::string_view key, std::string_view data, int64_t now, int64_t ttl, size_t cap,
           Version version) {
    if (now >= next_sweep) sweep(now);
    auto found = index.find(key);
    if (found != index.end()) {
      auto it = found->second;
      if (record_principal(it->data) != record_principal(data)) {
        unindex_principal(*it);
        it->data.assign(data);
        index_principal(*it);
      }
      it->data.assign(data);
      it->expires_at = now + ttl;
      it->version = version;
      lru.splice(lru.begin(), lru, it);
      return;
    }
    lru.push_front(Entry{std::string(key), std::string(data), now + ttl, version});
    index.emplace(lru.front().key, lru.begin());
    index_principal(lru.front());
    while (lru.size() > cap) remove(std::prev(lru.end()));
  }
};

std::unique_ptr<MemoryStore> MemoryStore::open(const std::string& location, OptionList* options) {
  if (!location.empty() && location != "//")
    fail(Errc::bad_uri, "memory: takes no location, only options (memory:?max_sessions=N)");
  size_t max_sessions = kDefaultMaxSessions, shards = kDefaultShards;
  for (auto it = options->begin(); it != options->end();) {
    if (it->first == "max_sessions") {
      max_sessions = size_t(parse_int(it->first, it->second, 1, int64_t(1) << 40));
    } else if (it->first == "shards") {
      shards = size_t(parse_int(it->first, it->second, 1, 1024));
    } else {
      ++it;
      continue;
    }
    it = options->erase(it);
  }
  return std::make_unique<MemoryStore>(max_sessions, std::min(shards, max_sessions));
}

MemoryStore::MemoryStore(size_t max_sessions, size_t shards)
    : per_shard_cap_((max_sessions + shards - 1) / shards) {
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

MemoryStore::~MemoryStore() = default;

MemoryStore::Shard& MemoryStore::shard_for(std::string_view key) const {
  // The high bits pick the shard; the map buckets use the low ones.
  return *shards_[(IdHash()(key) >> 40) % shards_.size()];
}

bool MemoryStore::load(std::string_view key, int64_t now, std::string* data) {
  Version ignored;
  return load_versioned(key, now, data, &ignored);
}

bool MemoryStore::load_versioned(std::string_view key, int64_t now, std::string* data,
                                 Version* version) {
  Shard& shard = shard_for(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.live(key, now);
  if (it == shard.lru.end()) return false;
  shard.lru.splice(shard.lru.begin(), shard.lru, it);
  data->assign(it->data);
  *version = it->version;
  return true;
}

void MemoryStore::save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) {
  Shard& shard = shard_for(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.put(key, data, now, ttl, per_shard_cap_, ++last_version_);
}

void MemoryStore::erase(std::string_view key) {
  Shard& shard = shard_for(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto found = shard.index.find(key);
  if (found != shard.index.end()) shard.remove(found->second);
}

void MemoryStore::move(std::string_view from, std::string_view to, std::string_view data,
                       int64_t now, int64_t ttl) {
  Shard& a = shard_for(from);
  Shard& b = shard_for(to);
  // Both locks at once: no reader sees the session under neither ID.
  std::unique_lock<std::mutex> lock_a(a.mu, std::defer_lock), lock_b(b.mu, std::defer_lock);
  if (&a == &b) lock_a.lock(); else std::lock(lock_a, lock_b);
  b.put(to, data, now, ttl, per_shard_cap_, ++last_version_);
  auto found = a.index.find(from);
  if (found != a.index.end()) a.remove(found->second);
}

Commit MemoryStore::save_if(std::string_view from, std::string_view to, std::string_view data,
                            int64_t now, int64_t ttl, Version expected) {
  Shard& a = shard_for(from);
  Shard& b = shard_for(to);
  std::unique_lock<std::mutex> lock_a(a.mu, std::defer_lock), lock_b(b.mu, std::defer_lock);
  if (&a == &b) lock_a.lock(); else std::lock(lock_a, lock_b);
  auto it = a.live(from, now);
  if (it == a.lru.end()) return Commit::gone;
  if (it->version != expected) return Commit::changed;
  if (from != to) a.remove(it);
  b.put(to, data, now, ttl, per_shard_cap_, ++last_version_);
  return Commit::written;
}

void MemoryStore::principal_records(std::string_view principal, int64_t now, KeyedRecords* out) {
  const std::string wanted(principal);
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    auto found = shard->by_principal.find(wanted);
    if (found == shard->by_principal.end()) continue;
    std::vector<std::string> keys(found->second.begin(), found->second.end());
    for (const std::string& key : keys) {
      auto it = shard->live(key, now);  // drops (and unindexes) an expired record
      if (it != shard->lru.end()) out->emplace_back(it->key, it->data);
    }
  }
}

size_t MemoryStore::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    n += shard->index.size();
  }
  return n;
}

Scheme memory_scheme() {
  return {{"memory"}, {"max_sessions", "shards"}, nullptr,
          [](const OpenRequest& r) { return MemoryStore::open(r.uri.rest, r.options); }};
}

}  // namespace sessions::internal
