// Built by tests/consumer/CMakeLists.txt against the installed package.
#include <cstdio>

#include <sessions.hpp>

int main() {
  auto store = sessions::Store::open("memory:", sessions::Config().add_secret(std::string(32, 'c')));
  sessions::Request request("");
  request.session(store, "sid").set_str("hello", "world");
  request.finish();
  auto lines = request.set_cookies();
  std::printf("consumer: %zu Set-Cookie, libsessions %s\n", lines.size(), sess_version_string());
  return lines.size() == 1 ? 0 : 1;
}
