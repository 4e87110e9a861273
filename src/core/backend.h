// Where server-side stores keep session records. One implementation per file
// pair (memory_store, and later redis_store, ...). Every method is called from
// many threads at once; implementations are thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessions::internal {

using Version = uint64_t;
enum class Commit { written, changed, gone };

class Backend {
 public:
  virtual ~Backend() = default;

  // Called once by Store::open after every option was accepted: servers are
  // dialled here, so that a store that is down fails at open (throws
  // Errc::store_unavailable) and a bad option is reported before that.
  virtual void start() {}

  // True when only this process writes the records (memory:). Records from
  // stores that others can write to are checked more strictly on load.
  virtual bool private_to_process() const { return false; }

  // The largest record the server accepts, when it says (Redis'
  // proto-max-bulk-len); saves over it fail with Errc::value_too_large.
  virtual size_t max_record_bytes() const { return std::numeric_limits<size_t>::max(); }

  // True and *data filled when a live record exists under `key`. A value
  // that cannot be ours (wrong type) is returned as empty data, which
  // decodes as malformed: the session starts anew under a new ID and the
  // foreign value is left alone. Throws Errc::store_unavailable when the
  // store cannot answer: "not found" must never be guessed, or a save would
  // overwrite the user's data.
  virtual bool load(std::string_view key, int64_t now, std::string* data) = 0;
  // Stores `data` to expire `ttl` seconds after `now`. Throws on failure
  // (store_unavailable, or value_too_large when the server refuses the size).
  virtual void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) = 0;
  virtual void erase(std::string_view key) = 0;
  // Saves under `to` and erases `from` so that no reader sees neither copy
  // (regenerate_id). The default is save-then-erase, which is enough for
  // stores where a reader may briefly see both.
  virtual void move(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                    int64_t ttl) {
    save(to, data, now, ttl);
    erase(from);
  }

  // ---- Concurrent requests on one session (concurrency=merge and cas) ----
  //
  // A version names one written state of one record: it changes whenever the
  // record is written, so a save can ask "is it still as I loaded it?".

  // load() that also gives the record's version. The default is the bytes'
  // content_version(), which needs nothing from the store.
  virtual bool load_versioned(std::string_view key, int64_t now, std::string* data,
                              Version* version);
  // Writes `data` under `to`, and erases `from` when it differs (a moved
  // ID), only if the record under `from` is still at version `expected`;
  // otherwise writes nothing and says whether the record changed or is gone
  // (deleted, expired or moved by another request). Throws like save().
  // The default reloads and compares, then saves or moves: the window
  // between the check and the write is short but open, so it is not atomic
  // (atomic_save_if() is false); every built-in store overrides it.
  virtual Commit save_if(std::string_view from, std::string_view to, std::string_view data,
                         int64_t now, int64_t ttl, Version expected);
  // True when save_if() is atomic against every other writer of the store.
  virtual bool atomic_save_if() const { return false; }

  // ---- Principals (sess_session_set_principal) ----
  //
  // True when principal_records() can find a principal's sessions: the store
  // keeps an index from each saved record's principal (record_principal() of
  // the data) in step with save, save_if and move, and expired or erased
  // records leave it, so that it never grows without bound. Stores without
  // one end sessions by revocation stamps instead (principals.h).
  virtual bool indexes_principals() const { return false; }
  // Appends (key, stored record) for each live record indexed under
  // `principal`. An entry may be stale (a record whose principal has changed
  // since): the caller checks each record's own principal. Throws
  // store_unavailable; the default throws unsupported.
  using KeyedRecords = std::vector<std::pair<std::string, std::string>>;
  virtual void principal_records(std::string_view principal, int64_t now, KeyedRecords* out);
};

// 64 bits of SHA-1 of a record's bytes: the version of stores that keep
// none of their own (Redis compares the same digest in its script).
Version content_version(std::string_view data);
// SHA-1 of `data` into digest[20].
void sha1(std::string_view data, unsigned char* digest);

}  // namespace sessions::internal
