// What the core's request-cycle tests share: a store with a hand-moved clock,
// and a browser that keeps the cookies a request sets.
#pragma once

#include <string>
#include <vector>

#include "error.h"
#include "request.h"
#include "store.h"

namespace sessions::testing {

// The test helpers work on the library's internals.
using namespace sessions::internal;

inline const std::string kSecret = "test-secret-test-secret-test-secret!";

struct Fixture {
  std::shared_ptr<Store> store;
  int64_t now = 1'800'000'000;

  explicit Fixture(const std::string& uri, OptionList options = {}, bool fake_clock = true) {
    Config config;
    config.secrets = {kSecret};
    for (auto& [name, value] : options) config.set(name, value);
    store = Store::open(uri, config);
    if (fake_clock) store->set_clock([this] { return now; });
  }
};

// Runs one request: the header in, the handler, the Cookie header for the next
// request out (as a browser would keep it).
struct Browser {
  std::string jar;  // "name=value; ..."
  std::vector<std::string> last_set_cookies;

  template <typename Handler>
  Errc request(Handler handler) {
    Request r(jar);
    handler(r);
    std::string message;
    Errc rc = r.finish(&message);
    last_set_cookies.clear();
    for (size_t i = 0; i < r.set_cookie_count(); ++i) last_set_cookies.push_back(r.set_cookie(i));
    for (const auto& line : last_set_cookies) keep(line);
    return rc;
  }

  void keep(const std::string& line) {
    std::string pair = line.substr(0, line.find(';'));
    std::string name = pair.substr(0, pair.find('='));
    std::string rebuilt;
    size_t start = 0;
    while (start < jar.size()) {  // drop the old cookie of that name
      size_t end = jar.find("; ", start);
      if (end == std::string::npos) end = jar.size();
      std::string item = jar.substr(start, end - start);
      if (item.substr(0, item.find('=')) != name) rebuilt += (rebuilt.empty() ? "" : "; ") + item;
      start = end + 2;
    }
    bool deletion = line.find("Max-Age=0") != std::string::npos;
    if (!deletion) rebuilt += (rebuilt.empty() ? "" : "; ") + pair;
    jar = rebuilt;
  }
};

}  // namespace sessions::testing
