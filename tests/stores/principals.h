// Principals on one store: three sessions of one user listed, all but one
// ended (the ended ones load as unknown_id, or revoked on stores that revoke
// by stamps), the kept one still valid, a later login unaffected; and the
// same done by another process (docs/api.md#principals).
#pragma once

#include <string>

#include "harness.h"

namespace sessions::testing {

// Within one process: list, end all but one, end one by handle, end all.
void check_principals(const std::string& uri, OptionList options = {});
// Another process (fork) that opens the same store lists the sessions and
// ends them; this process then sees them ended (after revocation_cache
// seconds for stores that revoke by stamps, and not before).
void check_principals_across_processes(const std::string& uri, OptionList options = {});

}  // namespace sessions::testing
