// base64 without padding in the URL-safe alphabet (RFC 4648 section 5), the
// cookie encoding, and the standard alphabet with padding, for bytes in JSON.
#pragma once

#include <string>
#include <string_view>

namespace sessions::internal {

void base64url_encode(std::string_view in, std::string* out);  // appends
// Strict: refuses padding, other alphabets and non-zero trailing bits, so every
// value has exactly one encoding.
bool base64url_decode(std::string_view in, std::string* out);  // replaces
std::string base64_std_encode(std::string_view in);

// The SSSE3 paths are used when the CPU has them; tests also run the scalar
// code by switching them off. Not thread-safe: tests only.
void base64url_force_scalar_for_testing(bool scalar);

}  // namespace sessions::internal
