#include <catch2/catch.hpp>

#include "cookie.h"
#include "error.h"
#include "sessions.h"

using namespace sessions::internal;
using Views = std::vector<std::string_view>;

namespace {
Views find(const CookieJar& jar, std::string_view name) { return jar.find(name).to_vector(); }
}  // namespace

TEST_CASE("Cookie header: several cookies, whitespace, quotes") {
  CookieJar jar(" a=1;b=2 ;\tc = \"three\" ; d=\"\"; e=x=y; f");
  CHECK(find(jar, "a") == Views{"1"});
  CHECK(find(jar, "b") == Views{"2"});
  CHECK(find(jar, "c") == Views{"three"});
  CHECK(find(jar, "d") == Views{""});
  CHECK(find(jar, "e") == Views{"x=y"});
  CHECK(find(jar, "f").empty());  // no '=': ignored
  CHECK(find(jar, "missing").empty());
}

TEST_CASE("Cookie header: repeated names keep header order, bounded") {
  CookieJar jar("s=first; t=0; s=second; s=third");
  CHECK(find(jar, "s") == Views{"first", "second", "third"});
  std::string many;
  for (int i = 0; i < 50; ++i) many += "s=" + std::to_string(i) + "; ";
  CHECK(CookieJar(many).find("s").count == CookieJar::kMaxCandidates);
}

TEST_CASE("Cookie header: hostile input is bounded and never crashes", "[hostile]") {
  CHECK(CookieJar("").find("a").count == 0);
  CHECK(CookieJar(";;;; ;=;=x; =").find("").count == 0);
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(char(i));
  CookieJar jar(binary + "=" + binary);
  (void)find(jar, "x");
  CHECK_NOTHROW(CookieJar(std::string(SESS_MAX_COOKIE_HEADER, 'a')));
  try {
    CookieJar too_big(std::string(SESS_MAX_COOKIE_HEADER + 1, 'a'));
    FAIL("accepted an oversized header");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::header_too_large);
  }
}

TEST_CASE("Set-Cookie defaults: Path=/, 30 days, HttpOnly, SameSite=Lax") {
  std::string out;
  build_set_cookie("sid", "v", CookieOptions(), 784111777 - 2592000, &out);
  CHECK(out ==
        "sid=v; Path=/; Max-Age=2592000; Expires=Sun, 06 Nov 1994 08:49:37 GMT; HttpOnly; "
        "SameSite=Lax");
}

TEST_CASE("Set-Cookie with every attribute, browser-session and deletion") {
  CookieOptions o;
  REQUIRE(o.set("path", "/app"));
  REQUIRE(o.set("domain", "example.com"));
  REQUIRE(o.set("max_age", "1h"));
  REQUIRE(o.set("secure", "true"));
  REQUIRE(o.set("http_only", "false"));
  REQUIRE(o.set("same_site", "none"));
  REQUIRE(o.set("partitioned", "on"));
  o.validate();
  std::string out;
  build_set_cookie("sid", "v", o, 0, &out);
  CHECK(out ==
        "sid=v; Path=/app; Domain=example.com; Max-Age=3600; Expires=Thu, 01 Jan 1970 01:00:00 GMT; "
        "Secure; SameSite=None; Partitioned");

  CookieOptions session_cookie;
  session_cookie.set("max_age", "0");
  out.clear();
  build_set_cookie("sid", "v", session_cookie, 0, &out);
  CHECK(out == "sid=v; Path=/; HttpOnly; SameSite=Lax");

  CookieOptions remove;
  remove.set("max_age", "-1");
  out.clear();
  build_set_cookie("sid", "ignored", remove, 0, &out);
  CHECK(out == "sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax");
}

TEST_CASE("cookie options refuse injection and bad combinations", "[hostile]") {
  auto code_of = [](const char* name, const std::string& value) {
    CookieOptions o;
    try {
      o.set(name, value);
      o.validate();
    } catch (const Error& e) {
      return e.code();
    }
    return Errc::ok;
  };
  for (std::string bad : std::vector<std::string>{"/a;b", "/a\r\nSet-Cookie: x=y", "/a\nb", std::string("/a\0b", 4),
                          "/a\x7f", "relative", "/caf\xc3\xa9"})
    CHECK(code_of("path", bad) == Errc::bad_option);
  for (std::string bad : {"a.com; Secure", "a.com\r\n", "a com", "a,com"})
    CHECK(code_of("domain", bad) == Errc::bad_option);
  CHECK(code_of("same_site", "sometimes") == Errc::bad_option);
  CHECK(code_of("same_site", "none") == Errc::bad_option);   // None without Secure
  CHECK(code_of("partitioned", "1") == Errc::bad_option);    // Partitioned without Secure
  CHECK(code_of("secure", "maybe") == Errc::bad_option);
  CHECK(code_of("max_age", "12x") == Errc::bad_option);
  CHECK(code_of("max_age", "99999999999999d") == Errc::bad_option);
  CHECK(code_of("path", "/ok") == Errc::ok);
  CHECK_FALSE(CookieOptions().set("colour", "red"));
}

TEST_CASE("cookie names must be tokens") {
  CHECK_NOTHROW(validate_cookie_name("mysession"));
  CHECK_NOTHROW(validate_cookie_name("__Host-sid"));
  for (std::string bad : std::vector<std::string>{"", "a b", "a;b", "a=b", "a\r\n", "caf\xc3\xa9", std::string(257, 'a')})
    CHECK_THROWS_AS(validate_cookie_name(bad), Error);
}

TEST_CASE("__Host- and __Secure- cookie names demand what browsers demand") {
  using sessions::internal::CookieOptions;
  using sessions::internal::Errc;
  auto error = [](const CookieOptions& o, const char* name) -> std::string {
    try {
      o.validate_prefix(name);
    } catch (const sessions::internal::Error& e) {
      CHECK(e.code() == Errc::bad_option);
      return e.what();
    }
    return "";
  };
  CookieOptions plain;  // secure=false, path=/, no domain
  CHECK(error(plain, "sid") == "");
  CHECK(error(plain, "__Secure-sid").find("unless it is Secure") != std::string::npos);
  CHECK(error(plain, "__Host-sid").find("unless it is Secure") != std::string::npos);
  CHECK(error(plain, "__host-sid").find("__Host-") != std::string::npos);  // any case
  CookieOptions secure;
  secure.secure = true;
  CHECK(error(secure, "__Secure-sid") == "");
  CHECK(error(secure, "__Host-sid") == "");
  CookieOptions with_domain = secure;
  with_domain.domain = "example.com";
  CHECK(error(with_domain, "__Secure-sid") == "");
  CHECK(error(with_domain, "__Host-sid").find("host-only") != std::string::npos);
  CookieOptions with_path = secure;
  with_path.path = "/app";
  CHECK(error(with_path, "__Secure-sid") == "");
  CHECK(error(with_path, "__Host-sid").find("Path=/") != std::string::npos);
  CHECK(error(plain, "__Hostile") == "");  // not the prefix
}
