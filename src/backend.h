// Where server-side stores keep session records. One implementation per file
// pair (memory_store, and later redis_store, ...). Every method is called from
// many threads at once; implementations are thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sessions {

class Backend {
 public:
  virtual ~Backend() = default;

  // True when only this process writes the records (memory:). Records from
  // stores that others can write to are checked more strictly on load.
  virtual bool private_to_process() const { return false; }

  // True and *data filled when a live record exists under `key`. Throws
  // Errc::store_unavailable when the store cannot answer: "not found" must
  // never be guessed, or a save would overwrite the user's data.
  virtual bool load(std::string_view key, int64_t now, std::string* data) = 0;
  // Stores `data` to expire `ttl` seconds after `now`. Throws on failure.
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
};

}  // namespace sessions
