// The stores built into the library. Each store file declares its scheme
// here (its names, the options it takes, how to open it) and defines it next
// to its backend; builtin_stores.cc adds them to the registry.
#pragma once

#include "registry.h"

namespace sessions::internal {

Scheme cookie_scheme();  // no backend: the session is in the cookie
Scheme memory_scheme();
Scheme file_scheme();
Scheme sqlite_scheme();
Scheme redis_scheme();
Scheme memcached_scheme();
Scheme postgres_scheme();
Scheme mongodb_scheme();

}  // namespace sessions::internal
