#include <catch2/catch.hpp>

#include <random>

#include "base64url.h"

using namespace sessions::internal;

namespace {
// Runs the body with the vector code (where the CPU has it) and with the
// scalar code, which is what other CPUs and the tails of long inputs use.
template <typename Body>
void both_paths(Body body) {
  for (bool scalar : {false, true}) {
    INFO((scalar ? "scalar" : "vector") << " path");
    base64url_force_scalar_for_testing(scalar);
    body();
  }
  base64url_force_scalar_for_testing(false);
}
}  // namespace

TEST_CASE("base64url round-trips every length and byte value") {
  both_paths([] {
    std::mt19937 rng(1);
    for (size_t n = 0; n < 300; ++n) {
      std::string in(n, '\0');
      for (auto& c : in) c = char(rng());
      std::string encoded, decoded;
      base64url_encode(in, &encoded);
      CHECK(encoded.size() == (n * 4 + 2) / 3);
      CHECK(encoded.find_first_of("+/=") == std::string::npos);
      REQUIRE(base64url_decode(encoded, &decoded));
      CHECK(decoded == in);
    }
    // Every 6-bit value in every position of a group.
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(char(i));
    std::string encoded, decoded;
    base64url_encode(all + all, &encoded);
    REQUIRE(base64url_decode(encoded, &decoded));
    CHECK(decoded == all + all);
  });
}

TEST_CASE("both paths encode identically") {
  std::mt19937 rng(2);
  std::string in(1000, '\0');
  for (auto& c : in) c = char(rng());
  std::string scalar, vector;
  base64url_force_scalar_for_testing(true);
  base64url_encode(in, &scalar);
  base64url_force_scalar_for_testing(false);
  base64url_encode(in, &vector);
  CHECK(scalar == vector);
}

TEST_CASE("base64url decoding is strict") {
  both_paths([] {
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
  });
}

TEST_CASE("an invalid character anywhere in a long value is refused", "[hostile]") {
  both_paths([] {
    std::string valid;
    base64url_encode(std::string(96, 'x'), &valid);  // 128 characters
    std::string out;
    REQUIRE(base64url_decode(valid, &out));
    const std::string bad = std::string("+/= .@[`{:\x7f\x80\xff") + '\0';
    for (size_t pos = 0; pos < valid.size(); ++pos) {
      for (char c : bad) {
        std::string tampered = valid;
        tampered[pos] = c;
        INFO("position " << pos << " byte " << int(static_cast<unsigned char>(c)));
        CHECK_FALSE(base64url_decode(tampered, &out));
      }
    }
  });
}
