// A backend its user supplies through the C ABI (sess_store_open_backend,
// sess_register_scheme): a table of C callbacks and the user's state. The
// rules both sides keep are in include/sessions.h ("Custom stores").
#pragma once

#include <string>

#include "backend.h"
#include "sessions.h"

// Where a load callback writes the record (sess_sink_write).
struct sess_sink {
  std::string* out;
  size_t limit;           // the store's max_data_bytes
  bool overflowed = false;
  uint64_t version = 0;   // sess_sink_set_version
};

namespace sessions::internal {

// The state a user handed over, closed exactly once unless released.
class OwnedState {
 public:
  OwnedState(void (*close)(void*), void* state) : close_(close), state_(state) {}
  ~OwnedState() { reset(); }
  OwnedState(OwnedState&& other) noexcept : close_(other.close_), state_(other.release()) {}
  OwnedState(const OwnedState&) = delete;
  OwnedState& operator=(const OwnedState&) = delete;
  OwnedState& operator=(OwnedState&&) = delete;
  void* get() const { return state_; }
  void* release() {
    void* s = state_;
    state_ = nullptr;
    return s;
  }
  void reset() {
    if (state_ && close_) close_(state_);
    state_ = nullptr;
  }

 private:
  void (*close_)(void*);
  void* state_;
};

class CallbackBackend : public Backend {
 public:
  // Copies the table's first ops.size bytes. Throws Errc::invalid_argument
  // when load, save or erase is missing (`state` is closed then too).
  CallbackBackend(const sess_backend_ops& ops, OwnedState state, size_t load_limit);

  void start() override;
  bool load(std::string_view key, int64_t now, std::string* data) override;
  void save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) override;
  void erase(std::string_view key) override;
  void move(std::string_view from, std::string_view to, std::string_view data, int64_t now,
            int64_t ttl) override;
  // With a save_if callback: its load's versions and its atomic save_if;
  // without, the core's fallback.
  bool load_versioned(std::string_view key, int64_t now, std::string* data,
                      Version* version) override;
  Commit save_if(std::string_view from, std::string_view to, std::string_view data, int64_t now,
                 int64_t ttl, Version expected) override;
  bool atomic_save_if() const override { return ops_.save_if != nullptr; }

  // A copy of the table with the fields a caller's older, shorter table
  // lacks left NULL.
  static sess_backend_ops copy_ops(const sess_backend_ops& ops);

 private:
  // Turns a callback's result into the core's: throws for errors.
  void check(const char* callback, int rc, bool may_be_not_found = false) const;
  bool load_into(std::string_view key, int64_t now, std::string* data, Version* version);

  sess_backend_ops ops_;
  OwnedState state_;
  size_t load_limit_;  // the most a load may write: max_data_bytes
};

// The reason a callback or factory gives for its error
// (sess_backend_set_error): thread-local, taken (and cleared) after each call.
void set_backend_error(const char* message);
std::string take_backend_error();

}  // namespace sessions::internal
