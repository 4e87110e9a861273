// Saving a session that other requests may have changed since it was
// loaded (concurrency=merge and cas): the conditional write, and the merge
// of this request's changes onto the latest record when it loses the race.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

#include "error.h"
#include "random.h"
#include "session.h"

namespace sessions::internal {
namespace {

// concurrency=merge retries while other requests keep winning the race; this
// many losses in a row means something else is wrong.
constexpr int kMaxMergeAttempts = 32;

// After losing a race, give the winner time to finish: at once the first
// times, then random waits that grow with the losses, so that writers
// contending for one record spread out instead of colliding again.
void back_off(int lost) {
  if (lost <= 2) return std::this_thread::yield();
  uint32_t r = 0;
  random_bytes(reinterpret_cast<char*>(&r), sizeof r);
  const uint32_t ceiling_us = 50u << std::min(lost - 2, 6);  // 100 us .. 3.2 ms
  std::this_thread::sleep_for(std::chrono::microseconds(r % ceiling_us));
}

}  // namespace

// Writes a server-side record. A session read from the store is written
// according to `concurrency`; false when merge finds that another request
// ended it meanwhile (destroyed, expired or moved): nothing is written then.
bool Session::store_record(std::string_view data, int64_t now, int64_t ttl) {
  Backend* backend = store_->backend();
  const Concurrency mode = store_->settings().concurrency;
  if (loaded_key_.empty() || mode == Concurrency::last_write) {
    if (!loaded_key_.empty() && loaded_key_ != backend_key())
      backend->move(loaded_key_, backend_key(), data, now, ttl);
    else
      backend->save(backend_key(), data, now, ttl);
    return true;
  }
  // Turns for this process's saves of the session: merge never races itself
  // here, and a backend without an atomic save_if is safe within a process.
  const Store::SaveTurn turn(*store_, loaded_key_);
  for (int attempt = 1;; ++attempt) {
    const Commit commit = backend->save_if(loaded_key_, backend_key(), data, now, ttl, loaded_version_);
    if (commit == Commit::written) return true;
    if (mode == Concurrency::cas)
      fail(Errc::conflict, "session '" + name_ + "' was " +
                               (commit == Commit::gone ? "ended" : "changed") +
                               " by a concurrent request since this one loaded it "
                               "(concurrency=cas): nothing was saved");
    if (attempt == kMaxMergeAttempts)
      fail(Errc::conflict, "session '" + name_ + "': gave up merging after " +
                               std::to_string(kMaxMergeAttempts) +
                               " concurrent writes in a row: nothing was saved");
    if (commit == Commit::gone) return false;
    back_off(attempt);
    if (!reload_and_merge(now)) return false;
    data = encoded_record();
  }
}

// Loads the latest record and applies this request's changes onto it, in
// the order they were made. False when the record is gone.
bool Session::reload_and_merge(int64_t now) {
  Backend* backend = store_->backend();
  SessionRecord latest;
  Version version = 0;
  if (!backend->load_versioned(loaded_key_, now, load_buffer(&latest), &version)) return false;
  if (!decode_loaded(&latest, !backend->private_to_process(), store_->settings().max_data_bytes))
    fail(Errc::conflict, "session '" + name_ +
                             "' was rewritten by a concurrent writer into a record this library "
                             "cannot read: nothing was saved");
  std::sort(changed_keys_.begin(), changed_keys_.end());
  changed_keys_.erase(std::unique(changed_keys_.begin(), changed_keys_.end()), changed_keys_.end());
  for (const std::string& key : changed_keys_) {
    if (const Value* mine = record_.values.find(key)) latest.values.set(key, *mine);
    else latest.values.erase(key);
  }
  if (!flash_changes_.empty()) {
    Map& flashes = latest.flashes();
    for (const FlashChange& change : flash_changes_) {
      Array& list = *flashes.try_emplace(change.kind, Array()).first->second.get_if<Array>();
      if (!change.taken) {
        list.insert(list.end(), change.values.begin(), change.values.end());
        continue;
      }
      // Each value this request showed leaves once, wherever it now is.
      for (const Value& shown : change.values) {
        auto it = std::find(list.begin(), list.end(), shown);
        if (it != list.end()) list.erase(it);
      }
    }
    for (auto it = flashes.begin(); it != flashes.end();)
      it = it->second.get_if<Array>()->empty() ? flashes.erase(it) : std::next(it);
  }
  if (max_age_changed_) latest.max_age = record_.max_age;
  if (identity_changes_ & kPrincipalChanged) {
    latest.identity.principal = record_.identity.principal;
    latest.identity.auth_us = record_.identity.auth_us;
  }
  if (identity_changes_ & kMetadataChanged) latest.identity.metadata = record_.identity.metadata;
  if (identity_changes_ & kCsrfChanged) latest.identity.csrf_secret = record_.identity.csrf_secret;
  latest.last_seen = now;
  record_ = std::move(latest);
  loaded_version_ = version;
  keys_stale_ = true;
  return true;
}

void Session::log_key(std::string_view key) {
  if (logging_changes_) changed_keys_.emplace_back(key);
}

}  // namespace sessions::internal
