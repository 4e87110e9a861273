#include "base64url.h"

#include <array>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sessions::internal {
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

// ---- SSSE3 kernels (x86-64; chosen at run time) ------------------------------
// 12 bytes to 16 characters and back per step, after Mula and Lemire, "Faster
// Base64 Encoding and Decoding using AVX2 Instructions" (2018), adapted to the
// URL alphabet. The scalar code handles what is left, and every other CPU.
bool force_scalar = false;

#if defined(__x86_64__)
bool cpu_has_ssse3() {
  static const bool has = __builtin_cpu_supports("ssse3");
  return has;
}

// Encodes whole 12-byte steps while 16 bytes can be read; returns bytes consumed.
__attribute__((target("ssse3"))) size_t encode_ssse3(const unsigned char* in, size_t n, char* out) {
  const __m128i shuffle = _mm_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
  // Offsets from a 6-bit index to its character, selected by range (see below).
  const __m128i offsets = _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -17, 32, 65, 0, 0);
  size_t i = 0;
  for (; i + 16 <= n; i += 12, out += 16) {
    __m128i v = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)), shuffle);
    // Each 32-bit lane holds bytes b a c b of a group a b c; isolate the four
    // 6-bit indices into the lane's four bytes.
    __m128i hi = _mm_mulhi_epu16(_mm_and_si128(v, _mm_set1_epi32(0x0fc0fc00)), _mm_set1_epi32(0x04000040));
    __m128i lo = _mm_mullo_epi16(_mm_and_si128(v, _mm_set1_epi32(0x003f03f0)), _mm_set1_epi32(0x01000010));
    __m128i idx = _mm_or_si128(hi, lo);
    // 0..25 -> 13 ('A'), 26..51 -> 0 ('a'), 52..61 -> 1..10 ('0'), 62 -> 11 ('-'), 63 -> 12 ('_').
    __m128i range = _mm_subs_epu8(idx, _mm_set1_epi8(51));
    __m128i upper = _mm_cmpgt_epi8(_mm_set1_epi8(26), idx);
    range = _mm_or_si128(range, _mm_and_si128(upper, _mm_set1_epi8(13)));
    __m128i chars = _mm_add_epi8(idx, _mm_shuffle_epi8(offsets, range));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), chars);
  }
  return i;
}

// Decodes whole 16-character steps while 4 spare output bytes exist beyond
// the 12 written; returns characters consumed, or SIZE_MAX on an invalid one.
__attribute__((target("ssse3"))) size_t decode_ssse3(const unsigned char* in, size_t n, unsigned char* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16, out += 12) {
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    // Signed compares: bytes >= 0x80 are negative and fall in no range.
    __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('A' - 1)), _mm_cmplt_epi8(c, _mm_set1_epi8('Z' + 1)));
    __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(c, _mm_set1_epi8('z' + 1)));
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(c, _mm_set1_epi8('9' + 1)));
    __m128i dash = _mm_cmpeq_epi8(c, _mm_set1_epi8('-'));
    __m128i under = _mm_cmpeq_epi8(c, _mm_set1_epi8('_'));
    __m128i valid = _mm_or_si128(_mm_or_si128(upper, lower), _mm_or_si128(_mm_or_si128(digit, dash), under));
    if (_mm_movemask_epi8(valid) != 0xffff) return SIZE_MAX;
    __m128i offset = _mm_or_si128(
        _mm_or_si128(_mm_and_si128(upper, _mm_set1_epi8(-65)), _mm_and_si128(lower, _mm_set1_epi8(-71))),
        _mm_or_si128(_mm_or_si128(_mm_and_si128(digit, _mm_set1_epi8(4)), _mm_and_si128(dash, _mm_set1_epi8(17))),
                     _mm_and_si128(under, _mm_set1_epi8(-32))));
    __m128i v = _mm_add_epi8(c, offset);  // 6-bit values
    // Pairs to 12 bits, pairs of those to 24, then the three bytes of each lane.
    __m128i pairs = _mm_maddubs_epi16(v, _mm_set1_epi32(0x01400140));
    __m128i words = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00011000));
    __m128i bytes = _mm_shuffle_epi8(words, _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
  }
  return i;
}
#endif


void encode(std::string_view in, const char* alphabet, bool pad, std::string* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size();
  size_t start = out->size();
  out->resize(start + (n + 2) / 3 * 4);
  char* o = &(*out)[start];
  size_t i = 0;
#if defined(__x86_64__)
  if (alphabet == kUrlAlphabet && !force_scalar && cpu_has_ssse3()) {
    i = encode_ssse3(p, n, o);
    o += i / 3 * 4;
  }
#endif
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
  out->resize(decoded + 4);  // spare bytes for the wide stores below
  auto* o = reinterpret_cast<unsigned char*>(out->data());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t i = 0;
#if defined(__x86_64__)
  if (!force_scalar && cpu_has_ssse3()) {
    i = decode_ssse3(p, n, o);
    if (i == SIZE_MAX) return false;
    o += i / 4 * 3;
  }
#endif
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

void base64url_force_scalar_for_testing(bool scalar) { force_scalar = scalar; }

}  // namespace sessions::internal
