#include "base64url.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace sessions {
namespace {

constexpr char kUrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kStdAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Decoding: one table per position in a 4-character group, each holding the
// character's 6 bits already shifted into place, so a group costs four loads,
// three ORs and one check. Invalid characters set bit 31.
constexpr uint32_t kInvalid = 0x80000000u;
constexpr std::array<uint32_t, 256> make_decode_table(int shift) {
  std::array<uint32_t, 256> table{};
  for (auto& entry : table) entry = kInvalid;
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(kUrlAlphabet[i])] = uint32_t(i) << shift;
  return table;
}
constexpr auto kDecode0 = make_decode_table(18);
constexpr auto kDecode1 = make_decode_table(12);
constexpr auto kDecode2 = make_decode_table(6);
constexpr auto kDecode3 = make_decode_table(0);

// Encoding the URL alphabet: 12 bits to two characters at once.
struct PairTable {
  uint16_t pairs[4096];
};
constexpr PairTable make_pair_table() {
  PairTable t{};
  for (int i = 0; i < 4096; ++i) {
    auto hi = static_cast<unsigned char>(kUrlAlphabet[i >> 6]);
    auto lo = static_cast<unsigned char>(kUrlAlphabet[i & 63]);
    t.pairs[i] = uint16_t(hi | lo << 8);  // little-endian: hi is written first
  }
  return t;
}
constexpr PairTable kUrlPairs = make_pair_table();

void encode(std::string_view in, const char* alphabet, bool pad, std::string* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size();
  size_t start = out->size();
  out->resize(start + (n + 2) / 3 * 4);
  char* o = &(*out)[start];
  size_t i = 0;
  if (alphabet == kUrlAlphabet && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
    // Six bytes (48 bits, four 12-bit pairs) per step while 8 can be loaded.
    for (; i + 8 <= n; i += 6, o += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      w = __builtin_bswap64(w);  // the six bytes, most significant first
      uint16_t chars[4] = {kUrlPairs.pairs[(w >> 52) & 4095], kUrlPairs.pairs[(w >> 40) & 4095],
                           kUrlPairs.pairs[(w >> 28) & 4095], kUrlPairs.pairs[(w >> 16) & 4095]};
      std::memcpy(o, chars, 8);
    }
    for (; i + 3 <= n; i += 3, o += 4) {
      uint32_t w = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
      std::memcpy(o, &kUrlPairs.pairs[w >> 12], 2);
      std::memcpy(o + 2, &kUrlPairs.pairs[w & 4095], 2);
    }
  }
  for (; i + 3 <= n; i += 3) {
    uint32_t w = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
    *o++ = alphabet[w >> 18];
    *o++ = alphabet[(w >> 12) & 63];
    *o++ = alphabet[(w >> 6) & 63];
    *o++ = alphabet[w & 63];
  }
  if (n - i == 1) {
    uint32_t w = uint32_t(p[i]) << 16;
    *o++ = alphabet[w >> 18];
    *o++ = alphabet[(w >> 12) & 63];
    if (pad) { *o++ = '='; *o++ = '='; }
  } else if (n - i == 2) {
    uint32_t w = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8;
    *o++ = alphabet[w >> 18];
    *o++ = alphabet[(w >> 12) & 63];
    *o++ = alphabet[(w >> 6) & 63];
    if (pad) *o++ = '=';
  }
  out->resize(size_t(o - out->data()));
}

}  // namespace

void base64url_encode(std::string_view in, std::string* out) { encode(in, kUrlAlphabet, false, out); }

std::string base64_std_encode(std::string_view in) {
  std::string out;
  encode(in, kStdAlphabet, true, &out);
  return out;
}

bool base64url_decode(std::string_view in, std::string* out) {
  size_t n = in.size();
  if (n % 4 == 1) return false;  // no byte count encodes to this length
  const size_t decoded = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
  out->resize(decoded + 2);  // spare bytes for the wide stores below
  auto* o = reinterpret_cast<unsigned char*>(out->data());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t i = 0;
  if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
    // Two groups (six bytes) per 8-byte store; the last two bytes written
    // are overwritten next or fall in the spare bytes.
    for (; i + 8 <= n; i += 8, o += 6) {
      uint32_t a = kDecode0[p[i]] | kDecode1[p[i + 1]] | kDecode2[p[i + 2]] | kDecode3[p[i + 3]];
      uint32_t b = kDecode0[p[i + 4]] | kDecode1[p[i + 5]] | kDecode2[p[i + 6]] | kDecode3[p[i + 7]];
      if ((a | b) & kInvalid) return false;
      uint64_t bytes = __builtin_bswap64(uint64_t(a) << 40 | uint64_t(b) << 16);
      std::memcpy(o, &bytes, 8);
    }
    // Whole groups with one 4-byte store each; the fourth byte is overwritten
    // by the next group (or is the spare byte).
    for (; i + 4 <= n; i += 4, o += 3) {
      uint32_t w = kDecode0[p[i]] | kDecode1[p[i + 1]] | kDecode2[p[i + 2]] | kDecode3[p[i + 3]];
      if (w & kInvalid) return false;
      uint32_t bytes = __builtin_bswap32(w << 8);
      std::memcpy(o, &bytes, 4);
    }
  }
  for (; i + 4 <= n; i += 4) {
    uint32_t w = kDecode0[p[i]] | kDecode1[p[i + 1]] | kDecode2[p[i + 2]] | kDecode3[p[i + 3]];
    if (w & kInvalid) return false;
    *o++ = uint8_t(w >> 16);
    *o++ = uint8_t(w >> 8);
    *o++ = uint8_t(w);
  }
  size_t rest = n - i;
  if (rest >= 2) {
    uint32_t w = kDecode0[p[i]] | kDecode1[p[i + 1]] | (rest == 3 ? kDecode2[p[i + 2]] : 0);
    if (w & kInvalid) return false;
    *o++ = uint8_t(w >> 16);
    if (rest == 3) {
      *o++ = uint8_t(w >> 8);
      if (w & 0xff) return false;  // non-canonical trailing bits
    } else if (w & 0xffff) {
      return false;
    }
  }
  out->resize(decoded);
  return true;
}

}  // namespace sessions
