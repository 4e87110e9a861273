// One session of one request: loaded from a cookie, changed by the handler,
// saved (or not) when the request finishes. Belongs to one thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chunks.h"
#include "csrf.h"
#include "record.h"
#include "store.h"

namespace sessions::internal {

class Session {
 public:
  static constexpr size_t kIdSize = 32;  // 256 bits from the CSPRNG

  Session() = default;
  Session(std::shared_ptr<Store> store, std::string_view name) { start(std::move(store), name); }

  // A request recycles its Session objects: start() begins a session of
  // `name` in `store`; release() puts every field back to its initial state
  // (dropping the store reference) and keeps only buffer capacity.
  void start(std::shared_ptr<Store> store, std::string_view name);
  void release();

  // Takes the first cookie value sent under the session's name that opens
  // (joined from its chunks for cookie:); otherwise starts a new session
  // whose status says why the first one did not. Throws
  // Errc::store_unavailable: never a new session in place of one it could not read.
  void load(const CookieJar& jar);
  // Writes what changed and appends to *lines the Set-Cookie values to send
  // (none when nothing changed; several for a chunked cookie: session).
  // Throws (value_too_large, cookie_too_large, store_unavailable) having
  // saved and appended nothing.
  void save(SetCookieLines* lines);
  // After finish every mutator throws Errc::state.
  void finish() { finished_ = true; }

  const std::string& name() const { return name_; }
  const std::shared_ptr<Store>& store() const { return store_; }
  const std::string& id_text() const { return id_text_; }
  int status() const { return status_; }
  bool is_new() const { return status_ != SESS_STATUS_VALID; }
  bool is_modified() const { return modified_; }
  int64_t created() const { return record_.created; }
  int64_t last_seen() const { return loaded_last_seen_; }

  const Value* get(std::string_view key) const;
  void set(std::string_view key, Value value);
  void erase(std::string_view key);
  void clear();
  size_t count() const { return record_.values.size(); }
  // Keys in byte order; the list is rebuilt after changes.
  const std::vector<std::string>& keys() const;

  void add_flash(std::string_view kind, Value value);
  Array take_flashes(std::string_view kind);  // returns and removes

  void regenerate_id();
  // Deletes the record and expires the cookie at save; values and flashes
  // written after it go into a fresh session instead (a new ID and cookie).
  void destroy();
  // Asks save() to renew a valid session's expiry (last_seen, the record's
  // TTL, the cookie) without changing its values; see renewal_due().
  void touch();
  void set_option(std::string_view name, std::string_view value);

  // ---- Principals (principals.h) and CSRF tokens (csrf.h) ----
  const std::string& principal() const { return record_.identity.principal; }
  // Ties the session to `principal` (empty: to none), authenticated now.
  void set_principal(std::string_view principal);
  const std::string* metadata(std::string_view key) const {
    return record_.identity.find_metadata(key);
  }
  const std::vector<std::pair<std::string, std::string>>& metadata() const {
    return record_.identity.metadata;
  }
  // Sets (value non-null) or removes one entry of the metadata listed with
  // the session.
  void set_metadata(std::string_view key, const std::string_view* value);
  // end_sessions on a store that revokes by stamps: this session, kept,
  // counts as authenticated at the stamp.
  void reauthenticate(int64_t auth_us);
  // True when the session's record is, or will be saved, under `key`.
  bool lives_at(std::string_view key) const {
    return (!loaded_key_.empty() && key == loaded_key_) || (!id_.empty() && key == backend_key());
  }
  // The handle sess_store_list_sessions shows for this session; false for
  // cookie: and before a new server-side session has an ID.
  bool handle(std::string* out) const;
  // A fresh masked token into *out; the first call creates the secret.
  void csrf_token(std::string* out);
  bool csrf_matches(std::string_view token) const;

 private:
  void check_writable() const;
  void changed();
  CookieOptions effective_options() const;
  const CookieOptions& effective_options(CookieOptions* scratch) const;
  int64_t record_ttl(int64_t now, int64_t max_age) const;
  bool can_resend_cookie(int64_t now, int64_t max_age) const;
  bool timed_out(int64_t now) const;
  bool touch_due(int64_t now) const;
  bool renewal_due(int64_t now, const CookieOptions& options) const;
  int open(std::string_view cookie_value, int64_t now);
  int open_candidate(const CookieJar& jar, const CookieJar::Candidates& candidates, size_t i,
                     int64_t now);
  void save_lines(SetCookieLines* lines);
  bool store_record(std::string_view data, int64_t now, int64_t ttl);
  bool reload_and_merge(int64_t now);
  bool logging_changes() const { return logging_changes_; }
  void log_key(std::string_view key);
  std::string_view encoded_record();
  size_t split_into_chunks(size_t value_end, SetCookieLines* lines);
  void expire_chunks_from(size_t first, const CookieOptions& options, int64_t now,
                          SetCookieLines* lines);
  void assign_id(std::string_view raw_id);
  void forget_identity();         // no ID, no record it came from, no cookie to resend
  void begin_fresh(int64_t now);  // a destroyed session becomes a new one
  // Where the record lives in the backend: the ID's text, or its hash.
  const std::string& backend_key() const;

  std::shared_ptr<Store> store_;
  std::string name_;
  SessionRecord record_;
  int status_ = SESS_STATUS_NEW;
  int64_t loaded_last_seen_ = 0;
  std::string id_;         // raw bytes; empty until known or assigned
  std::string id_text_;    // base64url of id_: sess_session_id, and the backend key
  std::string hashed_key_; // base64url of SHA-256(id_): the backend key with hash_keys
  std::string loaded_key_; // backend key the session was read from, if any
  std::string incoming_cookie_;  // the ID cookie it was read from (server-side stores)
  ChunkMask incoming_chunks_ = 0;  // the NAME.i cookies the request carried (cookie:)
  Sealed incoming_sealed_;
  std::optional<CookieOptions> cookie_override_;
  // concurrency=merge: the record's version at load, and what this request
  // changed, to be applied again onto a newer record (reload_and_merge).
  struct FlashChange {
    std::string kind;
    bool taken;    // take_flashes (these values), else add_flash (one value)
    Array values;
  };
  Version loaded_version_ = 0;
  bool logging_changes_ = false;
  bool max_age_changed_ = false;
  std::vector<std::string> changed_keys_;  // set or erased; repeats allowed
  std::vector<FlashChange> flash_changes_;  // in order
  // Parts of the identity this request replaced (kPrincipalChanged, ...).
  static constexpr unsigned kPrincipalChanged = 1, kMetadataChanged = 2, kCsrfChanged = 4;
  unsigned identity_changes_ = 0;
  bool modified_ = false;
  bool regenerated_ = false;
  bool destroyed_ = false;
  bool finished_ = false;
  bool touch_requested_ = false;
  // Buffers for save(), kept (with their capacity) when the session is recycled.
  std::string scratch_record_, scratch_id_cookie_, scratch_cookie_, scratch_attributes_,
      scratch_compressed_, scratch_identity_;
  mutable bool keys_stale_ = true;
  mutable std::vector<std::string> keys_;
};

}  // namespace sessions::internal
