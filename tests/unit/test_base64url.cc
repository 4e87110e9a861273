#include <catch2/catch.hpp>

#include <random>

#include "base64url.h"

using namespace sessions;

TEST_CASE("base64url round-trips every length and byte value") {
  std::mt19937 rng(1);
  for (size_t n = 0; n < 100; ++n) {
    std::string in(n, '\0');
    for (auto& c : in) c = char(rng());
    std::string encoded, decoded;
    base64url_encode(in, &encoded);
    CHECK(encoded.size() == (n * 4 + 2) / 3);
    CHECK(encoded.find_first_of("+/=") == std::string::npos);
    REQUIRE(base64url_decode(encoded, &decoded));
    CHECK(decoded == in);
  }
}

TEST_CASE("base64url decoding is strict") {
  std::string out;
  CHECK(base64url_decode("", &out));
  CHECK(out.empty());
  CHECK_FALSE(base64url_decode("QQ==", &out));  // padding
  CHECK_FALSE(base64url_decode("a+b/", &out));  // standard alphabet
  CHECK_FALSE(base64url_decode("abcde", &out)); // impossible length
  CHECK_FALSE(base64url_decode("QR", &out));    // non-zero trailing bits
  CHECK_FALSE(base64url_decode("QUJ", &out));   // non-zero trailing bits
  CHECK_FALSE(base64url_decode(std::string("QU\0B", 4), &out));
  CHECK(base64url_decode("QUI", &out));
  CHECK(out == "AB");
  CHECK(base64_std_encode("\xfb\xff") == "+/8=");
}
