// The extern "C" layer: thin handles over the C++ core. Every function that
// can fail runs its body inside guard(), so no exception crosses into C.
#include "sessions.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include <openssl/crypto.h>

#include "handles.h"
#include "msgpack_reader.h"
#include "session.h"
#include "value.h"

using sessions::internal::Errc;
using sessions::internal::Error;
using sessions::internal::fail;
using sessions::internal::Value;
using sessions::internal::capi::guard;
using sessions::internal::capi::require;
using sessions::internal::capi::set_error;

namespace sessions::internal::capi {

thread_local char last_error[512];

int set_error(Errc code, const char* message) noexcept {
  std::snprintf(last_error, sizeof(last_error), "%s", message);
  return static_cast<int>(code);
}

}  // namespace sessions::internal::capi

namespace {

// One finished request shell per thread, reused by the next
// sess_request_begin on that thread: its buffers keep their capacity, while
// every session and Set-Cookie value of the old request is gone.
thread_local std::unique_ptr<sess_request> spare_request;

sessions::internal::Session* unwrap(sess_session* s) { return reinterpret_cast<sessions::internal::Session*>(s); }
const sessions::internal::Session* unwrap(const sess_session* s) {
  return reinterpret_cast<const sessions::internal::Session*>(s);
}

std::string_view bytes_arg(const void* p, size_t len, const char* what) {
  if (!p && len) fail(Errc::invalid_argument, std::string(what) + " is NULL with a non-zero length");
  return len ? std::string_view(static_cast<const char*>(p), len) : std::string_view();
}

// Looks up `key`, returning SESS_NOT_FOUND or the value.
int lookup(const sess_session* s, const char* key, const Value** out) {
  require(s, "session");
  require(key, "key");
  *out = unwrap(s)->get(key);
  return *out ? SESS_OK : SESS_NOT_FOUND;
}

template <typename T>
int get_typed(const sess_session* s, const char* key, const T** out) {
  const Value* v = nullptr;
  int rc = lookup(s, key, &v);
  if (rc != SESS_OK) return rc;
  *out = v->get_if<T>();
  if (!*out) fail(Errc::type_mismatch, "'" + std::string(key) + "' holds another type");
  return SESS_OK;
}

// Hands a string to the caller as a malloc'd, NUL-terminated copy.
int give_string(const std::string& text, char** out, size_t* len) {
  require(out, "output pointer");
  char* copy = static_cast<char*>(std::malloc(text.size() + 1));
  if (!copy) throw std::bad_alloc();
  std::memcpy(copy, text.c_str(), text.size() + 1);
  *out = copy;
  if (len) *len = text.size();
  return SESS_OK;
}

int set_value(sess_session* s, const char* key, Value v) {
  require(s, "session");
  require(key, "key");
  unwrap(s)->set(key, std::move(v));
  return SESS_OK;
}

const char* flash_kind(const char* kind) { return kind ? kind : "_flash"; }

// Out-parameters are cleared before any check, so that every failure,
// argument checks included, leaves NULL and 0 behind (convention 5).
template <typename T>
void clear_out(T** out, size_t* len = nullptr) {
  if (out) *out = nullptr;
  if (len) *len = 0;
}

}  // namespace

extern "C" {

// ---- Library ---------------------------------------------------------------

unsigned sess_version_number(void) { return SESS_VERSION_NUMBER; }
const char* sess_version_string(void) { return SESS_VERSION_STRING; }
const char* sess_last_error(void) { return sessions::internal::capi::last_error; }
void sess_free(void* ptr) { std::free(ptr); }

const char* sess_strerror(int code) {
  switch (code) {
    case SESS_OK: return "ok";
    case SESS_NOT_FOUND: return "not found";
    case SESS_E_INVALID_ARGUMENT: return "invalid argument";
    case SESS_E_TYPE_MISMATCH: return "value has another type";
    case SESS_E_NO_MEMORY: return "out of memory";
    case SESS_E_BAD_URI: return "bad store URI";
    case SESS_E_BAD_OPTION: return "bad option";
    case SESS_E_BAD_SECRET: return "bad secret";
    case SESS_E_UNSUPPORTED: return "not supported by this store or build";
    case SESS_E_STORE_UNAVAILABLE: return "store unavailable";
    case SESS_E_COOKIE_TOO_LARGE: return "cookie too large";
    case SESS_E_VALUE_TOO_LARGE: return "session data too large";
    case SESS_E_BAD_JSON: return "bad JSON";
    case SESS_E_HEADER_TOO_LARGE: return "Cookie header too large";
    case SESS_E_STATE: return "call out of order";
    case SESS_E_INTERNAL: return "internal error";
    case SESS_E_CONFLICT: return "session changed by a concurrent request";
    case SESS_E_CSRF: return "CSRF token does not match";
    default: return "unknown error";
  }
}

const char* sess_status_name(int status) {
  switch (status) {
    case SESS_STATUS_NEW: return "new";
    case SESS_STATUS_VALID: return "valid";
    case SESS_STATUS_EXPIRED: return "expired";
    case SESS_STATUS_TAMPERED: return "tampered";
    case SESS_STATUS_UNKNOWN_KEY: return "unknown_key";
    case SESS_STATUS_MALFORMED: return "malformed";
    case SESS_STATUS_UNKNOWN_ID: return "unknown_id";
    case SESS_STATUS_REVOKED: return "revoked";
    default: return "unknown";
  }
}

// ---- Configuration ---------------------------------------------------------

int sess_config_new(sess_config** out) {
  clear_out(out);
  return guard([&]() -> int {
    require(out, "output pointer");
    *out = new sess_config();
    return SESS_OK;
  });
}

void sess_config_free(sess_config* config) {
  if (!config) return;
  for (auto& secret : config->rep.secrets) OPENSSL_cleanse(secret.data(), secret.size());
  delete config;
}

int sess_config_add_secret(sess_config* config, const void* secret, size_t len) {
  return guard([&]() -> int {
    require(config, "config");
    std::string_view s = bytes_arg(secret, len, "secret");
    if (s.size() < SESS_MIN_SECRET)
      fail(Errc::bad_secret, "secret is " + std::to_string(s.size()) +
                                 " bytes; at least 32 are required");
    config->rep.secrets.emplace_back(s);
    return SESS_OK;
  });
}

int sess_config_set(sess_config* config, const char* name, const char* value) {
  return guard([&]() -> int {
    require(config, "config");
    require(name, "name");
    require(value, "value");
    config->rep.set(name, value);
    return SESS_OK;
  });
}

// ---- Stores ----------------------------------------------------------------

int sess_store_open(const char* uri, const sess_config* config, sess_store** out) {
  clear_out(out);
  return guard([&]() -> int {
    require(uri, "uri");
    require(config, "config");
    require(out, "output pointer");
    auto store = sessions::internal::Store::open(uri, config->rep);
    *out = new sess_store{std::move(store)};
    return SESS_OK;
  });
}

int sess_store_check(const char* uri, const sess_config* config) {
  return guard([&]() -> int {
    require(uri, "uri");
    require(config, "config");
    sessions::internal::Store::check(uri, config->rep);
    return SESS_OK;
  });
}

int sess_store_check_name(const char* uri, const sess_config* config, const char* name) {
  return guard([&]() -> int {
    require(uri, "uri");
    require(config, "config");
    require(name, "name");
    sessions::internal::Store::check_name(uri, config->rep, name);
    return SESS_OK;
  });
}

void sess_store_close(sess_store* store) { delete store; }

int sess_store_session_exists(sess_store* store, const char* id) {
  return guard([&]() -> int {
    require(store, "store");
    require(id, "id");
    sessions::internal::Store& s = *store->rep;
    if (!s.backend()) fail(Errc::unsupported, "cookie: keeps no records: the session is the cookie");
    std::string key, data;
    if (!s.record_key(id, &key)) return SESS_NOT_FOUND;
    return s.backend()->load(key, s.now(), &data) ? SESS_OK : SESS_NOT_FOUND;
  });
}

// ---- Requests --------------------------------------------------------------

int sess_request_begin(const char* cookie_header, size_t len, sess_request** out) {
  clear_out(out);
  return guard([&]() -> int {
    require(out, "output pointer");
    std::string_view header = bytes_arg(cookie_header, len, "cookie_header");
    if (spare_request) {
      spare_request->rep.reset(header);  // throws before taking it for a bad header
      *out = spare_request.release();
    } else {
      *out = new sess_request(header);
    }
    return SESS_OK;
  });
}

int sess_request_session(sess_request* req, sess_store* store, const char* name,
                         sess_session** out) {
  clear_out(out);
  return guard([&]() -> int {
    require(req, "request");
    require(store, "store");
    require(name, "name");
    require(out, "output pointer");
    sessions::internal::Session& s = req->rep.session(store->rep, name);
    *out = reinterpret_cast<sess_session*>(&s);
    return SESS_OK;
  });
}

int sess_request_finish(sess_request* req) {
  return guard([&]() -> int {
    require(req, "request");
    std::string message;
    Errc rc = req->rep.finish(&message);
    if (rc != Errc::ok) return set_error(rc, message.c_str());
    return SESS_OK;
  });
}

size_t sess_request_set_cookie_count(const sess_request* req) {
  return req ? req->rep.set_cookie_count() : 0;
}

const char* sess_request_set_cookie(const sess_request* req, size_t i, size_t* len) {
  if (len) *len = 0;
  if (!req || i >= req->rep.set_cookie_count()) return nullptr;
  const std::string& line = req->rep.set_cookie(i);
  if (len) *len = line.size();
  return line.c_str();
}

void sess_request_free(sess_request* req) {
  if (!req) return;
  req->rep.reset("");  // ends the sessions (and their store references) now
  if (!spare_request) spare_request.reset(req);
  else delete req;
}

// ---- Session metadata ------------------------------------------------------

const char* sess_session_name(const sess_session* s) { return s ? unwrap(s)->name().c_str() : ""; }
const char* sess_session_id(const sess_session* s) { return s ? unwrap(s)->id_text().c_str() : ""; }
int sess_session_status(const sess_session* s) { return s ? unwrap(s)->status() : SESS_STATUS_NEW; }
int sess_session_is_new(const sess_session* s) { return s ? unwrap(s)->is_new() : 1; }
int sess_session_is_modified(const sess_session* s) { return s ? unwrap(s)->is_modified() : 0; }
int64_t sess_session_created(const sess_session* s) { return s ? unwrap(s)->created() : 0; }
int64_t sess_session_last_seen(const sess_session* s) { return s ? unwrap(s)->last_seen() : 0; }

int sess_session_regenerate_id(sess_session* s) {
  return guard([&]() -> int {
    require(s, "session");
    unwrap(s)->regenerate_id();
    return SESS_OK;
  });
}

int sess_session_touch(sess_session* s) {
  return guard([&]() -> int {
    require(s, "session");
    unwrap(s)->touch();
    return SESS_OK;
  });
}

int sess_session_destroy(sess_session* s) {
  return guard([&]() -> int {
    require(s, "session");
    unwrap(s)->destroy();
    return SESS_OK;
  });
}

int sess_session_set_option(sess_session* s, const char* name, const char* value) {
  return guard([&]() -> int {
    require(s, "session");
    require(name, "name");
    require(value, "value");
    unwrap(s)->set_option(name, value);
    return SESS_OK;
  });
}

// ---- Values ----------------------------------------------------------------

int sess_get_type(const sess_session* s, const char* key, int* type) {
  return guard([&]() -> int {
    require(type, "output pointer");
    const Value* v = nullptr;
    int rc = lookup(s, key, &v);
    if (rc == SESS_OK) *type = static_cast<int>(v->type());
    return rc;
  });
}

int sess_get(const sess_session* s, const char* key, sess_value* out) {
  if (out) *out = sess_value{};
  return guard([&]() -> int {
    require(out, "output pointer");
    const Value* v = nullptr;
    int rc = lookup(s, key, &v);
    if (rc != SESS_OK) return rc;
    out->type = static_cast<int>(v->type());
    if (auto* b = v->get_if<bool>()) out->boolean = *b ? 1 : 0;
    else if (auto* i = v->get_if<int64_t>()) out->integer = *i;
    else if (auto* d = v->get_if<double>()) out->real = *d;
    else if (auto* str = v->get_if<std::string>()) out->data = str->data(), out->len = str->size();
    else if (auto* bytes = v->get_if<sessions::internal::Bytes>())
      out->data = bytes->data.data(), out->len = bytes->data.size();
    return SESS_OK;
  });
}

int sess_get_bool(const sess_session* s, const char* key, int* out) {
  return guard([&]() -> int {
    require(out, "output pointer");
    const bool* v = nullptr;
    int rc = get_typed(s, key, &v);
    if (rc == SESS_OK) *out = *v ? 1 : 0;
    return rc;
  });
}

int sess_get_int(const sess_session* s, const char* key, int64_t* out) {
  return guard([&]() -> int {
    require(out, "output pointer");
    const int64_t* v = nullptr;
    int rc = get_typed(s, key, &v);
    if (rc == SESS_OK) *out = *v;
    return rc;
  });
}

int sess_get_double(const sess_session* s, const char* key, double* out) {
  return guard([&]() -> int {
    require(out, "output pointer");
    const double* v = nullptr;
    int rc = get_typed(s, key, &v);
    if (rc == SESS_OK) *out = *v;
    return rc;
  });
}

int sess_get_str(const sess_session* s, const char* key, const char** out, size_t* len) {
  clear_out(out, len);
  return guard([&]() -> int {
    require(out, "output pointer");
    const std::string* v = nullptr;
    int rc = get_typed(s, key, &v);
    if (rc == SESS_OK) {
      *out = v->c_str();
      if (len) *len = v->size();
    }
    return rc;
  });
}

int sess_get_bytes(const sess_session* s, const char* key, const void** out, size_t* len) {
  clear_out(out, len);
  return guard([&]() -> int {
    require(out, "output pointer");
    require(len, "length pointer");
    const sessions::internal::Bytes* v = nullptr;
    int rc = get_typed(s, key, &v);
    if (rc == SESS_OK) {
      *out = v->data.c_str();
      *len = v->data.size();
    }
    return rc;
  });
}

int sess_get_json(const sess_session* s, const char* key, char** out, size_t* len) {
  clear_out(out, len);
  return guard([&]() -> int {
    require(out, "output pointer");
    const Value* v = nullptr;
    int rc = lookup(s, key, &v);
    if (rc != SESS_OK) return rc;
    return give_string(sessions::internal::to_json(*v), out, len);
  });
}

int sess_get_msgpack(const sess_session* s, const char* key, char** out, size_t* len) {
  clear_out(out, len);
  return guard([&]() -> int {
    require(out, "output pointer");
    const Value* v = nullptr;
    int rc = lookup(s, key, &v);
    if (rc != SESS_OK) return rc;
    return give_string(sessions::internal::to_msgpack(*v), out, len);
  });
}

int sess_set_msgpack(sess_session* s, const char* key, const void* data, size_t len) {
  return guard([&]() -> int {
    Value v;
    if (!sessions::internal::from_msgpack(bytes_arg(static_cast<const char*>(data), len, "data"), &v))
      sessions::internal::fail(sessions::internal::Errc::invalid_argument,
                     "not one MessagePack value of the session model (nil, bool, int64, float, "
                     "UTF-8 str, bin, array, map with str keys; nesting <= 24)");
    return set_value(s, key, std::move(v));
  });
}

int sess_set_nil(sess_session* s, const char* key) {
  return guard([&]() -> int { return set_value(s, key, Value()); });
}
int sess_set_bool(sess_session* s, const char* key, int value) {
  return guard([&]() -> int { return set_value(s, key, Value(value != 0)); });
}
int sess_set_int(sess_session* s, const char* key, int64_t value) {
  return guard([&]() -> int { return set_value(s, key, Value(value)); });
}
int sess_set_double(sess_session* s, const char* key, double value) {
  return guard([&]() -> int { return set_value(s, key, Value(value)); });
}
int sess_set_str(sess_session* s, const char* key, const char* value, size_t len) {
  return guard([&]() -> int { return set_value(s, key, Value(std::string(bytes_arg(value, len, "value")))); });
}
int sess_set_bytes(sess_session* s, const char* key, const void* value, size_t len) {
  return guard([&]() -> int {
    return set_value(s, key, Value(sessions::internal::Bytes{std::string(bytes_arg(value, len, "value"))}));
  });
}
int sess_set_json(sess_session* s, const char* key, const char* json, size_t len) {
  return guard([&]() -> int { return set_value(s, key, sessions::internal::from_json(bytes_arg(json, len, "json"))); });
}

int sess_delete(sess_session* s, const char* key) {
  return guard([&]() -> int {
    require(s, "session");
    require(key, "key");
    unwrap(s)->erase(key);
    return SESS_OK;
  });
}

int sess_clear(sess_session* s) {
  return guard([&]() -> int {
    require(s, "session");
    unwrap(s)->clear();
    return SESS_OK;
  });
}

size_t sess_count(const sess_session* s) { return s ? unwrap(s)->count() : 0; }

int sess_key_at(const sess_session* s, size_t i, const char** key, size_t* len) {
  clear_out(key, len);
  return guard([&]() -> int {
    require(s, "session");
    require(key, "output pointer");
    const auto& keys = unwrap(s)->keys();
    if (i >= keys.size()) return SESS_NOT_FOUND;
    *key = keys[i].c_str();
    if (len) *len = keys[i].size();
    return SESS_OK;
  });
}

// ---- Flashes ---------------------------------------------------------------

int sess_add_flash_str(sess_session* s, const char* kind, const char* value, size_t len) {
  return guard([&]() -> int {
    require(s, "session");
    unwrap(s)->add_flash(flash_kind(kind), Value(std::string(bytes_arg(value, len, "value"))));
    return SESS_OK;
  });
}

int sess_add_flash_json(sess_session* s, const char* kind, const char* json, size_t len) {
  return guard([&]() -> int {
    require(s, "session");
    unwrap(s)->add_flash(flash_kind(kind), sessions::internal::from_json(bytes_arg(json, len, "json")));
    return SESS_OK;
  });
}

int sess_flashes_json(sess_session* s, const char* kind, char** out, size_t* len) {
  clear_out(out, len);
  return guard([&]() -> int {
    require(s, "session");
    require(out, "output pointer");
    Value flashes(unwrap(s)->take_flashes(flash_kind(kind)));
    return give_string(sessions::internal::to_json(flashes), out, len);
  });
}

}  // extern "C"
