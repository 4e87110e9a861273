#include "backend.h"

#include <cstring>

#include <openssl/sha.h>

namespace sessions::internal {

Version content_version(std::string_view data) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  Version v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | digest[i];  // big-endian: the hex's first 16 digits
  return v;
}

bool Backend::load_versioned(std::string_view key, int64_t now, std::string* data,
                             Version* version) {
  if (!load(key, now, data)) return false;
  *version = content_version(*data);
  return true;
}

Commit Backend::save_if(std::string_view from, std::string_view to, std::string_view data,
                        int64_t now, int64_t ttl, Version expected) {
  std::string current;
  Version version = 0;
  if (!load_versioned(from, now, &current, &version)) return Commit::gone;
  if (version != expected) return Commit::changed;
  if (from == to) save(to, data, now, ttl);
  else move(from, to, data, now, ttl);
  return Commit::written;
}

}  // namespace sessions::internal
