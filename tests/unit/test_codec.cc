#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "base64url.h"
#include "codec.h"
#include "error.h"
#include "random.h"

using namespace sessions::internal;

namespace {
const std::string kSecretA(32, 'a');
const std::string kSecretB = "b-secret-b-secret-b-secret-b-secret";
constexpr int64_t kNow = 1'800'000'000;

std::string seal(const Codec& c, std::string_view payload, int64_t max_age = 3600,
                 std::string_view name = "sid", int64_t now = kNow) {
  std::string out;
  c.encode(name, payload, now, max_age, &out);
  return out;
}
int open(const Codec& c, std::string_view value, std::string* payload = nullptr,
         std::string_view name = "sid", int64_t now = kNow) {
  std::string buffer;
  std::string_view view;
  int status = c.decode(name, value, now, &buffer, &view);
  if (payload) payload->assign(view);
  return status;
}
}  // namespace

TEST_CASE("codec round-trips payloads in both modes") {
  for (auto mode : {CodecMode::aes_gcm, CodecMode::hmac_sha256}) {
    Codec c(mode, {kSecretA});
    for (size_t n : {0, 1, 31, 200, 3000}) {
      std::string payload(n, 'x');
      for (size_t i = 0; i < n; ++i) payload[i] = char(i * 7);
      std::string out;
      REQUIRE(open(c, seal(c, payload), &out) == SESS_STATUS_VALID);
      CHECK(out == payload);
    }
  }
}

TEST_CASE("codec refuses every modified byte", "[codec][hostile]") {
  for (auto mode : {CodecMode::aes_gcm, CodecMode::hmac_sha256}) {
    Codec c(mode, {kSecretA});
    std::string raw;
    REQUIRE(base64url_decode(seal(c, "user_id=42;role=admin"), &raw));
    for (size_t i = 0; i < raw.size(); ++i) {
      for (unsigned char flip : {0x01, 0x80}) {
        std::string bad = raw, encoded;
        bad[i] = char(bad[i] ^ flip);
        base64url_encode(bad, &encoded);
        int status = open(c, encoded);
        // Byte 0 is the format version, 1-4 the key id, the rest is sealed.
        int expected = i == 0 ? SESS_STATUS_MALFORMED
                       : i < 5 ? SESS_STATUS_UNKNOWN_KEY
                               : SESS_STATUS_TAMPERED;
        INFO("mode " << int(mode) << " byte " << i);
        CHECK(status == expected);
      }
    }
  }
}

TEST_CASE("codec refuses truncated, empty and non-base64 values", "[codec][hostile]") {
  Codec c(CodecMode::aes_gcm, {kSecretA});
  std::string good = seal(c, "payload");
  for (size_t n = 0; n < good.size(); ++n) {
    INFO("prefix " << n);
    CHECK(open(c, good.substr(0, n)) != SESS_STATUS_VALID);
  }
  CHECK(open(c, "") == SESS_STATUS_MALFORMED);
  CHECK(open(c, "!!!!") == SESS_STATUS_MALFORMED);
  CHECK(open(c, good + "A") != SESS_STATUS_VALID);
  CHECK(open(c, std::string(5000, 'A')) != SESS_STATUS_VALID);
}

TEST_CASE("codec binds the cookie name") {
  Codec c(CodecMode::aes_gcm, {kSecretA});
  Codec s(CodecMode::hmac_sha256, {kSecretA});
  CHECK(open(c, seal(c, "p", 60, "a"), nullptr, "b") == SESS_STATUS_TAMPERED);
  CHECK(open(s, seal(s, "p", 60, "a"), nullptr, "b") == SESS_STATUS_TAMPERED);
  // The name is length-prefixed in the MAC: no re-splitting of name and payload.
  CHECK(open(s, seal(s, "p", 60, "ab"), nullptr, "a") == SESS_STATUS_TAMPERED);
}

TEST_CASE("codec rotates secrets by key id") {
  Codec old_codec(CodecMode::aes_gcm, {kSecretA});
  Codec rotated(CodecMode::aes_gcm, {kSecretB, kSecretA});
  std::string out;
  CHECK(open(rotated, seal(old_codec, "old"), &out) == SESS_STATUS_VALID);
  CHECK(out == "old");
  // New cookies are sealed with the first secret only.
  CHECK(open(old_codec, seal(rotated, "new")) == SESS_STATUS_UNKNOWN_KEY);
  Codec other(CodecMode::aes_gcm, {kSecretB});
  CHECK(open(other, seal(old_codec, "x")) == SESS_STATUS_UNKNOWN_KEY);
  // A cookie of the other mode is not ours.
  Codec signer(CodecMode::hmac_sha256, {kSecretA});
  CHECK(open(signer, seal(old_codec, "x")) == SESS_STATUS_MALFORMED);
}

TEST_CASE("codec enforces max age with the sealed timestamp") {
  Codec c(CodecMode::aes_gcm, {kSecretA});
  std::string v = seal(c, "p", 60);
  CHECK(open(c, v, nullptr, "sid", kNow + 60) == SESS_STATUS_VALID);
  CHECK(open(c, v, nullptr, "sid", kNow + 61) == SESS_STATUS_EXPIRED);
  std::string forever = seal(c, "p", 0);
  CHECK(open(c, forever, nullptr, "sid", kNow + 10 * 365 * 86400) == SESS_STATUS_VALID);
}

TEST_CASE("sign-only mode keeps the payload readable") {
  Codec c(CodecMode::hmac_sha256, {kSecretA});
  std::string raw;
  REQUIRE(base64url_decode(seal(c, "readable-payload"), &raw));
  CHECK(raw.find("readable-payload") != std::string::npos);
  Codec e(CodecMode::aes_gcm, {kSecretA});
  REQUIRE(base64url_decode(seal(e, "readable-payload"), &raw));
  CHECK(raw.find("readable-payload") == std::string::npos);
}

TEST_CASE("codec refuses weak, missing and repeated secrets") {
  auto code_of = [](std::vector<std::string> secrets) {
    try {
      Codec c(CodecMode::aes_gcm, secrets);
    } catch (const Error& e) {
      return e.code();
    }
    return Errc::ok;
  };
  CHECK(code_of({}) == Errc::bad_secret);
  CHECK(code_of({std::string(31, 's')}) == Errc::bad_secret);
  CHECK(code_of({kSecretA, kSecretA}) == Errc::bad_secret);
  CHECK(code_of({std::string(32, 's')}) == Errc::ok);
  CHECK(code_of({std::string(32, '\0')}) == Errc::ok);  // binary secrets are fine
}

TEST_CASE("nonces never repeat") {
  Codec c(CodecMode::aes_gcm, {kSecretA});
  std::set<std::string> seen;
  for (int i = 0; i < 20000; ++i) CHECK(seen.insert(seal(c, "same payload")).second);
}

TEST_CASE("random bytes after fork differ from the parent's") {
  unsigned char warm[16];
  random_bytes(warm, sizeof warm);  // the parent's buffer now holds unused bytes
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    unsigned char child[32];
    random_bytes(child, sizeof child);
    ssize_t n = write(fds[1], child, sizeof child);
    _exit(n == sizeof child ? 0 : 1);
  }
  unsigned char parent[32], child[32];
  random_bytes(parent, sizeof parent);
  REQUIRE(read(fds[0], child, sizeof child) == sizeof child);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  close(fds[1]);
  CHECK(std::memcmp(parent, child, sizeof parent) != 0);
}
