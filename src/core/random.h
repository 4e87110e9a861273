// Cryptographically secure random bytes for session IDs and GCM nonces.
#pragma once

#include <cstddef>

namespace sessions::internal {

// Fills `out` from OpenSSL's CSPRNG. One RAND_bytes call costs more than a
// whole AES-GCM seal of a cookie, so bytes are drawn in 4 KiB batches into a
// per-thread buffer. Each byte is handed out once; after fork() the child
// discards what the parent had buffered, so two processes never share output.
// Throws Errc::internal if the CSPRNG fails.
void random_bytes(void* out, size_t len);

}  // namespace sessions::internal
