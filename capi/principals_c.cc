// The C ABI of principals (listing and ending a principal's sessions) and of
// CSRF tokens: thin handles over src/core/principals.h and csrf.h.
#include <string>
#include <vector>

#include "handles.h"
#include "principals.h"
#include "session.h"
#include "value.h"

using sessions::internal::Errc;
using sessions::internal::fail;
using sessions::internal::Session;
using sessions::internal::capi::guard;
using sessions::internal::capi::require;

struct sess_session_list {
  std::vector<sessions::internal::SessionInfo> sessions;
  std::vector<std::string> metadata_json;  // one per session
};

namespace {

Session* unwrap(sess_session* s) { return reinterpret_cast<Session*>(s); }
const Session* unwrap(const sess_session* s) { return reinterpret_cast<const Session*>(s); }

// A session's scratch for the borrowed strings these calls return (handle,
// token): valid until the next call on the session (convention 5).
thread_local std::string borrowed_handle, borrowed_token;

std::string metadata_json(const std::vector<std::pair<std::string, std::string>>& metadata) {
  sessions::internal::Map map;
  for (const auto& [key, value] : metadata) map.emplace(key, sessions::internal::Value(value));
  return sessions::internal::to_json(sessions::internal::Value(std::move(map)));
}

const char* principal_arg(const char* principal) {
  require(principal, "principal");
  if (!*principal) fail(Errc::invalid_argument, "the principal is empty");
  return principal;
}

}  // namespace

extern "C" {

int sess_session_set_principal(sess_session* s, const char* principal) {
  return guard([&]() -> int {
    require(s, "session");
    unwrap(s)->set_principal(principal ? principal : "");
    return SESS_OK;
  });
}

const char* sess_session_principal(const sess_session* s) {
  return s ? unwrap(s)->principal().c_str() : "";
}

int sess_session_set_metadata(sess_session* s, const char* key, const char* value) {
  return guard([&]() -> int {
    require(s, "session");
    require(key, "key");
    std::string_view v = value ? value : "";
    unwrap(s)->set_metadata(key, value ? &v : nullptr);
    return SESS_OK;
  });
}

int sess_session_metadata(const sess_session* s, const char* key, const char** value) {
  if (value) *value = nullptr;
  return guard([&]() -> int {
    require(s, "session");
    require(key, "key");
    require(value, "output pointer");
    const std::string* found = unwrap(s)->metadata(key);
    if (!found) return SESS_NOT_FOUND;
    *value = found->c_str();
    return SESS_OK;
  });
}

const char* sess_session_handle(const sess_session* s) {
  if (!s || !unwrap(s)->handle(&borrowed_handle)) return "";
  return borrowed_handle.c_str();
}

int sess_store_list_sessions(sess_store* store, const char* principal, sess_session_list** out) {
  if (out) *out = nullptr;
  return guard([&]() -> int {
    require(store, "store");
    require(out, "output pointer");
    auto list = std::make_unique<sess_session_list>();
    list->sessions = sessions::internal::list_sessions(*store->rep, principal_arg(principal));
    for (const auto& info : list->sessions) list->metadata_json.push_back(metadata_json(info.metadata));
    *out = list.release();
    return SESS_OK;
  });
}

size_t sess_session_list_count(const sess_session_list* list) {
  return list ? list->sessions.size() : 0;
}

int sess_session_list_get(const sess_session_list* list, size_t i, sess_session_info* out) {
  if (out) *out = sess_session_info{};
  return guard([&]() -> int {
    require(list, "list");
    require(out, "output pointer");
    if (i >= list->sessions.size()) return SESS_NOT_FOUND;
    const auto& info = list->sessions[i];
    *out = {info.handle.c_str(), info.created, info.last_seen, list->metadata_json[i].c_str()};
    return SESS_OK;
  });
}

void sess_session_list_free(sess_session_list* list) { delete list; }

int sess_store_end_sessions(sess_store* store, const char* principal, sess_session* keep,
                            int64_t* ended) {
  return guard([&]() -> int {
    require(store, "store");
    const char* p = principal_arg(principal);
    if (keep && unwrap(keep)->store() != store->rep)
      fail(Errc::invalid_argument, "the session to keep belongs to another store");
    const int64_t n = sessions::internal::end_sessions(*store->rep, p, keep ? unwrap(keep) : nullptr);
    if (ended) *ended = n;
    return SESS_OK;
  });
}

int sess_store_end_session(sess_store* store, const char* principal, const char* handle) {
  return guard([&]() -> int {
    require(store, "store");
    require(handle, "handle");
    return sessions::internal::end_session(*store->rep, principal_arg(principal), handle)
               ? SESS_OK
               : SESS_NOT_FOUND;
  });
}

int sess_csrf_token(sess_session* s, const char** token, size_t* len) {
  if (token) *token = nullptr;
  if (len) *len = 0;
  return guard([&]() -> int {
    require(s, "session");
    require(token, "output pointer");
    unwrap(s)->csrf_token(&borrowed_token);
    *token = borrowed_token.c_str();
    if (len) *len = borrowed_token.size();
    return SESS_OK;
  });
}

int sess_csrf_verify(const sess_session* s, const char* token, size_t len) {
  return guard([&]() -> int {
    require(s, "session");
    if (!token || len == 0 || !unwrap(s)->csrf_matches(std::string_view(token, len)))
      return sessions::internal::capi::set_error(Errc::csrf, "the CSRF token does not match this session's");
    return SESS_OK;
  });
}

}  // extern "C"
