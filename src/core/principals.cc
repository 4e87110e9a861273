#include "principals.h"

#include <algorithm>

#include <openssl/evp.h>

#include "base64url.h"
#include "bytes.h"
#include "error.h"
#include "record.h"
#include "session.h"
#include "store.h"

namespace sessions::internal {
namespace {

// A stamp outlives every session it may revoke: 400 days is the longest
// cookie lifetime browsers keep, and more than any record TTL.
constexpr int64_t kStampTtl = int64_t(400) * 86400;

void sha256(std::string_view data, unsigned char digest[32]) {
  unsigned int size = 0;
  if (!EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr))
    fail(Errc::internal, "SHA-256 failed");
}

// 50 base64url characters ("revoked" and 43 of the digest): never a
// session's record key, which has 43, so stamps share the store's keys.
std::string stamp_key(std::string_view principal) {
  unsigned char digest[32];
  sha256(principal, digest);
  std::string key = "revoked";
  base64url_encode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest), &key);
  return key;
}

Backend& indexing_backend(const Store& store, const char* what) {
  Backend* backend = store.backend();
  if (!backend || !backend->indexes_principals())
    fail(Errc::unsupported,
         std::string(what) + ": this store keeps no index of sessions by principal (" +
             (backend ? "it revokes by stamps: sess_store_end_sessions ends them all"
                      : "cookie: sessions live in the browser; with revocation=URI, "
                        "sess_store_end_sessions ends them all") +
             ")");
  return *backend;
}

// The live records of `principal`, decoded; each with its key.
template <typename Visit>
void for_each_session(const Store& store, Backend& backend, std::string_view principal,
                      Visit&& visit) {
  const int64_t now = store.now();
  Backend::KeyedRecords records;
  backend.principal_records(principal, now, &records);
  for (auto& [key, data] : records) {
    if (record_principal(data) != principal) continue;  // a stale index entry
    SessionRecord record;
    load_buffer(&record)->assign(data);
    if (!decode_loaded(&record, !backend.private_to_process(), store.settings().max_data_bytes) ||
        record.identity.principal != principal ||
        timed_out(store.settings(), record.created, record.last_seen, now))
      continue;
    visit(key, record);
  }
}

}  // namespace

void session_handle(std::string_view record_key, std::string* out) {
  unsigned char digest[32];
  sha256(std::string("libsessions handle:").append(record_key), digest);
  out->clear();
  base64url_encode(std::string_view(reinterpret_cast<char*>(digest), 16), out);
}

std::vector<SessionInfo> list_sessions(const Store& store, std::string_view principal) {
  Backend& backend = indexing_backend(store, "listing sessions");
  std::vector<SessionInfo> out;
  for_each_session(store, backend, principal, [&](const std::string& key, SessionRecord& record) {
    SessionInfo& info = out.emplace_back();
    session_handle(key, &info.handle);
    info.created = record.created;
    info.last_seen = record.last_seen;
    info.metadata = std::move(record.identity.metadata);
  });
  // Most recently seen first, as account pages show them.
  std::sort(out.begin(), out.end(), [](const SessionInfo& a, const SessionInfo& b) {
    return a.last_seen != b.last_seen ? a.last_seen > b.last_seen : a.handle < b.handle;
  });
  return out;
}

int64_t end_sessions(const Store& store, std::string_view principal, Session* keep) {
  Backend* backend = store.backend();
  if (!backend || !backend->indexes_principals()) {
    Revocations* revocations = store.revocations();
    if (!revocations)
      fail(Errc::unsupported,
           "cookie: sessions live in the browser: ending them needs a revocation store "
           "(option revocation=URI, e.g. revocation=redis://host/0)");
    const int64_t stamp = store.now_us();
    revocations->revoke(principal, stamp, store.now());
    if (keep && keep->principal() == principal) keep->reauthenticate(stamp);
    return -1;
  }
  int64_t ended = 0;
  for_each_session(store, *backend, principal, [&](const std::string& key, SessionRecord&) {
    if (keep && keep->lives_at(key)) return;
    backend->erase(key);
    ++ended;
  });
  return ended;
}

bool end_session(const Store& store, std::string_view principal, std::string_view handle) {
  Backend& backend = indexing_backend(store, "ending one session");
  bool found = false;
  std::string candidate;
  for_each_session(store, backend, principal, [&](const std::string& key, SessionRecord&) {
    session_handle(key, &candidate);
    if (candidate != handle) return;
    backend.erase(key);
    found = true;
  });
  return found;
}

// ---- Revocations ------------------------------------------------------------

Revocations::Revocations(Backend* backend, std::shared_ptr<const Store> holder,
                         int64_t cache_seconds, bool fail_open)
    : backend_(backend), holder_(std::move(holder)), cache_seconds_(cache_seconds),
      fail_open_(fail_open) {}

Revocations::Shard& Revocations::shard_for(std::string_view principal) {
  return shards_[std::hash<std::string_view>()(principal) % kShards];
}

void Revocations::remember(std::string_view principal, int64_t stamp_us, int64_t now) {
  if (cache_seconds_ <= 0) return;
  Shard& shard = shard_for(principal);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.entries.size() >= kMaxCachedPerShard) {
    // Bounded: stale entries go first, and all of them when none is stale.
    for (auto it = shard.entries.begin(); it != shard.entries.end();)
      it = now - it->second.fetched >= cache_seconds_ ? shard.entries.erase(it) : std::next(it);
    if (shard.entries.size() >= kMaxCachedPerShard) shard.entries.clear();
  }
  Cached& entry = shard.entries[std::string(principal)];
  entry.stamp_us = std::max(stamp_us, entry.stamp_us);
  entry.fetched = now;
}

int64_t Revocations::fetch(std::string_view principal, int64_t now) {
  std::string data;
  if (!backend_->load(stamp_key(principal), now, &data)) return 0;
  if (data.size() != 8)
    fail(Errc::store_unavailable, "the revocation stamp of a principal is not one this library "
                                  "wrote (8 bytes): it cannot be read");
  return int64_t(load_be64(reinterpret_cast<const unsigned char*>(data.data())));
}

bool Revocations::revoked(std::string_view principal, int64_t auth_us, int64_t now) {
  if (cache_seconds_ > 0) {
    Shard& shard = shard_for(principal);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.entries.find(std::string(principal));
    if (it != shard.entries.end() && now - it->second.fetched < cache_seconds_ &&
        now >= it->second.fetched)
      return auth_us < it->second.stamp_us;
  }
  int64_t stamp = 0;
  try {
    stamp = fetch(principal, now);
  } catch (const Error& e) {
    if (!fail_open_)
      fail(Errc::store_unavailable,
           std::string("the revocation store could not say whether the session is revoked "
                       "(revocation_fail=closed): ") + e.what());
    return false;  // revocation_fail=open: not cached, asked again next time
  }
  remember(principal, stamp, now);
  return auth_us < stamp;
}

void Revocations::revoke(std::string_view principal, int64_t stamp_us, int64_t now) {
  const std::string key = stamp_key(principal);
  const int64_t current = fetch(principal, now);
  if (current < stamp_us) {
    char data[8];
    store_be64(data, uint64_t(stamp_us));
    backend_->save(key, std::string_view(data, sizeof data), now, kStampTtl);
  }
  remember(principal, std::max(current, stamp_us), now);
}

}  // namespace sessions::internal
