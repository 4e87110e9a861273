// libsessions for C++: a header-only RAII wrapper over the C ABI in
// sessions.h, so there is one ABI to keep stable. Errors are thrown as
// sessions::Error carrying the SESS_E_* code and the library's message; an
// absent key is std::nullopt, never an exception.
//
//   sessions::Store store = sessions::Store::open("memory:",
//       sessions::Config().add_secret(secret).set("idle_timeout", "30m"));
//   sessions::Request request(cookie_header);
//   sessions::Session s = request.session(store, "mysession");
//   auto count = s.get_int("count").value_or(0);
//   s.set_int("count", count + 1);
//   request.finish();
//   for (const auto& value : request.set_cookies()) response.add("Set-Cookie", value);
#ifndef SESSIONS_HPP
#define SESSIONS_HPP

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sessions.h"

namespace sessions {

class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

namespace detail {
// Returns true for SESS_OK, false for SESS_NOT_FOUND, throws for errors.
inline bool check(int rc) {
  if (rc == SESS_OK) return true;
  if (rc == SESS_NOT_FOUND) return false;
  throw Error(rc, std::string(sess_strerror(rc)) + ": " + sess_last_error());
}
// Takes ownership of a library-allocated string.
inline std::string adopt(char* p, size_t len) {
  std::string out(p, len);
  sess_free(p);
  return out;
}
}  // namespace detail

class Config {
 public:
  Config() { detail::check(sess_config_new(&p_)); }
  ~Config() { sess_config_free(p_); }
  Config(Config&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Config& operator=(Config&& o) noexcept { std::swap(p_, o.p_); return *this; }
  Config(const Config&) = delete;
  Config& operator=(const Config&) = delete;

  Config& add_secret(std::string_view secret) {
    detail::check(sess_config_add_secret(p_, secret.data(), secret.size()));
    return *this;
  }
  Config& set(const std::string& name, const std::string& value) {
    detail::check(sess_config_set(p_, name.c_str(), value.c_str()));
    return *this;
  }
  const sess_config* get() const { return p_; }

 private:
  sess_config* p_ = nullptr;
};

// A store backend in C++: subclass it, then open a store on an instance
// (Store::open(std::make_unique<MyBackend>(...), config)) or register a URI
// scheme whose factory makes them (register_scheme). The rules both sides
// keep are in sessions.h ("Custom stores"): methods are called from many
// threads at once, keys are base64url, data is opaque. An exception thrown
// by a method never reaches the library: it becomes SESS_E_STORE_UNAVAILABLE
// with what() as the message, except a sessions::Error carrying
// SESS_E_VALUE_TOO_LARGE from save, which keeps its code.
class Backend {
 public:
  virtual ~Backend() = default;
  // The live record under `key`, or std::nullopt when there is none or it
  // has expired. Throw when the backend cannot answer: "absent" would have
  // the session replaced by an empty one.
  virtual std::optional<std::string> load(const std::string& key, int64_t now) = 0;
  // Replaces the record atomically; it expires `ttl` seconds after `now`.
  virtual void save(const std::string& key, std::string_view data, int64_t now, int64_t ttl) = 0;
  virtual void erase(const std::string& key) = 0;  // absent is fine
  // regenerate_id: override to make it atomic (no reader sees neither).
  virtual void move(const std::string& from, const std::string& to, std::string_view data,
                    int64_t now, int64_t ttl) {
    save(to, data, now, ttl);
    erase(from);
  }
  // Called once by Store::open before any other call (not by check).
  virtual void start() {}

  // concurrency=merge and cas made atomic (optional; sessions.h, save_if):
  // return true from versioned() and override load_versioned and save_if.
  // A version is any 64-bit value that changes whenever a record is written.
  struct VersionedRecord {
    std::string data;
    uint64_t version;
  };
  enum class SaveIf { written, changed, gone };
  virtual bool versioned() const { return false; }
  virtual std::optional<VersionedRecord> load_versioned(const std::string& key, int64_t now) {
    if (auto data = load(key, now)) return VersionedRecord{std::move(*data), 0};
    return std::nullopt;
  }
  // Writes `data` under `to` (erasing `from` when it differs) only if the
  // record under `from` is still at `expected`, all at once.
  virtual SaveIf save_if(const std::string& from, const std::string& to, std::string_view data,
                         int64_t now, int64_t ttl, uint64_t expected) {
    (void)from, (void)to, (void)data, (void)now, (void)ttl, (void)expected;
    throw Error(SESS_E_INTERNAL, "save_if called on a Backend whose versioned() is false");
  }

  // The C table that adapts a Backend; its state is a Backend*, deleted by
  // close. With `versioned`, the table has save_if and load reports versions.
  static const sess_backend_ops* ops(bool versioned = false) {
    static const sess_backend_ops plain = {sizeof(sess_backend_ops), &load_cb, &save_cb, &erase_cb,
                                           &move_cb, &start_cb, &close_cb, nullptr};
    static const sess_backend_ops with_versions = {
        sizeof(sess_backend_ops), &load_versioned_cb, &save_cb, &erase_cb, &move_cb, &start_cb,
        &close_cb, &save_if_cb};
    return versioned ? &with_versions : &plain;
  }

 private:
  template <typename Body>
  static int shielded(Body&& body) noexcept {
    try {
      body();
      return SESS_OK;
    } catch (const Error& e) {
      sess_backend_set_error(e.what());
      return e.code() == SESS_E_VALUE_TOO_LARGE ? SESS_E_VALUE_TOO_LARGE : SESS_E_STORE_UNAVAILABLE;
    } catch (const std::exception& e) {
      sess_backend_set_error(e.what());
    } catch (...) {
      sess_backend_set_error("unknown exception");
    }
    return SESS_E_STORE_UNAVAILABLE;
  }
  static Backend& self(void* state) { return *static_cast<Backend*>(state); }
  static int load_cb(void* state, const char* key, int64_t now, sess_sink* sink) {
    bool found = false;
    int rc = shielded([&] {
      if (auto record = self(state).load(key, now)) {
        found = true;
        sess_sink_write(sink, record->data(), record->size());
      }
    });
    return rc == SESS_OK && !found ? SESS_NOT_FOUND : rc;
  }
  static int save_cb(void* state, const char* key, const void* data, size_t len, int64_t now,
                     int64_t ttl) {
    return shielded([&] {
      self(state).save(key, std::string_view(static_cast<const char*>(data), len), now, ttl);
    });
  }
  static int erase_cb(void* state, const char* key) {
    return shielded([&] { self(state).erase(key); });
  }
  static int move_cb(void* state, const char* from, const char* to, const void* data, size_t len,
                     int64_t now, int64_t ttl) {
    return shielded([&] {
      self(state).move(from, to, std::string_view(static_cast<const char*>(data), len), now, ttl);
    });
  }
  static int start_cb(void* state) {
    return shielded([&] { self(state).start(); });
  }
  static int load_versioned_cb(void* state, const char* key, int64_t now, sess_sink* sink) {
    bool found = false;
    int rc = shielded([&] {
      if (auto record = self(state).load_versioned(key, now)) {
        found = true;
        sess_sink_set_version(sink, record->version);
        sess_sink_write(sink, record->data.data(), record->data.size());
      }
    });
    return rc == SESS_OK && !found ? SESS_NOT_FOUND : rc;
  }
  static int save_if_cb(void* state, const char* from, const char* to, const void* data,
                        size_t len, int64_t now, int64_t ttl, uint64_t expected) {
    SaveIf result = SaveIf::written;
    int rc = shielded([&] {
      result = self(state).save_if(from, to, std::string_view(static_cast<const char*>(data), len),
                                   now, ttl, expected);
    });
    if (rc != SESS_OK) return rc;
    return result == SaveIf::written ? SESS_OK
           : result == SaveIf::changed ? SESS_E_CONFLICT
                                       : SESS_NOT_FOUND;
  }
  static void close_cb(void* state) { delete static_cast<Backend*>(state); }
};

using BackendOptions = std::vector<std::pair<std::string, std::string>>;
// Makes a backend for a URI and the options the library left (throw a
// sessions::Error with SESS_E_BAD_URI or SESS_E_BAD_OPTION to refuse them).
// It must not dial: Backend::start does.
using BackendFactory =
    std::function<std::unique_ptr<Backend>(const std::string& uri, const BackendOptions& options)>;

// Registers `scheme` so that Store::open("scheme:...") builds its backends
// with `factory`; `options` are the option names the factory takes (which
// Config::set then accepts). At start-up; the factory lives until exit.
inline void register_scheme(const std::string& scheme, BackendFactory factory,
                            const std::vector<std::string>& options = {}) {
  struct Entry {
    BackendFactory factory;
    std::vector<std::string> options;
    std::vector<const char*> option_names;
  };
  auto* entry = new Entry{std::move(factory), options, {}};  // registered for good: never freed
  for (const auto& name : entry->options) entry->option_names.push_back(name.c_str());
  entry->option_names.push_back(nullptr);
  auto trampoline = [](void* state, const char* uri, const char* const* names,
                       const char* const* values, size_t count, const sess_backend_ops** ops,
                       void** backend) -> int {
    try {
      BackendOptions list;
      for (size_t i = 0; i < count; ++i) list.emplace_back(names[i], values[i]);
      std::unique_ptr<Backend> made = static_cast<Entry*>(state)->factory(uri, list);
      *ops = Backend::ops(made->versioned());
      *backend = made.release();
      return SESS_OK;
    } catch (const Error& e) {
      sess_backend_set_error(e.what());
      return e.code() == SESS_E_BAD_OPTION ? SESS_E_BAD_OPTION : SESS_E_BAD_URI;
    } catch (const std::bad_alloc&) {
      return SESS_E_NO_MEMORY;
    } catch (const std::exception& e) {
      sess_backend_set_error(e.what());
      return SESS_E_BAD_URI;
    }
  };
  int rc = sess_register_scheme(scheme.c_str(), trampoline, entry, entry->option_names.data());
  if (rc != SESS_OK) {
    std::string message = std::string(sess_strerror(rc)) + ": " + sess_last_error();
    delete entry;
    throw Error(rc, message);
  }
}

class Store {
 public:
  static Store open(const std::string& uri, const Config& config) {
    sess_store* p = nullptr;
    detail::check(sess_store_open(uri.c_str(), config.get(), &p));
    return Store(p);
  }
  // A store on one backend instance, which the store then owns.
  static Store open(std::unique_ptr<Backend> backend, const Config& config) {
    sess_store* p = nullptr;
    const sess_backend_ops* table = Backend::ops(backend->versioned());
    detail::check(sess_store_open_backend(table, backend.release(), config.get(), &p));
    return Store(p);
  }
  ~Store() { sess_store_close(p_); }
  Store(Store&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Store& operator=(Store&& o) noexcept { std::swap(p_, o.p_); return *this; }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  sess_store* get() const { return p_; }

  // ---- A principal's sessions (sessions.h, "Principals") ----
  struct SessionInfo {
    std::string handle;
    int64_t created = 0, last_seen = 0;
    std::string metadata_json;  // a JSON object of strings
  };
  std::vector<SessionInfo> list_sessions(const std::string& principal) const {
    sess_session_list* list = nullptr;
    detail::check(sess_store_list_sessions(p_, principal.c_str(), &list));
    std::vector<SessionInfo> out;
    for (size_t i = 0, n = sess_session_list_count(list); i < n; ++i) {
      sess_session_info info;
      sess_session_list_get(list, i, &info);
      out.push_back({info.handle, info.created, info.last_seen, info.metadata_json});
    }
    sess_session_list_free(list);
    return out;
  }
  // Ends them all but `keep` (Session::get(), or nullptr); how many, or -1
  // for stores that revoke by stamps.
  int64_t end_sessions(const std::string& principal, sess_session* keep = nullptr) const {
    int64_t ended = 0;
    detail::check(sess_store_end_sessions(p_, principal.c_str(), keep, &ended));
    return ended;
  }
  bool end_session(const std::string& principal, const std::string& handle) const {
    return detail::check(sess_store_end_session(p_, principal.c_str(), handle.c_str()));
  }

 private:
  explicit Store(sess_store* p) : p_(p) {}
  sess_store* p_ = nullptr;
};

// A view of a session owned by its Request: valid while the Request lives.
class Session {
 public:
  explicit Session(sess_session* p) : p_(p) {}

  std::string name() const { return sess_session_name(p_); }
  std::string id() const { return sess_session_id(p_); }
  int status() const { return sess_session_status(p_); }
  std::string status_name() const { return sess_status_name(status()); }
  bool is_new() const { return sess_session_is_new(p_) != 0; }
  bool is_modified() const { return sess_session_is_modified(p_) != 0; }
  int64_t created() const { return sess_session_created(p_); }
  int64_t last_seen() const { return sess_session_last_seen(p_); }

  bool contains(const std::string& key) const {
    int type = 0;
    return detail::check(sess_get_type(p_, key.c_str(), &type));
  }
  std::optional<int> type(const std::string& key) const {
    int type = 0;
    if (!detail::check(sess_get_type(p_, key.c_str(), &type))) return std::nullopt;
    return type;
  }
  std::optional<bool> get_bool(const std::string& key) const {
    int v = 0;
    if (!detail::check(sess_get_bool(p_, key.c_str(), &v))) return std::nullopt;
    return v != 0;
  }
  std::optional<int64_t> get_int(const std::string& key) const {
    int64_t v = 0;
    if (!detail::check(sess_get_int(p_, key.c_str(), &v))) return std::nullopt;
    return v;
  }
  std::optional<double> get_double(const std::string& key) const {
    double v = 0;
    if (!detail::check(sess_get_double(p_, key.c_str(), &v))) return std::nullopt;
    return v;
  }
  std::optional<std::string> get_str(const std::string& key) const {
    const char* v = nullptr;
    size_t len = 0;
    if (!detail::check(sess_get_str(p_, key.c_str(), &v, &len))) return std::nullopt;
    return std::string(v, len);
  }
  std::optional<std::string> get_bytes(const std::string& key) const {
    const void* v = nullptr;
    size_t len = 0;
    if (!detail::check(sess_get_bytes(p_, key.c_str(), &v, &len))) return std::nullopt;
    return std::string(static_cast<const char*>(v), len);
  }
  std::optional<std::string> get_json(const std::string& key) const {
    char* v = nullptr;
    size_t len = 0;
    if (!detail::check(sess_get_json(p_, key.c_str(), &v, &len))) return std::nullopt;
    return detail::adopt(v, len);
  }

  void set_nil(const std::string& key) { detail::check(sess_set_nil(p_, key.c_str())); }
  void set_bool(const std::string& key, bool v) { detail::check(sess_set_bool(p_, key.c_str(), v)); }
  void set_int(const std::string& key, int64_t v) { detail::check(sess_set_int(p_, key.c_str(), v)); }
  void set_double(const std::string& key, double v) {
    detail::check(sess_set_double(p_, key.c_str(), v));
  }
  void set_str(const std::string& key, std::string_view v) {
    detail::check(sess_set_str(p_, key.c_str(), v.data(), v.size()));
  }
  void set_bytes(const std::string& key, std::string_view v) {
    detail::check(sess_set_bytes(p_, key.c_str(), v.data(), v.size()));
  }
  void set_json(const std::string& key, std::string_view json) {
    detail::check(sess_set_json(p_, key.c_str(), json.data(), json.size()));
  }
  void erase(const std::string& key) { detail::check(sess_delete(p_, key.c_str())); }
  void clear() { detail::check(sess_clear(p_)); }

  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    const char* key = nullptr;
    size_t len = 0;
    for (size_t i = 0; detail::check(sess_key_at(p_, i, &key, &len)); ++i) out.emplace_back(key, len);
    return out;
  }

  void add_flash(std::string_view message, const char* kind = nullptr) {
    detail::check(sess_add_flash_str(p_, kind, message.data(), message.size()));
  }
  void add_flash_json(std::string_view json, const char* kind = nullptr) {
    detail::check(sess_add_flash_json(p_, kind, json.data(), json.size()));
  }
  // The flashes of `kind` as a JSON array; they are removed from the session.
  std::string flashes_json(const char* kind = nullptr) {
    char* v = nullptr;
    size_t len = 0;
    detail::check(sess_flashes_json(p_, kind, &v, &len));
    return detail::adopt(v, len);
  }

  void regenerate_id() { detail::check(sess_session_regenerate_id(p_)); }
  void touch() { detail::check(sess_session_touch(p_)); }
  void destroy() { detail::check(sess_session_destroy(p_)); }
  void set_option(const std::string& name, const std::string& value) {
    detail::check(sess_session_set_option(p_, name.c_str(), value.c_str()));
  }
  // ---- Principals and CSRF tokens (sessions.h) ----
  std::string principal() const { return sess_session_principal(p_); }
  void set_principal(const std::string& principal) {  // "" unties
    detail::check(sess_session_set_principal(p_, principal.c_str()));
  }
  std::optional<std::string> metadata(const std::string& key) const {
    const char* v = nullptr;
    if (!detail::check(sess_session_metadata(p_, key.c_str(), &v))) return std::nullopt;
    return std::string(v);
  }
  void set_metadata(const std::string& key, const std::string& value) {
    detail::check(sess_session_set_metadata(p_, key.c_str(), value.c_str()));
  }
  void erase_metadata(const std::string& key) {
    detail::check(sess_session_set_metadata(p_, key.c_str(), nullptr));
  }
  std::string handle() const { return sess_session_handle(p_); }
  std::string csrf_token() {
    const char* t = nullptr;
    size_t len = 0;
    detail::check(sess_csrf_token(p_, &t, &len));
    return std::string(t, len);
  }
  bool verify_csrf(std::string_view token) const {
    return sess_csrf_verify(p_, token.data(), token.size()) == SESS_OK;
  }

  sess_session* get() const { return p_; }

 private:
  sess_session* p_;
};

class Request {
 public:
  explicit Request(std::string_view cookie_header) {
    detail::check(sess_request_begin(cookie_header.data(), cookie_header.size(), &p_));
  }
  ~Request() { sess_request_free(p_); }
  Request(Request&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Request& operator=(Request&& o) noexcept { std::swap(p_, o.p_); return *this; }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  Session session(const Store& store, const std::string& name) {
    sess_session* s = nullptr;
    detail::check(sess_request_session(p_, store.get(), name.c_str(), &s));
    return Session(s);
  }
  // Saves the sessions. Throws the first error; set_cookies() still holds the
  // values of the sessions that were saved.
  void finish() { detail::check(sess_request_finish(p_)); }
  std::vector<std::string> set_cookies() const {
    std::vector<std::string> out;
    for (size_t i = 0, n = sess_request_set_cookie_count(p_); i < n; ++i) {
      size_t len = 0;
      const char* v = sess_request_set_cookie(p_, i, &len);
      out.emplace_back(v, len);
    }
    return out;
  }
  sess_request* get() const { return p_; }

 private:
  sess_request* p_ = nullptr;
};

}  // namespace sessions

#endif  // SESSIONS_HPP
