#include "callback_backend.h"

#include <algorithm>
#include <cstring>

#include "error.h"

namespace sessions::internal {
namespace {

thread_local std::string backend_error;

}  // namespace

void set_backend_error(const char* message) { backend_error.assign(message ? message : ""); }

std::string take_backend_error() {
  std::string why;
  why.swap(backend_error);
  return why;
}

sess_backend_ops CallbackBackend::copy_ops(const sess_backend_ops& ops) {
  sess_backend_ops copy{};
  std::memcpy(&copy, &ops, std::min(ops.size, sizeof copy));
  copy.size = sizeof copy;
  return copy;
}

CallbackBackend::CallbackBackend(const sess_backend_ops& ops, OwnedState state,
                                 size_t load_limit)
    : ops_(copy_ops(ops)), state_(std::move(state)), load_limit_(load_limit) {
  if (ops.size < offsetof(sess_backend_ops, erase) + sizeof ops.erase)
    fail(Errc::invalid_argument, "sess_backend_ops.size is " + std::to_string(ops.size) +
                                     ": set it to sizeof(sess_backend_ops)");
  if (!ops_.load || !ops_.save || !ops_.erase)
    fail(Errc::invalid_argument, "a backend needs load, save and erase callbacks");
}

void CallbackBackend::check(const char* callback, int rc, bool may_be_not_found) const {
  const std::string why = take_backend_error();
  if (rc == SESS_OK || (may_be_not_found && rc == SESS_NOT_FOUND)) return;
  std::string message = std::string("backend ") + callback + " failed";
  if (!why.empty()) message += ": " + why;
  if (rc == SESS_E_VALUE_TOO_LARGE && std::strcmp(callback, "load") != 0)
    fail(Errc::value_too_large, message);
  if (rc != SESS_E_STORE_UNAVAILABLE)
    message += " (it returned " + std::to_string(rc) + ", taken as SESS_E_STORE_UNAVAILABLE)";
  fail(Errc::store_unavailable, message);
}

void CallbackBackend::start() {
  if (!ops_.start) return;
  backend_error.clear();
  check("start", ops_.start(state_.get()));
}

bool CallbackBackend::load(std::string_view key, int64_t now, std::string* data) {
  return load_into(key, now, data, nullptr);
}

bool CallbackBackend::load_versioned(std::string_view key, int64_t now, std::string* data,
                                     Version* version) {
  if (!ops_.save_if) return Backend::load_versioned(key, now, data, version);
  return load_into(key, now, data, version);
}

Commit CallbackBackend::save_if(std::string_view from, std::string_view to, std::string_view data,
                                int64_t now, int64_t ttl, Version expected) {
  if (!ops_.save_if) return Backend::save_if(from, to, data, now, ttl, expected);
  backend_error.clear();
  const std::string from_text(from), to_text(to);
  const int rc = ops_.save_if(state_.get(), from_text.c_str(), to_text.c_str(), data.data(),
                              data.size(), now, ttl, expected);
  if (rc == SESS_E_CONFLICT) {
    take_backend_error();
    return Commit::changed;
  }
  check("save_if", rc, /*may_be_not_found=*/true);
  return rc == SESS_NOT_FOUND ? Commit::gone : Commit::written;
}

bool CallbackBackend::load_into(std::string_view key, int64_t now, std::string* data,
                                Version* version) {
  data->clear();
  sess_sink sink{data, load_limit_};
  backend_error.clear();
  const std::string text(key);  // base64url, never a NUL: the C string is the key
  int rc = ops_.load(state_.get(), text.c_str(), now, &sink);
  check("load", rc, /*may_be_not_found=*/true);
  if (rc == SESS_NOT_FOUND) return false;
  // More than a session may hold is not a record of ours: empty data, which
  // loads as malformed and leaves the record alone.
  if (sink.overflowed) data->clear();
  if (version) *version = sink.version;
  return true;
}

void CallbackBackend::save(std::string_view key, std::string_view data, int64_t now, int64_t ttl) {
  backend_error.clear();
  const std::string text(key);  // base64url, never a NUL: the C string is the key
  check("save", ops_.save(state_.get(), text.c_str(), data.data(), data.size(), now, ttl));
}

void CallbackBackend::erase(std::string_view key) {
  backend_error.clear();
  const std::string text(key);  // base64url, never a NUL: the C string is the key
  check("erase", ops_.erase(state_.get(), text.c_str()));
}

void CallbackBackend::move(std::string_view from, std::string_view to, std::string_view data,
                           int64_t now, int64_t ttl) {
  if (!ops_.move) return Backend::move(from, to, data, now, ttl);
  backend_error.clear();
  const std::string from_text(from), to_text(to);
  check("move", ops_.move(state_.get(), from_text.c_str(), to_text.c_str(), data.data(),
                          data.size(), now, ttl));
}

}  // namespace sessions::internal
