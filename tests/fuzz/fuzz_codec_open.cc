// sessions::internal::Codec::decode on arbitrary cookie values, with the AES-256-GCM and
// the HMAC-SHA256 codec (each holding the harnesses' current and rotated-out
// secrets), at the fixed clock fuzz::kNow.
//
// For every input: the status is one decode can give; base64url decoding is
// strict (a value that decodes is the one encoding of its bytes) and the
// SSSE3 and scalar paths agree; a value that is not base64url is malformed.
// For a valid cookie: it is not valid under another cookie name (the name is
// authenticated) nor for the other codec; a codec holding only the current
// secret opens it exactly when decode said it was sealed by the current key;
// it expires just after its sealed max age; re-sealing its payload opens to
// the same payload and times; flipping any one bit of it makes it invalid;
// and its payload is a 32-byte session ID or a record that decodes and reads
// whole (these secrets seal nothing else).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base64url.h"
#include "codec.h"
#include "fuzz_common.h"

using fuzz::escape;
using sessions::internal::Codec;
using sessions::internal::CodecMode;
using sessions::internal::Sealed;

namespace {

struct Codecs {
  Codec gcm{CodecMode::aes_gcm, {fuzz::kSecret, fuzz::kOldSecret}};
  Codec hmac{CodecMode::hmac_sha256, {fuzz::kSecret, fuzz::kOldSecret}};
  Codec gcm_current{CodecMode::aes_gcm, {fuzz::kSecret}};
  Codec hmac_current{CodecMode::hmac_sha256, {fuzz::kSecret}};
};

const Codecs& codecs() {
  static const Codecs* c = new Codecs;
  return *c;
}

const std::string& name() { return fuzz::kCodecCookieName; }

void check_base64(std::string_view value, bool* decodes) {
  std::string simd, scalar;
  const bool ok = sessions::internal::base64url_decode(value, &simd);
  sessions::internal::base64url_force_scalar_for_testing(true);
  const bool ok_scalar = sessions::internal::base64url_decode(value, &scalar);
  std::string reencoded_scalar;
  if (ok_scalar) sessions::internal::base64url_encode(scalar, &reencoded_scalar);
  sessions::internal::base64url_force_scalar_for_testing(false);
  FUZZ_CHECK(ok == ok_scalar, "SSSE3 and scalar base64url decoding disagree on " + escape(value));
  *decodes = ok;
  if (!ok) return;
  FUZZ_CHECK(simd == scalar, "SSSE3 and scalar base64url decode " + escape(value) + " differently");
  std::string reencoded;
  sessions::internal::base64url_encode(simd, &reencoded);
  FUZZ_CHECK(reencoded == value, "base64url is not strict: " + escape(value) +
                                     " decodes, but its bytes encode as " + escape(reencoded));
  FUZZ_CHECK(reencoded_scalar == value, "scalar base64url encoding differs for " + escape(value));
}

void check_valid(const Codec& codec, const Codec& current_only, const Codec& other_mode,
                 std::string_view value, const std::string& buffer, std::string_view payload_view,
                 const Sealed& sealed, uint32_t hash) {
  const char* const mode = codec.mode() == CodecMode::aes_gcm ? "aes-gcm" : "hmac-sha256";
  FUZZ_CHECK(payload_view.data() >= buffer.data() &&
                 payload_view.data() + payload_view.size() <= buffer.data() + buffer.size(),
             std::string(mode) + ": the payload is not inside the buffer");
  const std::string payload(payload_view);
  FUZZ_CHECK(sealed.max_age >= 0 && sealed.max_age <= int64_t(UINT32_MAX), "a sealed max age out of range");
  FUZZ_CHECK(sealed.max_age == 0 || sealed.at >= fuzz::kNow - sealed.max_age,
             std::string(mode) + ": valid although sealed more than max_age ago");

  std::string scratch;
  std::string_view ignored;
  FUZZ_CHECK(codec.decode("another", value, fuzz::kNow, &scratch, &ignored) == SESS_STATUS_TAMPERED,
             std::string(mode) + ": a cookie opens under another cookie name");
  FUZZ_CHECK(other_mode.decode(name(), value, fuzz::kNow, &scratch, &ignored) == SESS_STATUS_MALFORMED,
             std::string(mode) + ": a cookie is not malformed for the other codec");
  const int current = current_only.decode(name(), value, fuzz::kNow, &scratch, &ignored);
  FUZZ_CHECK(current == (sealed.current_key ? SESS_STATUS_VALID : SESS_STATUS_UNKNOWN_KEY),
             std::string(mode) + ": current_key disagrees with a codec of the current secret alone");
  if (sealed.max_age > 0 && sealed.at <= INT64_MAX - sealed.max_age - 1) {
    const int64_t last = sealed.at + sealed.max_age;
    FUZZ_CHECK(codec.decode(name(), value, last, &scratch, &ignored) == SESS_STATUS_VALID,
               std::string(mode) + ": expired before its max age");
    FUZZ_CHECK(codec.decode(name(), value, last + 1, &scratch, &ignored) == SESS_STATUS_EXPIRED,
               std::string(mode) + ": not expired after its max age");
  }

  std::string resealed;
  codec.encode(name(), payload, sealed.at, sealed.max_age, &resealed);
  std::string_view reopened;
  Sealed again;
  FUZZ_CHECK(codec.decode(name(), resealed, fuzz::kNow, &scratch, &reopened, &again) == SESS_STATUS_VALID,
             std::string(mode) + ": a re-sealed payload does not open");
  FUZZ_CHECK(reopened == payload && again.at == sealed.at && again.max_age == sealed.max_age &&
                 again.current_key,
             std::string(mode) + ": a re-sealed payload opens to something else");

  std::string raw;
  FUZZ_CHECK(sessions::internal::base64url_decode(value, &raw), "a valid cookie is not base64url");
  const size_t at = hash % raw.size();
  raw[at] = char(raw[at] ^ (1u << ((hash >> 16) % 8)));
  std::string tampered;
  sessions::internal::base64url_encode(raw, &tampered);
  const int status = codec.decode(name(), tampered, fuzz::kNow, &scratch, &ignored);
  FUZZ_CHECK(status != SESS_STATUS_VALID, std::string(mode) + ": still valid with byte " +
                                              std::to_string(at) + " flipped");

  if (payload.size() == 32) return;  // a server-side store's session ID
  sessions::internal::SessionRecord record;
  FUZZ_CHECK(sessions::internal::decode_record(payload, &record),
             std::string(mode) + ": an authentic payload is not a record: " + escape(payload));
  const fuzz::RecordView view = fuzz::read_record(record, /*with_flashes=*/true);
  FUZZ_CHECK(view.keys_ok && view.flashes, std::string(mode) + ": an authentic record does not read");
  for (const auto& [key, v] : view.values)
    FUZZ_CHECK(v.has_value(), std::string(mode) + ": an authentic value does not unpack: " + escape(key));
}

void check(const Codec& codec, const Codec& current_only, const Codec& other_mode,
           std::string_view value, bool is_base64, uint32_t hash) {
  std::string buffer;
  std::string_view payload;
  Sealed sealed;
  const int status = codec.decode(name(), value, fuzz::kNow, &buffer, &payload, &sealed);
  FUZZ_CHECK(status == SESS_STATUS_VALID || status == SESS_STATUS_EXPIRED ||
                 status == SESS_STATUS_TAMPERED || status == SESS_STATUS_UNKNOWN_KEY ||
                 status == SESS_STATUS_MALFORMED,
             "decode gave status " + std::to_string(status));
  if (!is_base64) FUZZ_CHECK(status == SESS_STATUS_MALFORMED, "a value that is not base64url is not malformed");
  if (status == SESS_STATUS_VALID)
    check_valid(codec, current_only, other_mode, value, buffer, payload, sealed, hash);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  uint32_t hash = 2166136261u;  // FNV-1a: which bit the tamper check flips
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 16777619u;
  bool is_base64 = false;
  check_base64(value, &is_base64);
  const Codecs& c = codecs();
  check(c.gcm, c.gcm_current, c.hmac, value, is_base64, hash);
  check(c.hmac, c.hmac_current, c.gcm, value, is_base64, hash);
  return 0;
}
