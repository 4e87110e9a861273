// What the C ABI's source files share: the handles' definitions, and the
// guard that keeps every exception on the C++ side.
#pragma once

#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "error.h"
#include "request.h"
#include "sessions.h"
#include "store.h"

struct sess_config {
  sessions::internal::Config rep;
};
struct sess_store {
  std::shared_ptr<sessions::internal::Store> rep;
};
struct sess_request {
  explicit sess_request(std::string_view header) : rep(header) {}
  sessions::internal::Request rep;
};
// sess_session is never defined: a sess_session* is a sessions::internal::Session*
// owned by its request.

namespace sessions::internal::capi {

// Records the detail for sess_last_error() and returns the code. Never
// allocates (a fixed thread-local buffer, as in hiredis).
int set_error(Errc code, const char* message) noexcept;

template <typename Body>
int guard(Body&& body) noexcept {
  try {
    return body();
  } catch (const Error& e) {
    return set_error(e.code(), e.what());
  } catch (const std::bad_alloc&) {
    return set_error(Errc::no_memory, "out of memory");
  } catch (const std::exception& e) {
    return set_error(Errc::internal, e.what());
  } catch (...) {
    return set_error(Errc::internal, "unknown exception");
  }
}

template <typename T>
void require(const T* p, const char* what) {
  if (!p) fail(Errc::invalid_argument, std::string(what) + " is NULL");
}

}  // namespace sessions::internal::capi
