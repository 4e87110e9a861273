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
