// What the benchmarks share: one realistic session and the request cycle
// over it, through the public C ABI as an application would drive it, and
// the multi-threaded throughput of that cycle.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sessions.h"

namespace bench {

using Clock = std::chrono::steady_clock;
inline const std::string kSecret = "bench-secret-bench-secret-bench-secret!";

inline void check(int rc, const char* what) {
  if (rc != SESS_OK && rc != SESS_NOT_FOUND) {
    std::fprintf(stderr, "%s: %s (%s)\n", what, sess_strerror(rc), sess_last_error());
    std::exit(1);
  }
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

inline sess_store* open_store(const char* uri) {
  sess_config* config = nullptr;
  check(sess_config_new(&config), "config");
  check(sess_config_add_secret(config, kSecret.data(), kSecret.size()), "secret");
  sess_store* store = nullptr;
  check(sess_store_open(uri, config, &store), "open");
  sess_config_free(config);
  return store;
}

// A logged-in user with a CSRF token and a small cart: about 200 bytes of
// record. Returns the Cookie header that carries it.
// With `principal`, the session belongs to it (sess_session_set_principal).
inline std::string make_session(sess_store* store, size_t* record_bytes,
                                const char* principal = nullptr) {
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  check(sess_request_begin(nullptr, 0, &req), "begin");
  check(sess_request_session(req, store, "mysession", &s), "session");
  if (principal) check(sess_session_set_principal(s, principal), "set_principal");
  check(sess_set_int(s, "user_id", 123456), "set");
  check(sess_set_str(s, "username", "ann.example", 11), "set");
  check(sess_set_str(s, "role", "editor", 6), "set");
  const char* csrf = "q8Jb1m3v0cT6oU2y5QeW9rZxK4pLhN7aS0dFgHjEiVk";
  check(sess_set_str(s, "csrf", csrf, std::strlen(csrf)), "set");
  const char* cart = R"([{"sku":"A-1001","qty":2},{"sku":"B-2002","qty":1}])";
  check(sess_set_json(s, "cart", cart, std::strlen(cart)), "set");
  check(sess_set_str(s, "locale", "en-GB", 5), "set");
  check(sess_request_finish(req), "finish");
  std::string line = sess_request_set_cookie(req, 0, nullptr);
  sess_request_free(req);
  std::string cookie = line.substr(0, line.find(';'));
  // The sealed cookie is base64url(5 + 12 + 12 + record + 16 bytes).
  size_t value_chars = cookie.size() - std::strlen("mysession=");
  *record_bytes = value_chars * 3 / 4 - 5 - 12 - 12 - 16;
  return "theme=dark; " + cookie + "; _ga=GA1.2.1234567890.1234567890";
}

// The session of make_session with a cart of about `cart_bytes` of JSON (a
// shop's items: it compresses as real carts do). Returns the Cookie header
// that carries it: one cookie, or its chunks on cookie:.
inline std::string make_big_session(sess_store* store, size_t cart_bytes) {
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  check(sess_request_begin(nullptr, 0, &req), "begin");
  check(sess_request_session(req, store, "mysession", &s), "session");
  check(sess_set_int(s, "user_id", 123456), "set");
  check(sess_set_str(s, "username", "ann.example", 11), "set");
  const char* csrf = "q8Jb1m3v0cT6oU2y5QeW9rZxK4pLhN7aS0dFgHjEiVk";
  check(sess_set_str(s, "csrf", csrf, std::strlen(csrf)), "set");
  std::string cart = "[";
  for (int i = 0; cart.size() < cart_bytes; ++i)
    cart += "{\"sku\":\"SKU-" + std::to_string(10000 + i * 37) + "\",\"name\":\"" +
            (i % 3 == 0 ? "running shoes" : i % 3 == 1 ? "coffee beans 1kg" : "usb-c cable") +
            "\",\"qty\":" + std::to_string(1 + i % 4) + "},";
  cart.back() = ']';
  check(sess_set_json(s, "cart", cart.data(), cart.size()), "set");
  check(sess_request_finish(req), "finish");
  std::string header = "theme=dark";
  for (size_t i = 0; i < sess_request_set_cookie_count(req); ++i) {
    std::string line = sess_request_set_cookie(req, i, nullptr);
    header += "; " + line.substr(0, line.find(';'));
  }
  sess_request_free(req);
  return header;
}

// One request of the benchmark: read 3, set 1, finish, take the Set-Cookie.
inline void cycle(sess_store* store, const std::string& header, int64_t n) {
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  check(sess_request_begin(header.data(), header.size(), &req), "begin");
  check(sess_request_session(req, store, "mysession", &s), "session");
  int64_t user_id = 0;
  const char* str = nullptr;
  size_t len = 0;
  check(sess_get_int(s, "user_id", &user_id), "get");
  check(sess_get_str(s, "username", &str, &len), "get");
  check(sess_get_str(s, "csrf", &str, &len), "get");
  check(sess_set_int(s, "last_request", n), "set");
  check(sess_request_finish(req), "finish");
  if (sess_request_set_cookie_count(req) == 0 || user_id != 123456) {
    std::fprintf(stderr, "cycle produced no Set-Cookie\n");
    std::exit(1);
  }
  sess_request_free(req);
}

// Cycles per second of `threads` threads, each with its own session, over
// `seconds`; the median of `trials`.
inline double cycle_throughput(sess_store* store, int threads, double seconds, int trials) {
  std::vector<std::string> headers;
  size_t unused = 0;
  for (int t = 0; t < threads; ++t) headers.push_back(make_session(store, &unused));
  std::vector<double> samples;
  for (int trial = 0; trial < trials; ++trial) {
    std::atomic<bool> stop{false};
    std::atomic<int64_t> total{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        int64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          for (int i = 0; i < 64; ++i) cycle(store, headers[t], n++);
        }
        total += n;
      });
    }
    auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : pool) th.join();
    std::chrono::duration<double> elapsed = Clock::now() - start;
    samples.push_back(double(total) / elapsed.count());
  }
  return median(samples);
}

}  // namespace bench
