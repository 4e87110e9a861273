// Seals a payload into a cookie value and opens it again. The format is in
// docs/format.md; the short version:
//
//   base64url( version | key id (4) | nonce (12) | AES-256-GCM(ts, max_age, payload) | tag (16) )
//   base64url( version | key id (4) | ts | max_age | payload | HMAC-SHA256 tag (32) )
//
// The cookie name is authenticated with every value, so a value cannot be
// moved to another cookie. The key id picks the secret: no trial decryption.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sessions.h"

namespace sessions::internal {

enum class CodecMode { aes_gcm, hmac_sha256 };

// What decode learns about how a cookie value was sealed.
struct Sealed {
  int64_t at = 0;            // when
  int64_t max_age = 0;       // the max age sealed with it; 0 = none
  bool current_key = false;  // by the key that seals today (not a rotated-out one)
};

// Keys derived from one secret by HKDF-SHA256; never the secret itself.
struct CodecKey {
  uint32_t id;   // the key id written into cookies
  uint64_t uid;  // process-unique, so per-thread cipher caches never mix keys
  unsigned char cipher_key[32];
  unsigned char mac_key[32];
};

class Codec {
 public:
  // Throws Errc::bad_secret: no secret, one shorter than SESS_MIN_SECRET bytes,
  // or the same secret twice.
  Codec(CodecMode mode, const std::vector<std::string>& secrets);
  ~Codec();
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  // Appends the sealed value to *out. max_age 0 means no expiry at this layer.
  void encode(std::string_view name, std::string_view payload, int64_t now, int64_t max_age,
              std::string* out) const;

  // Opens `value` into *buffer (replaced). Returns a SESS_STATUS_* code; on
  // SESS_STATUS_VALID *payload views the payload inside *buffer and *sealed
  // (when given) says how it was sealed.
  int decode(std::string_view name, std::string_view value, int64_t now, std::string* buffer,
             std::string_view* payload, Sealed* sealed = nullptr) const;

  CodecMode mode() const { return mode_; }

 private:
  const CodecKey* find_key(uint32_t id) const;

  CodecMode mode_;
  std::vector<CodecKey> keys_;  // keys_[0] seals
};

}  // namespace sessions::internal
