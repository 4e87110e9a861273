#include "base64url.h"

#include <array>
#include <cstdint>

namespace sessions {
namespace {

constexpr char kUrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kStdAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_url_decode_table() {
  std::array<int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kUrlAlphabet[i])] = int8_t(i);
  return table;
}
constexpr auto kUrlDecode = make_url_decode_table();

void encode(std::string_view in, const char* alphabet, bool pad, std::string* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size();
  size_t start = out->size();
  out->resize(start + (n + 2) / 3 * 4);
  char* o = &(*out)[start];
  size_t i = 0;
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
  out->resize(n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));
  auto* o = reinterpret_cast<unsigned char*>(out->data());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    int a = kUrlDecode[p[i]], b = kUrlDecode[p[i + 1]], c = kUrlDecode[p[i + 2]],
        d = kUrlDecode[p[i + 3]];
    if ((a | b | c | d) < 0) return false;
    uint32_t w = uint32_t(a) << 18 | uint32_t(b) << 12 | uint32_t(c) << 6 | uint32_t(d);
    *o++ = uint8_t(w >> 16);
    *o++ = uint8_t(w >> 8);
    *o++ = uint8_t(w);
  }
  size_t rest = n - i;
  if (rest >= 2) {
    int a = kUrlDecode[p[i]], b = kUrlDecode[p[i + 1]];
    int c = rest == 3 ? kUrlDecode[p[i + 2]] : 0;
    if ((a | b | c) < 0) return false;
    uint32_t w = uint32_t(a) << 18 | uint32_t(b) << 12 | uint32_t(c) << 6;
    *o++ = uint8_t(w >> 16);
    if (rest == 3) {
      *o++ = uint8_t(w >> 8);
      if (w & 0xff) return false;  // non-canonical trailing bits
    } else if (w & 0xffff) {
      return false;
    }
  }
  return true;
}

}  // namespace sessions
