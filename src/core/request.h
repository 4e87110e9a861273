// One HTTP request: its Cookie: header, the sessions it opened (gorilla's
// Registry: several names, several stores) and the Set-Cookie values it
// produces when it finishes. Belongs to one thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cookie.h"
#include "error.h"
#include "session.h"

namespace sessions::internal {

class Request {
 public:
  explicit Request(std::string_view cookie_header) : jar_(cookie_header) {}

  // Starts over with another header, keeping only the buffers' capacity: the
  // sessions and Set-Cookie values of the previous request are destroyed.
  void reset(std::string_view cookie_header);

  // The session stored under cookie `name`, loaded on first use. Throws
  // Errc::bad_option for a name that is not a cookie token,
  // Errc::invalid_argument for a name already used with another store,
  // Errc::store_unavailable, or Errc::state after finish.
  Session& session(const std::shared_ptr<Store>& store, std::string_view name);

  // Saves every session; returns the first error (with its message in
  // *message) while still saving the others.
  Errc finish(std::string* message);
  bool finished() const { return finished_; }
  size_t set_cookie_count() const { return set_cookies_.size(); }
  const std::string& set_cookie(size_t i) const { return set_cookies_[i]; }

 private:
  CookieJar jar_;
  // The first session_count_ are this request's; the rest are released
  // Session objects kept from an earlier request for their buffers.
  std::vector<std::unique_ptr<Session>> sessions_;
  size_t session_count_ = 0;
  SetCookieLines set_cookies_;
  bool finished_ = false;
};

}  // namespace sessions::internal
