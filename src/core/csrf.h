// CSRF tokens (sess_csrf_token): a per-session secret, handed out masked
// with fresh randomness on every call, as Django and Rails do, so that a
// page that reflects attacker input next to the token under compression
// (BREACH) reveals nothing that repeats from one response to the next:
//
//   token = base64url( mask (32 random bytes) | secret XOR mask )
//
// Verification unmasks and compares in constant time. The secret lives in
// the session's record (record.h, Identity) and rotates with regenerate_id.
#pragma once

#include <string>
#include <string_view>

namespace sessions::internal {

constexpr size_t kCsrfTokenLength = 86;  // base64url of 64 bytes

// A fresh secret into *secret (replaced).
void new_csrf_secret(std::string* secret);
// A masked token for `secret` into *token (replaced).
void csrf_token(std::string_view secret, std::string* token);
// True when `token` is a token of `secret`; false for anything else (no
// secret, wrong length, not base64url, another session's).
bool csrf_matches(std::string_view secret, std::string_view token);

}  // namespace sessions::internal
