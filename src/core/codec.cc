#include "codec.h"

#include <atomic>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "base64url.h"
#include "bytes.h"
#include "error.h"
#include "random.h"
#include "times.h"

namespace sessions::internal {
namespace {

constexpr unsigned char kVersionAesGcm = 1;
constexpr unsigned char kVersionHmac = 2;
constexpr size_t kHeaderSize = 5;  // version + key id
constexpr size_t kNonceSize = 12;
constexpr size_t kGcmTagSize = 16;
constexpr size_t kHmacTagSize = 32;
constexpr size_t kTimesSize = 12;  // sealed-at (8) + max age (4), big-endian

std::atomic<uint64_t> next_key_uid{1};


void hkdf_sha256(std::string_view secret, const char* info, unsigned char* out, size_t out_len) {
  static const char kSalt[] = "libsessions/v1";
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kSalt),
                                        sizeof(kSalt) - 1),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info),
                                        std::strlen(info)),
      OSSL_PARAM_construct_end()};
  bool ok = ctx && EVP_KDF_derive(ctx, out, out_len, params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok) fail(Errc::internal, "HKDF-SHA256 failed");
}

// AES key schedules are set up once per thread and key, then each seal or
// open only sets a new nonce: re-keying a context costs as much as sealing a
// whole cookie.
class CipherCache {
 public:
  ~CipherCache() {
    for (auto& slot : slots_) {
      EVP_CIPHER_CTX_free(slot.seal);
      EVP_CIPHER_CTX_free(slot.open);
    }
  }
  EVP_CIPHER_CTX* seal(const CodecKey& key) { return slot_for(key).seal; }
  EVP_CIPHER_CTX* open(const CodecKey& key) { return slot_for(key).open; }

 private:
  struct Slot {
    uint64_t uid = 0;
    EVP_CIPHER_CTX* seal = nullptr;
    EVP_CIPHER_CTX* open = nullptr;
  };

  Slot& slot_for(const CodecKey& key) {
    for (auto& slot : slots_)
      if (slot.uid == key.uid) return slot;
    Slot& slot = slots_[next_victim_++ % kSlots];
    slot.uid = 0;
    if (!slot.seal) slot.seal = EVP_CIPHER_CTX_new();
    if (!slot.open) slot.open = EVP_CIPHER_CTX_new();
    if (!slot.seal || !slot.open ||
        EVP_EncryptInit_ex(slot.seal, EVP_aes_256_gcm(), nullptr, key.cipher_key, nullptr) != 1 ||
        EVP_DecryptInit_ex(slot.open, EVP_aes_256_gcm(), nullptr, key.cipher_key, nullptr) != 1)
      fail(Errc::internal, "AES-256-GCM initialisation failed");
    slot.uid = key.uid;
    return slot;
  }

  static constexpr unsigned kSlots = 8;
  Slot slots_[kSlots];
  unsigned next_victim_ = 0;
};

// Everything the codec keeps per thread, in one thread_local: in a shared
// library each thread_local access is a call (__tls_get_addr).
struct ThreadState {
  CipherCache ciphers;
};
thread_local ThreadState thread_state;

void hmac_tag(const CodecKey& key, std::string_view name, const unsigned char* data, size_t len,
              unsigned char* tag) {
  // The name is length-prefixed so (payload, name) pairs cannot be re-split.
  unsigned char name_len[4];
  store_be32(name_len, uint32_t(name.size()));
  unsigned int out_len = 0;
  static thread_local std::string scratch;
  scratch.assign(reinterpret_cast<const char*>(name_len), 4);
  scratch.append(name);
  scratch.append(reinterpret_cast<const char*>(data), len);
  if (!HMAC(EVP_sha256(), key.mac_key, sizeof(key.mac_key),
            reinterpret_cast<const unsigned char*>(scratch.data()), scratch.size(), tag, &out_len))
    fail(Errc::internal, "HMAC-SHA256 failed");
}

// GCM's associated data: the header (version, key id), then the cookie name,
// which validate_cookie_name bounds to 256 bytes.
size_t associated_data(const unsigned char* header, std::string_view name, unsigned char* out,
                       size_t capacity) {
  if (kHeaderSize + name.size() > capacity) fail(Errc::invalid_argument, "cookie name too long");
  std::memcpy(out, header, kHeaderSize);
  if (!name.empty()) std::memcpy(out + kHeaderSize, name.data(), name.size());
  return kHeaderSize + name.size();
}

}  // namespace

Codec::Codec(CodecMode mode, const std::vector<std::string>& secrets) : mode_(mode) {
  if (secrets.empty()) fail(Errc::bad_secret, "no secret configured: add one of at least 32 bytes");
  for (size_t i = 0; i < secrets.size(); ++i) {
    if (secrets[i].size() < SESS_MIN_SECRET)
      fail(Errc::bad_secret, "secret " + std::to_string(i + 1) + " is " +
                                 std::to_string(secrets[i].size()) +
                                 " bytes; at least 32 are required");
    for (size_t j = 0; j < i; ++j)
      if (secrets[j] == secrets[i])
        fail(Errc::bad_secret, "secret " + std::to_string(i + 1) + " repeats secret " +
                                   std::to_string(j + 1));
    CodecKey key{};
    unsigned char id[4];
    hkdf_sha256(secrets[i], "key id", id, sizeof(id));
    key.id = load_be32(id);
    if (find_key(key.id))
      fail(Errc::bad_secret, "two secrets share a key id; replace one of them");
    key.uid = next_key_uid.fetch_add(1);
    hkdf_sha256(secrets[i], "aes-256-gcm", key.cipher_key, sizeof(key.cipher_key));
    hkdf_sha256(secrets[i], "hmac-sha256", key.mac_key, sizeof(key.mac_key));
    keys_.push_back(key);
  }
}

Codec::~Codec() {
  for (auto& key : keys_) OPENSSL_cleanse(&key, sizeof(key));
}

const CodecKey* Codec::find_key(uint32_t id) const {
  for (const auto& key : keys_)
    if (key.id == id) return &key;
  return nullptr;
}

void Codec::encode(std::string_view name, std::string_view payload, int64_t now, int64_t max_age,
                   std::string* out) const {
  const CodecKey& key = keys_.front();
  const bool aead = mode_ == CodecMode::aes_gcm;
  const size_t body = kTimesSize + payload.size();
  const size_t total = kHeaderSize + (aead ? kNonceSize + body + kGcmTagSize : body + kHmacTagSize);

  // Small cookies are sealed on the stack; big ones in a heap buffer.
  unsigned char stack_buf[1024];
  std::string heap_buf;
  unsigned char* raw = stack_buf;
  if (total > sizeof(stack_buf)) {
    heap_buf.resize(total);
    raw = reinterpret_cast<unsigned char*>(heap_buf.data());
  }

  raw[0] = aead ? kVersionAesGcm : kVersionHmac;
  store_be32(raw + 1, key.id);
  // The body (times, then payload) is assembled in place: GCM then seals it
  // with a single update, which costs less than the copy.
  unsigned char* p = raw + kHeaderSize + (aead ? kNonceSize : 0);
  store_be64(p, uint64_t(now));
  store_be32(p + 8, uint32_t(max_age > 0 ? std::min<int64_t>(max_age, UINT32_MAX) : 0));
  if (!payload.empty()) std::memcpy(p + kTimesSize, payload.data(), payload.size());
  if (aead) {
    unsigned char* nonce = raw + kHeaderSize;
    random_bytes(nonce, kNonceSize);
    unsigned char aad[kHeaderSize + 256];
    const size_t aad_size = associated_data(raw, name, aad, sizeof aad);
    EVP_CIPHER_CTX* ctx = thread_state.ciphers.seal(key);
    int n = 0;
    // The OpenSSL 3 calls (Init_ex2, tag as a param) skip a translation
    // layer that EVP_EncryptInit_ex and EVP_CIPHER_CTX_ctrl go through.
    OSSL_PARAM tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, p + body, kGcmTagSize),
        OSSL_PARAM_construct_end()};
    bool ok = EVP_EncryptInit_ex2(ctx, nullptr, nullptr, nonce, nullptr) == 1 &&
              EVP_EncryptUpdate(ctx, nullptr, &n, aad, int(aad_size)) == 1 &&
              EVP_EncryptUpdate(ctx, p, &n, p, int(body)) == 1 &&
              EVP_EncryptFinal_ex(ctx, p + body, &n) == 1 &&
              EVP_CIPHER_CTX_get_params(ctx, tag) == 1;
    if (!ok) fail(Errc::internal, "AES-256-GCM seal failed");
  } else {
    hmac_tag(key, name, raw, kHeaderSize + body, raw + kHeaderSize + body);
  }
  base64url_encode(std::string_view(reinterpret_cast<const char*>(raw), total), out);
}

int Codec::decode(std::string_view name, std::string_view value, int64_t now,
                  std::string* buffer, std::string_view* payload, Sealed* sealed) const {
  std::string& raw_buf = *buffer;
  if (!base64url_decode(value, &raw_buf)) return SESS_STATUS_MALFORMED;
  auto* raw = reinterpret_cast<unsigned char*>(raw_buf.data());
  const size_t size = raw_buf.size();
  if (size < kHeaderSize) return SESS_STATUS_MALFORMED;

  const unsigned char version = raw[0];
  const bool aead = version == kVersionAesGcm;
  if (version != (mode_ == CodecMode::aes_gcm ? kVersionAesGcm : kVersionHmac))
    return SESS_STATUS_MALFORMED;
  const size_t overhead = kHeaderSize + kTimesSize + (aead ? kNonceSize + kGcmTagSize : kHmacTagSize);
  if (size < overhead) return SESS_STATUS_MALFORMED;
  const CodecKey* key = find_key(load_be32(raw + 1));
  if (!key) return SESS_STATUS_UNKNOWN_KEY;

  const size_t body = size - overhead + kTimesSize;
  unsigned char* p = raw + kHeaderSize + (aead ? kNonceSize : 0);  // opened in place
  if (aead) {
    unsigned char aad[kHeaderSize + 256];
    const size_t aad_size = associated_data(raw, name, aad, sizeof aad);
    EVP_CIPHER_CTX* ctx = thread_state.ciphers.open(*key);
    int n = 0;
    OSSL_PARAM tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, p + body, kGcmTagSize),
        OSSL_PARAM_construct_end()};
    bool ok = EVP_DecryptInit_ex2(ctx, nullptr, nullptr, raw + kHeaderSize, nullptr) == 1 &&
              EVP_DecryptUpdate(ctx, nullptr, &n, aad, int(aad_size)) == 1 &&
              EVP_CIPHER_CTX_set_params(ctx, tag) == 1 &&
              EVP_DecryptUpdate(ctx, p, &n, p, int(body)) == 1 &&
              EVP_DecryptFinal_ex(ctx, p + body, &n) == 1;  // constant-time tag check
    if (!ok) return SESS_STATUS_TAMPERED;
  } else {
    unsigned char tag[kHmacTagSize];
    hmac_tag(*key, name, raw, kHeaderSize + body, tag);
    if (CRYPTO_memcmp(tag, raw + kHeaderSize + body, kHmacTagSize) != 0) return SESS_STATUS_TAMPERED;
  }

  const auto at = int64_t(load_be64(p));
  const auto max_age = int64_t(load_be32(p + 8));
  if (!is_sane_time(at)) return SESS_STATUS_MALFORMED;  // authentic, but not a time we seal
  if (max_age > 0 && at < saturating_sub(now, max_age)) return SESS_STATUS_EXPIRED;
  if (sealed) *sealed = Sealed{at, max_age, key == &keys_[0]};
  *payload = std::string_view(reinterpret_cast<const char*>(p + kTimesSize), body - kTimesSize);
  return SESS_STATUS_VALID;
}

}  // namespace sessions::internal
