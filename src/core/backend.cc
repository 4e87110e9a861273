#include "backend.h"

#include <cstring>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "error.h"

namespace sessions::internal {

void sha1(std::string_view data, unsigned char digest[SHA_DIGEST_LENGTH]) {
  // OpenSSL 3's one-shot SHA1() fetches the algorithm, under a lock, on
  // every call (3,000 instructions for a 200-byte record, as many as the
  // digest): the algorithm is fetched once and each thread keeps a context.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  unsigned int size = 0;
  if (!md || !context.ctx || !EVP_DigestInit_ex2(context.ctx, md, nullptr) ||
      !EVP_DigestUpdate(context.ctx, data.data(), data.size()) ||
      !EVP_DigestFinal_ex(context.ctx, digest, &size))
    fail(Errc::internal, "SHA-1 failed");
}

Version content_version(std::string_view data) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  sha1(data, digest);
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

void Backend::principal_records(std::string_view, int64_t, KeyedRecords*) {
  fail(Errc::unsupported, "this store keeps no index of sessions by principal");
}

}  // namespace sessions::internal
