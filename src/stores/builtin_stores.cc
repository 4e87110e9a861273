#include "builtin_stores.h"

#include "error.h"

namespace sessions::internal {

// cookie: has no backend: the session lives in the cookie.
Scheme cookie_scheme() {
  return {{"cookie"}, {}, nullptr, [](const OpenRequest& r) -> std::unique_ptr<Backend> {
            if (!r.uri.rest.empty()) fail(Errc::bad_uri, "cookie: takes no location, only options");
            return nullptr;
          }};
}

void add_builtin_stores(Registry* registry) {
  for (auto scheme : {cookie_scheme, memory_scheme, file_scheme, sqlite_scheme, redis_scheme,
                      memcached_scheme, postgres_scheme, mongodb_scheme})
    registry->add(scheme());
}

}  // namespace sessions::internal
