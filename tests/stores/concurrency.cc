#include "concurrency.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace sessions::testing {
namespace {

constexpr int kThreads = 8;

// The Cookie header of a logged-in session everyone shares.
std::string shared_session(Fixture& f) {
  Browser b;
  REQUIRE(b.request([&](Request& r) { r.session(f.store, "sid").set("user_id", Value(42)); }) ==
          Errc::ok);
  return b.jar;
}

OptionList with(OptionList options, const char* name, const char* value) {
  options.emplace_back(name, value);
  return options;
}

// Runs one request on the shared header; returns its result and message.
template <typename Handler>
Errc request_on(const std::string& header, Handler handler, std::string* message) {
  Request r(header);
  handler(r);
  return r.finish(message);
}

}  // namespace

void check_merge_keeps_every_key(const std::string& uri, OptionList options) {
  Fixture f(uri, options, false);
  const std::string header = shared_session(f);
  constexpr int kRounds = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        std::string message;
        Errc rc = request_on(header, [&](Request& r) {
          Session& s = r.session(f.store, "sid");
          if (s.status() != SESS_STATUS_VALID) ++failures;
          s.set("t" + std::to_string(t) + "." + std::to_string(round), Value(round));
        }, &message);
        if (rc != Errc::ok) {
          UNSCOPED_INFO(message);
          ++failures;
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  Request r(header);
  Session& s = r.session(f.store, "sid");
  REQUIRE(s.status() == SESS_STATUS_VALID);
  int missing = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int round = 0; round < kRounds; ++round) {
      const Value* v = s.get("t" + std::to_string(t) + "." + std::to_string(round));
      if (!v || *v != Value(round)) ++missing;
    }
  CHECK(missing == 0);
  CHECK(s.count() == size_t(kThreads * kRounds + 1));  // and user_id
}

void check_cas_counter(const std::string& uri, OptionList options) {
  Fixture f(uri, with(options, "concurrency", "cas"), false);
  const std::string header = shared_session(f);
  constexpr int kIncrements = 40;
  std::atomic<int> failures{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        for (;;) {  // the whole request again, as a caller of cas does
          std::string message;
          Errc rc = request_on(header, [&](Request& r) {
            Session& s = r.session(f.store, "sid");
            const Value* n = s.get("n");
            s.set("n", Value(n ? *n->get_if<int64_t>() + 1 : int64_t{1}));
          }, &message);
          if (rc == Errc::ok) break;
          if (rc == Errc::conflict) {
            ++conflicts;
            continue;
          }
          UNSCOPED_INFO(message);
          ++failures;
          break;
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  Request r(header);
  const Value* n = r.session(f.store, "sid").get("n");
  REQUIRE(n);
  CHECK(*n->get_if<int64_t>() == kThreads * kIncrements);
  UNSCOPED_INFO("conflicts retried: " << conflicts.load());
}

void check_merge_flashes_once(const std::string& uri, OptionList options) {
  Fixture f(uri, options, false);
  const std::string header = shared_session(f);
  constexpr int kRounds = 100;
  std::atomic<int> failures{0};
  std::atomic<bool> adding{true};
  std::mutex shown_mu;
  std::multiset<std::string> shown;
  auto take = [&] {
    std::string message;
    Errc rc = request_on(header, [&](Request& r) {
      Array flashes = r.session(f.store, "sid").take_flashes("_flash");
      std::lock_guard<std::mutex> lock(shown_mu);
      for (const Value& v : flashes) shown.insert(*v.get_if<std::string>());
    }, &message);
    if (rc != Errc::ok) {
      UNSCOPED_INFO(message);
      ++failures;
    }
  };
  std::thread reader([&] {
    while (adding) take();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        std::string message;
        Errc rc = request_on(header, [&](Request& r) {
          r.session(f.store, "sid").add_flash("_flash", Value(std::to_string(t) + "." + std::to_string(round)));
        }, &message);
        if (rc != Errc::ok) {
          UNSCOPED_INFO(message);
          ++failures;
        }
      }
    });
  for (auto& t : threads) t.join();
  adding = false;
  reader.join();
  take();  // what is left
  CHECK(failures == 0);
  CHECK(shown.size() == size_t(kThreads * kRounds));
  int repeated = 0, missing = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int round = 0; round < kRounds; ++round) {
      size_t n = shown.count(std::to_string(t) + "." + std::to_string(round));
      if (n == 0) ++missing;
      if (n > 1) ++repeated;
    }
  CHECK(missing == 0);
  CHECK(repeated == 0);
}

void check_merge_with_regenerate(const std::string& uri, OptionList options) {
  Fixture f(uri, options, false);
  Browser owner;
  REQUIRE(owner.request([&](Request& r) { r.session(f.store, "sid").set("user_id", Value(42)); }) ==
          Errc::ok);
  const std::string old_header = owner.jar;
  std::atomic<bool> writing{true};
  std::atomic<int> failures{0};
  // Writers on the old ID until it moves.
  std::atomic<int> acknowledged[2] = {-1, -1};
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; writing; ++i) {
        std::string message;
        bool valid = false;
        Errc rc = request_on(old_header, [&](Request& r) {
          Session& s = r.session(f.store, "sid");
          valid = s.status() == SESS_STATUS_VALID;
          if (valid) s.set("w" + std::to_string(t), Value(i));
        }, &message);
        if (rc != Errc::ok) {
          UNSCOPED_INFO(message);
          ++failures;
        }
        if (!valid) break;  // the ID moved: the old cookie no longer opens
        acknowledged[t] = i;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Every write acknowledged before the move began must be in the moved
  // record (last_write would lose those that land between its load and its
  // move). One that races the move lands before it or is dropped: the ID it
  // wrote to has ended.
  const int before[2] = {acknowledged[0].load(), acknowledged[1].load()};
  REQUIRE(owner.request([&](Request& r) { r.session(f.store, "sid").regenerate_id(); }) == Errc::ok);
  writing = false;
  for (auto& t : writers) t.join();
  CHECK(failures == 0);
  Request r(owner.jar);
  Session& s = r.session(f.store, "sid");
  REQUIRE(s.status() == SESS_STATUS_VALID);
  CHECK(*s.get("user_id") == Value(42));
  for (int t = 0; t < 2; ++t) {
    if (before[t] < 0) continue;
    const Value* v = s.get("w" + std::to_string(t));
    REQUIRE(v);
    CHECK(*v->get_if<int64_t>() >= before[t]);
  }
}

void check_concurrency(const std::string& uri, OptionList options) {
  SECTION("merge keeps every key") { check_merge_keeps_every_key(uri, options); }
  SECTION("cas counter") { check_cas_counter(uri, options); }
  SECTION("flashes shown once") { check_merge_flashes_once(uri, options); }
  SECTION("merge with regenerate") { check_merge_with_regenerate(uri, options); }
}

}  // namespace sessions::testing
