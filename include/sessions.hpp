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

class Store {
 public:
  static Store open(const std::string& uri, const Config& config) {
    sess_store* p = nullptr;
    detail::check(sess_store_open(uri.c_str(), config.get(), &p));
    return Store(p);
  }
  ~Store() { sess_store_close(p_); }
  Store(Store&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Store& operator=(Store&& o) noexcept { std::swap(p_, o.p_); return *this; }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  sess_store* get() const { return p_; }

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
