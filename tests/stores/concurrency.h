// Parallel requests on one session, the lost-update case: what
// concurrency=merge and concurrency=cas promise, checked on each server-side
// store against its real server (docs/stores.md#concurrent-requests-on-one-session).
#pragma once

#include <string>

#include "harness.h"

namespace sessions::testing {

// 8 threads, 200 rounds, one session: each round each thread sets its own
// new key (merge, the default); every one of the 1,600 keys survives.
void check_merge_keeps_every_key(const std::string& uri, OptionList options = {});
// 8 threads increment one counter under cas, retrying on SESS_E_CONFLICT:
// the counter ends at the exact total.
void check_cas_counter(const std::string& uri, OptionList options = {});
// 8 threads add flashes while another takes them: each is shown exactly once.
void check_merge_flashes_once(const std::string& uri, OptionList options = {});
// regenerate_id racing with writers on the old ID: under merge no write the
// store acknowledged is lost to the move, and the moved session loads.
void check_merge_with_regenerate(const std::string& uri, OptionList options = {});
// All of the above.
void check_concurrency(const std::string& uri, OptionList options = {});

}  // namespace sessions::testing
