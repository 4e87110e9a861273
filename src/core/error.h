// Errors inside the core. The numeric values are the C ABI's SESS_* codes, so
// the C layer converts with a cast and nothing else.
#pragma once

#include <stdexcept>
#include <string>

#include "sessions.h"

namespace sessions::internal {

enum class Errc : int {
  ok = SESS_OK,
  not_found = SESS_NOT_FOUND,
  invalid_argument = SESS_E_INVALID_ARGUMENT,
  type_mismatch = SESS_E_TYPE_MISMATCH,
  no_memory = SESS_E_NO_MEMORY,
  bad_uri = SESS_E_BAD_URI,
  bad_option = SESS_E_BAD_OPTION,
  bad_secret = SESS_E_BAD_SECRET,
  unsupported = SESS_E_UNSUPPORTED,
  store_unavailable = SESS_E_STORE_UNAVAILABLE,
  cookie_too_large = SESS_E_COOKIE_TOO_LARGE,
  value_too_large = SESS_E_VALUE_TOO_LARGE,
  bad_json = SESS_E_BAD_JSON,
  header_too_large = SESS_E_HEADER_TOO_LARGE,
  state = SESS_E_STATE,
  internal = SESS_E_INTERNAL,
  conflict = SESS_E_CONFLICT,
  csrf = SESS_E_CSRF,
};

// Thrown for real errors only; decode failures of hostile cookies are
// statuses, not exceptions, so the hot path never throws on bad input.
class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

[[noreturn]] inline void fail(Errc code, const std::string& message) { throw Error(code, message); }

}  // namespace sessions::internal
