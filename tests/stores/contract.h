// Checks of the stores that reach inside them (a foreign value under a
// session's key, hash_keys seen from the backend) and the round trip and
// threaded cycles that store-specific variants (credentials, sockets, small
// pools) reuse. What every store must do, seen from the public API, is the
// conformance kit's (include/sessions_conformance.h, tests/conformance).
#pragma once

#include <cstdint>
#include <string>

#include "harness.h"

namespace sessions::testing {

// Opens a store and returns the error code it fails with (Errc::ok if none);
// the message goes to the test's log.
Errc open_error(const std::string& uri, OptionList options = {});

// A request that sets user_id in session "sid"; returns the session's ID.
std::string log_in(Fixture& f, Browser& b, int64_t user_id = 42);

// Values, flashes and a second request that reads them back.
void check_round_trip(const std::string& uri);
// A value under the session's key that this library did not write: the
// request gets a new session (status malformed) and the value is left alone.
void check_foreign_value(const std::string& uri);
// With hash_keys, the store holds nothing under the ID a cookie carries.
void check_hash_keys(const std::string& uri);
// 8 threads of request cycles, each thread with its own browser.
void check_concurrent_cycles(const std::string& uri);

}  // namespace sessions::testing
