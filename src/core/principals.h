// Principals: the user (or account, or device) a session belongs to, set at
// login with sess_session_set_principal. A store finds a principal's
// sessions to list or end them in one of two ways:
//
//  - by an index the store keeps itself (Backend::indexes_principals():
//    memory:, redis:, file:, sqlite:, postgresql:, mongodb:). Ending deletes
//    the records: they load as unknown_id.
//  - by revocation stamps (Revocations, below) where there is none: cookie:
//    (whose sessions live in the browser), memcached: (no secondary index)
//    and custom stores without one. Ending writes "no session of this
//    principal authenticated before T": they load as revoked.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend.h"

namespace sessions::internal {

class Session;
class Store;

// One live session of a principal, as sess_store_list_sessions gives it.
struct SessionInfo {
  std::string handle;  // non-secret: base64url of 128 bits of SHA-256 of the record key
  int64_t created = 0;
  int64_t last_seen = 0;
  std::vector<std::pair<std::string, std::string>> metadata;
};

// The handle of a record key (sess_session_handle).
void session_handle(std::string_view record_key, std::string* out);

// Throws unsupported for stores that revoke by stamps (they cannot list).
std::vector<SessionInfo> list_sessions(const Store& store, std::string_view principal);
// Ends every session of `principal` but `keep` (may be null). Returns how
// many records were deleted, or -1 for stores that revoke by stamps, which
// cannot count (`keep` is then re-authenticated at the stamp, and saved at
// its request's finish).
int64_t end_sessions(const Store& store, std::string_view principal, Session* keep);
// Ends the one session of `principal` listed under `handle`; false when
// there is none. Throws unsupported for stores that revoke by stamps.
bool end_session(const Store& store, std::string_view principal, std::string_view handle);

// Per-principal "not before" stamps in a backend (the revocation= store, or
// the store's own), read through a per-process cache.
class Revocations {
 public:
  // `holder` keeps the revocation store open when it is not the store's own.
  Revocations(Backend* backend, std::shared_ptr<const Store> holder, int64_t cache_seconds,
              bool fail_open);

  // True when a session of `principal` that authenticated at `auth_us` is
  // revoked. Throws store_unavailable when the stamp cannot be read and the
  // store fails closed (revocation_fail=closed, the default).
  bool revoked(std::string_view principal, int64_t auth_us, int64_t now);
  // Revokes every session of `principal` that authenticated before
  // `stamp_us`; a later stamp already there is kept.
  void revoke(std::string_view principal, int64_t stamp_us, int64_t now);

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxCachedPerShard = 4096;
  struct Cached {
    int64_t stamp_us;  // 0: none
    int64_t fetched;   // store clock, seconds
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Cached> entries;
  };
  Shard& shard_for(std::string_view principal);
  int64_t fetch(std::string_view principal, int64_t now);
  void remember(std::string_view principal, int64_t stamp_us, int64_t now);

  Backend* backend_;
  std::shared_ptr<const Store> holder_;
  int64_t cache_seconds_;
  bool fail_open_;
  Shard shards_[kShards];
};

}  // namespace sessions::internal
