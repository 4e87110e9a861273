#include "csrf.h"

#include <openssl/crypto.h>

#include "base64url.h"
#include "random.h"
#include "record.h"

namespace sessions::internal {

constexpr size_t kSecret = Identity::kCsrfSecretSize;

void new_csrf_secret(std::string* secret) {
  secret->resize(kSecret);
  random_bytes(secret->data(), kSecret);
}

void csrf_token(std::string_view secret, std::string* token) {
  unsigned char raw[2 * kSecret];
  random_bytes(raw, kSecret);
  for (size_t i = 0; i < kSecret; ++i)
    raw[kSecret + i] = raw[i] ^ static_cast<unsigned char>(secret[i]);
  token->clear();
  base64url_encode(std::string_view(reinterpret_cast<char*>(raw), sizeof raw), token);
}

bool csrf_matches(std::string_view secret, std::string_view token) {
  if (secret.size() != kSecret || token.size() != kCsrfTokenLength) return false;
  std::string raw;
  if (!base64url_decode(token, &raw) || raw.size() != 2 * kSecret) return false;
  unsigned char unmasked[kSecret];
  for (size_t i = 0; i < kSecret; ++i)
    unmasked[i] = static_cast<unsigned char>(raw[i] ^ raw[kSecret + i]);
  return CRYPTO_memcmp(unmasked, secret.data(), kSecret) == 0;
}

}  // namespace sessions::internal
