// A store as users open it: a backend (none for cookie:), the codec sealing
// cookies, and the settings every session of the store starts from.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "backend.h"
#include "codec.h"
#include "compression.h"
#include "cookie.h"
#include "options.h"
#include "principals.h"

namespace sessions::internal {

// What a save does about requests that changed the same session since it
// was loaded (docs/stores.md#concurrent-requests-on-one-session).
enum class Concurrency {
  merge,       // apply only this request's changes onto the latest record
  cas,         // refuse the save (Errc::conflict) when the record changed
  last_write,  // replace the whole record, whatever happened meanwhile
};

struct Settings {
  CookieOptions cookie;
  int64_t idle_timeout = 0;      // seconds without a visit; 0 = none
  int64_t absolute_timeout = 0;  // seconds since creation; 0 = none
  CodecMode codec = CodecMode::aes_gcm;
  size_t max_data_bytes = 1 << 20;  // encoded session size, server-side stores
  bool hash_keys = false;           // backend keys are SHA-256(ID), not the ID
  size_t max_chunks = 3;            // cookie: cookies one session may span (chunks.h)
  // Records compressed before they are sealed or stored (compression.h).
  // Unless set: automatic for stores whose records leave the process; off
  // for memory:, where it would only spend CPU, and for cookie:, whose
  // sealed length an observer sees (docs/stores.md#compression-compress).
  Compression compress = Compression::off;
  bool compress_set = false;
  // Bytes of encoded record from which automatic compresses: below it a
  // session costs more to compress (about 2.5 us per KB for a cycle's
  // compress and inflate) than its bytes cost to move.
  size_t compress_threshold = 2048;
  Concurrency concurrency = Concurrency::merge;  // server-side stores only
  bool concurrency_set = false;
  // Stores without an index of sessions by principal (principals.h) end
  // them by stamps: in the store named here, else in the store's own
  // backend (cookie: has none, so it needs one to end sessions).
  std::string revocation;
  int64_t revocation_cache = 5;       // seconds a stamp is trusted in a process
  bool revocation_fail_open = false;  // when the stamp cannot be read

  // Applies one option; false when `name` is not a general option (it may be
  // a backend's). Throws Errc::bad_option for an invalid value.
  bool set(std::string_view name, std::string_view value);
};

// True when a session created and last seen at these times has passed its
// idle or absolute timeout.
bool timed_out(const Settings& settings, int64_t created, int64_t last_seen, int64_t now);

// What sess_config collects before a store is opened.
struct Config {
  std::vector<std::string> secrets;
  OptionList options;
  // Validates eagerly what can be validated before the scheme is known.
  void set(std::string_view name, std::string_view value);
};

class Store {
 public:
  // Throws Errc::bad_uri, bad_option, bad_secret or unsupported.
  static std::shared_ptr<Store> open(std::string_view uri, const Config& config);
  // Everything open() validates, without starting the backend: no server is
  // dialled, no file or directory touched, no thread started.
  static void check(std::string_view uri, const Config& config);
  // check(), and a session cookie `name` checked against the store's cookie
  // options as Request::session checks it (a token; __Host- and __Secure-).
  static void check_name(std::string_view uri, const Config& config, std::string_view name);
  // A store on a backend its user supplies (sess_store_open_backend), made
  // once the config's settings are known; the config may hold only general
  // options. Starts the backend.
  static std::shared_ptr<Store> open_backend(
      const std::function<std::unique_ptr<Backend>(const Settings&)>& make_backend,
      const Config& config);

  const Settings& settings() const { return settings_; }
  const Codec& codec() const { return *codec_; }
  Backend* backend() const { return backend_.get(); }  // nullptr for cookie:
  // The stamps that revoke this store's sessions, when it has no index of
  // them by principal; nullptr for stores with one, and for cookie: without
  // a revocation= store.
  Revocations* revocations() const { return revocations_.get(); }

  // With hash_keys, records live under base64url(SHA-256(raw ID)): the ID is
  // 256 random bits, so an unsalted hash cannot be reversed, and a dump of
  // the store holds nothing that works as a cookie. Replaces *out.
  void hashed_record_key(std::string_view raw_id, std::string* out) const;
  // The backend key of a session ID as sess_session_id shows it (43
  // base64url characters); false when it is not one.
  bool record_key(std::string_view id_text, std::string* out) const;

  // concurrency=merge and cas: this process's saves of one session take
  // turns, so that they never race each other (only other processes' saves
  // can still change the record between reload and write). Saves of
  // different sessions never wait for each other, even across a round trip.
  class SaveTurn {
   public:
    SaveTurn(const Store& store, std::string_view key);
    ~SaveTurn();
    SaveTurn(const SaveTurn&) = delete;
    SaveTurn& operator=(const SaveTurn&) = delete;

   private:
    const Store& store_;
    std::string key_;
  };

  int64_t now() const { return clock_ ? clock_() : default_now(); }
  // The same clock in microseconds: when principals authenticate.
  int64_t now_us() const;
  // Tests move time forward without sleeping. Not thread-safe: set it before
  // the store is shared.
  void set_clock(std::function<int64_t()> clock) { clock_ = std::move(clock); }

  Store(Settings settings, std::unique_ptr<Codec> codec, std::unique_ptr<Backend> backend);

 private:
  static std::shared_ptr<Store> build(std::string_view uri, const Config& config);
  static int64_t default_now();
  static void check_revocation_store(const Settings& settings, const Config& config);
  // Starts the backend and opens the revocation store.
  void start(const Config& config);

  Settings settings_;
  std::unique_ptr<Codec> codec_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Revocations> revocations_;
  std::function<int64_t()> clock_;
  // The keys whose saves are under way (SaveTurn).
  mutable std::mutex saving_mu_;
  mutable std::condition_variable saving_done_;
  mutable std::unordered_set<std::string> saving_;
};

}  // namespace sessions::internal
