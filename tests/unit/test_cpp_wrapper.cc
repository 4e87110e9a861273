#include <catch2/catch.hpp>

#include "sessions.hpp"

TEST_CASE("C++ wrapper: the request cycle with RAII handles") {
  auto store = sessions::Store::open(
      "memory:", sessions::Config().add_secret(std::string(32, 'k')).set("idle_timeout", "1h"));
  std::string cookie;
  {
    sessions::Request request("");
    sessions::Session s = request.session(store, "mysession");
    CHECK(s.is_new());
    CHECK_FALSE(s.get_int("count"));
    s.set_int("count", 1);
    s.set_str("name", "ann");
    s.set_json("prefs", R"({"theme":"dark"})");
    s.add_flash("hi");
    request.finish();
    auto lines = request.set_cookies();
    REQUIRE(lines.size() == 1);
    cookie = lines[0].substr(0, lines[0].find(';'));
  }
  sessions::Request request(cookie);
  sessions::Session s = request.session(store, "mysession");
  CHECK(s.status_name() == "valid");
  CHECK(s.get_int("count") == 1);
  CHECK(s.get_str("name") == "ann");
  CHECK(s.get_json("prefs") == R"({"theme":"dark"})");
  CHECK(s.keys() == std::vector<std::string>{"count", "name", "prefs"});
  CHECK(s.flashes_json() == R"(["hi"])");
  CHECK(s.id().size() == 43);
  try {
    s.get_int("name");
    FAIL("no exception for a type mismatch");
  } catch (const sessions::Error& e) {
    CHECK(e.code() == SESS_E_TYPE_MISMATCH);
  }
  CHECK_THROWS_AS(sessions::Store::open("nope:", sessions::Config().add_secret(std::string(32, 'k'))),
                  sessions::Error);
}

TEST_CASE("C++ wrapper: principals, log out everywhere and CSRF tokens") {
  auto store = sessions::Store::open("memory:", sessions::Config().add_secret(std::string(32, 'k')));
  auto login = [&](const std::string& device) {
    sessions::Request request("");
    sessions::Session s = request.session(store, "sid");
    s.regenerate_id();
    s.set_principal("user:42");
    s.set_metadata("device", device);
    std::string token = s.csrf_token();
    CHECK(s.verify_csrf(token));
    CHECK_FALSE(s.verify_csrf(token.substr(1)));
    request.finish();
    auto lines = request.set_cookies();
    return lines[0].substr(0, lines[0].find(';'));
  };
  std::string phone = login("phone"), laptop = login("laptop");
  auto listed = store.list_sessions("user:42");
  REQUIRE(listed.size() == 2);
  sessions::Request request(phone);
  sessions::Session s = request.session(store, "sid");
  CHECK(s.principal() == "user:42");
  CHECK(s.metadata("device") == "phone");
  CHECK_FALSE(s.metadata("absent"));
  CHECK(store.end_sessions("user:42", s.get()) == 1);
  CHECK_FALSE(store.end_session("user:42", "no-such-handle"));
  CHECK(store.end_session("user:42", s.handle()));
  CHECK(store.list_sessions("user:42").empty());
}
