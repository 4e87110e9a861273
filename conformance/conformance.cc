// The store conformance kit (include/sessions_conformance.h), on the public
// API only: what it asks of a store is what an application can observe.
#include "sessions_conformance.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sessions.hpp"

namespace {

using Options = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;

const std::string kSecret = "sessions-conformance-kit-secret-0123456789";

// A check that did not hold: thrown with what was seen.
struct Failed {
  std::string what;
};

void expect(bool condition, const std::string& what) {
  if (!condition) throw Failed{what};
}

std::string code_text(int rc) { return std::to_string(rc) + " (" + sess_strerror(rc) + ")"; }

// A browser: keeps the "sid" cookie a response sets, drops it when expired.
class Browser {
 public:
  // One request with `handler` on session "sid"; returns SESS_OK or the
  // code that opening the session or finishing the request failed with.
  template <typename Handler>
  int request(const sessions::Store& store, Handler&& handler) {
    set_cookies_.clear();
    try {
      sessions::Request r(jar_);
      sessions::Session s = r.session(store, "sid");
      handler(s);
      int rc = SESS_OK;
      try {
        r.finish();
      } catch (const sessions::Error& e) {
        rc = e.code();
      }
      set_cookies_ = r.set_cookies();
      for (const auto& line : set_cookies_) keep(line);
      return rc;
    } catch (const sessions::Error& e) {
      return e.code();
    }
  }
  int request(const sessions::Store& store) {
    return request(store, [](sessions::Session&) {});
  }
  const std::vector<std::string>& set_cookies() const { return set_cookies_; }
  const std::string& jar() const { return jar_; }
  void set_jar(std::string jar) { jar_ = std::move(jar); }

 private:
  void keep(const std::string& line) {
    if (line.find("Max-Age=0") != std::string::npos) jar_.clear();
    else jar_ = line.substr(0, line.find(';'));
  }
  std::string jar_;
  std::vector<std::string> set_cookies_;
};

class Kit {
 public:
  Kit(std::string uri, Options options, const sess_conformance_hooks& hooks)
      : uri_(std::move(uri)), options_(std::move(options)), hooks_(hooks) {
    if (!hooks_.hang_bound_ms) hooks_.hang_bound_ms = 3000;
  }

  // A store on the URI with the caller's options and the check's own.
  sessions::Store open(const Options& extra = {}) const {
    sessions::Config config;
    config.add_secret(kSecret);
    for (const auto& [name, value] : options_) config.set(name, value);
    for (const auto& [name, value] : extra) config.set(name, value);
    return sessions::Store::open(uri_, config);
  }

  bool can_stop() const { return hooks_.stop && hooks_.start; }
  bool can_pause() const { return hooks_.pause && hooks_.resume; }
  const sess_conformance_hooks& hooks() const { return hooks_; }

  void call(int (*hook)(void*), const char* name) const {
    expect(hook(hooks_.user) == 0, std::string("the ") + name + " hook failed");
  }

 private:
  std::string uri_;
  Options options_;
  sess_conformance_hooks hooks_;
};

// After the server comes back, a client may need a moment to reconnect
// (a driver's heartbeat): meanwhile a request may fail as unavailable, and
// must never give a new session. Retried for up to 5 s.
template <typename Handler>
int request_when_back(const sessions::Store& store, Browser* b, Handler&& handler) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  int rc;
  while ((rc = b->request(store, handler)) == SESS_E_STORE_UNAVAILABLE && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return rc;
}

int exists(const sessions::Store& store, const std::string& id) {
  return sess_store_session_exists(store.get(), id.c_str());
}

// A session holding user_id; returns its ID (read back: a new session's ID
// is drawn when it is first saved).
std::string log_in(const sessions::Store& store, Browser* b, int64_t user_id = 42) {
  int rc = b->request(store, [&](sessions::Session& s) { s.set_int("user_id", user_id); });
  expect(rc == SESS_OK, "saving a new session failed: " + code_text(rc) + ": " + sess_last_error());
  expect(!b->jar().empty(), "saving a new session set no cookie");
  std::string id;
  rc = b->request(store, [&](sessions::Session& s) {
    expect(s.status() == SESS_STATUS_VALID, "a saved session loads as " + s.status_name());
    id = s.id();
  });
  expect(rc == SESS_OK, "loading a saved session failed: " + code_text(rc));
  return id;
}

// ---- the checks ----------------------------------------------------------

void check_round_trip(const Kit& kit) {
  sessions::Store store = kit.open();
  Browser b;
  const std::string raw("\0\xff\x01", 3);
  int rc = b.request(store, [&](sessions::Session& s) {
    expect(s.status() == SESS_STATUS_NEW, "a request without a cookie is " + s.status_name());
    s.set_int("user_id", 42);
    s.set_str("name", "Zo\xc3\xab");
    s.set_bool("admin", false);
    s.set_double("ratio", 0.25);
    s.set_bytes("raw", raw);
    s.set_json("cart", R"([{"sku":"A-1","qty":2},null,true,-3])");
    s.add_flash("welcome");
  });
  expect(rc == SESS_OK, "the first save failed: " + code_text(rc));
  rc = b.request(store, [&](sessions::Session& s) {
    expect(s.status() == SESS_STATUS_VALID, "the saved session loads as " + s.status_name());
    expect(s.get_int("user_id") == 42, "an int did not round-trip");
    expect(s.get_str("name") == "Zo\xc3\xab", "a string did not round-trip");
    expect(s.get_bool("admin") == false, "a bool did not round-trip");
    expect(s.get_double("ratio") == 0.25, "a double did not round-trip");
    expect(s.get_bytes("raw") == raw, "bytes did not round-trip");
    expect(s.get_json("cart") == R"([{"qty":2,"sku":"A-1"},null,true,-3])",
           "a JSON value did not round-trip: " + s.get_json("cart").value_or("(absent)"));
    expect(s.flashes_json() == R"(["welcome"])", "a flash did not survive");
    s.set_int("user_id", 43);
  });
  expect(rc == SESS_OK, "the second request failed: " + code_text(rc));
  rc = b.request(store, [&](sessions::Session& s) {
    expect(s.get_int("user_id") == 43, "an overwritten value was not saved");
    expect(s.flashes_json() == "[]", "a flash was shown twice");
  });
  expect(rc == SESS_OK, "the third request failed: " + code_text(rc));
}

void check_expiry(const Kit& kit) {
  // The record lives as long as the idle timeout: 1 s.
  sessions::Store store = kit.open({{"idle_timeout", "1"}});
  Browser b;
  const std::string id = log_in(store, &b);
  expect(exists(store, id) == SESS_OK, "a saved session has no record");
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  int rc = b.request(store, [](sessions::Session& s) {
    expect(s.status() != SESS_STATUS_VALID, "a session past its idle timeout loaded as valid");
    expect(!s.get_int("user_id"), "an expired session kept its values");
  });
  expect(rc == SESS_OK, "loading an expired session failed: " + code_text(rc));
  rc = exists(store, id);
  expect(rc == SESS_NOT_FOUND, "the record outlived its TTL (exists: " + code_text(rc) + ")");
}

void check_regenerate(const Kit& kit) {
  sessions::Store store = kit.open();
  Browser b;
  const std::string old_id = log_in(store, &b);
  const std::string old_jar = b.jar();
  std::string new_id;
  int rc = b.request(store, [&](sessions::Session& s) {
    s.regenerate_id();
    new_id = s.id();
  });
  expect(rc == SESS_OK, "saving a regenerated session failed: " + code_text(rc));
  expect(new_id != old_id && new_id.size() == 43, "regenerate_id gave no new ID");
  expect(exists(store, old_id) == SESS_NOT_FOUND, "the old ID's record survived regenerate_id");
  expect(exists(store, new_id) == SESS_OK, "the new ID has no record");
  rc = b.request(store, [&](sessions::Session& s) {
    expect(s.get_int("user_id") == 42, "the data did not move to the new ID");
  });
  expect(rc == SESS_OK, "loading the regenerated session failed: " + code_text(rc));
  Browser stale;
  stale.set_jar(old_jar);
  rc = stale.request(store, [](sessions::Session& s) {
    expect(s.status() == SESS_STATUS_UNKNOWN_ID || s.status() == SESS_STATUS_EXPIRED,
           "the cookie from before regenerate_id loads as " + s.status_name());
    expect(!s.get_int("user_id"), "the old cookie still reaches the data");
  });
  expect(rc == SESS_OK, "a request with the old cookie failed: " + code_text(rc));

  // While regenerations run, a reader checking the old ID and then the new
  // one must always find one of them (no window with neither record).
  std::atomic<bool> done{false};
  std::atomic<int> neither{0}, errors{0};
  struct Pair {
    std::string old_id, new_id;
  };
  std::vector<Pair> pairs(1);
  std::atomic<size_t> current{0};
  pairs.reserve(64);
  pairs[0] = {new_id, new_id};
  std::thread reader([&] {
    while (!done) {
      // A pair is published before its move starts, so while `current`
      // stays the same, one of its two records must exist.
      const size_t seen = current.load();
      const Pair& p = pairs[seen];
      int a = exists(store, p.old_id);
      if (a == SESS_NOT_FOUND) a = exists(store, p.new_id);
      if (a == SESS_NOT_FOUND && current.load() == seen) ++neither;
      else if (a != SESS_OK && a != SESS_NOT_FOUND) ++errors;
    }
  });
  std::string id = new_id;
  for (int i = 0; i < 50 && neither == 0; ++i) {
    sessions::Request r(b.jar());
    sessions::Session s = r.session(store, "sid");
    s.regenerate_id();
    pairs.push_back({id, s.id()});  // reserved: the reader's reference stays valid
    current = pairs.size() - 1;
    id = s.id();
    try {
      r.finish();
    } catch (const sessions::Error&) {
      ++errors;
    }
    auto cookies = r.set_cookies();
    if (!cookies.empty()) b.set_jar(cookies[0].substr(0, cookies[0].find(';')));
  }
  done = true;
  reader.join();
  expect(neither == 0, "during regenerate_id a reader found neither record (" +
                           std::to_string(neither.load()) + " times)");
  expect(errors == 0, std::to_string(errors.load()) + " errors during the regenerations");
}

void check_destroy(const Kit& kit) {
  sessions::Store store = kit.open();
  Browser b;
  const std::string id = log_in(store, &b);
  int rc = b.request(store, [](sessions::Session& s) { s.destroy(); });
  expect(rc == SESS_OK, "destroy failed: " + code_text(rc));
  expect(b.set_cookies().size() == 1 && b.set_cookies()[0].find("Max-Age=0") != std::string::npos,
         "destroy did not expire the cookie");
  expect(exists(store, id) == SESS_NOT_FOUND, "destroy left the record");
}

// A session over a limit is refused and what was saved before stays.
void expect_refused_whole(const sessions::Store& store, Browser* b, size_t bytes,
                          const std::string& limit) {
  // Bytes that do not compress, so that the size reaches the store as it is.
  std::string blob(bytes, '\0');
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (char& c : blob) c = char((state = state * 6364136223846793005ull + 1442695040888963407ull) >> 56);
  int rc = b->request(store, [&](sessions::Session& s) { s.set_bytes("blob", blob); });
  expect(rc == SESS_E_VALUE_TOO_LARGE,
         "a session over " + limit + " gave " + code_text(rc) + ", not SESS_E_VALUE_TOO_LARGE");
  expect(b->set_cookies().empty(), "a refused save still set a cookie");
  rc = b->request(store, [&](sessions::Session& s) {
    expect(s.status() == SESS_STATUS_VALID, "after a refused save the session is " + s.status_name());
    expect(!s.contains("blob"), "a refused value was saved");
    expect(s.get_int("user_id") == 42, "a refused save lost the session's data");
  });
  expect(rc == SESS_OK, "loading after a refused save failed: " + code_text(rc));
}

void check_oversized(const Kit& kit) {
  {
    sessions::Store store = kit.open({{"max_data_bytes", "65536"}});
    Browser b;
    log_in(store, &b);
    expect_refused_whole(store, &b, 100000, "max_data_bytes");
  }
  if (size_t limit = kit.hooks().server_max_record) {
    sessions::Store store = kit.open({{"max_data_bytes", std::to_string(limit * 4)}});
    Browser b;
    log_in(store, &b);
    expect_refused_whole(store, &b, limit + 1024, "the server's limit");
  }
}

void check_hash_keys(const Kit& kit) {
  sessions::Store store = kit.open({{"hash_keys", "true"}});
  Browser b;
  const std::string id = log_in(store, &b);
  expect(exists(store, id) == SESS_OK, "with hash_keys the session's record is not found by ID");
  std::string new_id;
  int rc = b.request(store, [&](sessions::Session& s) {
    expect(s.get_int("user_id") == 42, "with hash_keys the data did not load");
    s.regenerate_id();
    new_id = s.id();
  });
  expect(rc == SESS_OK, "with hash_keys regenerate_id failed: " + code_text(rc));
  expect(exists(store, id) == SESS_NOT_FOUND && exists(store, new_id) == SESS_OK,
         "with hash_keys regenerate_id did not move the record");
  rc = b.request(store, [](sessions::Session& s) { s.destroy(); });
  expect(rc == SESS_OK && exists(store, new_id) == SESS_NOT_FOUND, "with hash_keys destroy failed");
}

void check_threads(const Kit& kit) {
  sessions::Store store = kit.open();
  constexpr int kThreads = 8, kCycles = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      Browser b;
      for (int i = 0; i < kCycles; ++i) {
        int rc = b.request(store, [&](sessions::Session& s) {
          if (s.get_int("count").value_or(0) != i || (i > 0 && s.get_int("thread") != t)) ++failures;
          s.set_int("count", i + 1);
          s.set_int("thread", t);
        });
        if (rc != SESS_OK) ++failures;
      }
    });
  for (auto& thread : threads) thread.join();
  expect(failures == 0, std::to_string(failures.load()) + " of " +
                            std::to_string(kThreads * kCycles) +
                            " cycles from 8 threads saw another session's data or failed");
}

// Parallel requests on one session: under merge (the default) each thread's
// own keys all survive; under cas, increments retried on SESS_E_CONFLICT
// reach the exact total.
void check_parallel(const Kit& kit) {
  constexpr int kThreads = 8, kRounds = 25, kIncrements = 10;
  {
    sessions::Store store = kit.open();
    Browser owner;
    log_in(store, &owner);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        Browser b;
        for (int round = 0; round < kRounds; ++round) {
          b.set_jar(owner.jar());
          if (b.request(store, [&](sessions::Session& s) {
                s.set_int("t" + std::to_string(t) + "." + std::to_string(round), round);
              }) != SESS_OK)
            ++failures;
        }
      });
    for (auto& thread : threads) thread.join();
    int missing = 0;
    owner.request(store, [&](sessions::Session& s) {
      for (int t = 0; t < kThreads; ++t)
        for (int round = 0; round < kRounds; ++round)
          if (s.get_int("t" + std::to_string(t) + "." + std::to_string(round)) != round) ++missing;
    });
    expect(failures == 0 && missing == 0,
           "8 parallel requests on one session (concurrency=merge): " +
               std::to_string(failures.load()) + " failed, " + std::to_string(missing) + " of " +
               std::to_string(kThreads * kRounds) + " keys lost");
  }
  sessions::Store store = kit.open({{"concurrency", "cas"}});
  Browser owner;
  log_in(store, &owner);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      Browser b;
      for (int i = 0; i < kIncrements; ++i) {
        int rc = SESS_E_CONFLICT;
        for (int attempt = 0; rc == SESS_E_CONFLICT && attempt < 1000; ++attempt) {
          b.set_jar(owner.jar());
          rc = b.request(store, [](sessions::Session& s) {
            s.set_int("n", s.get_int("n").value_or(0) + 1);
          });
        }
        if (rc != SESS_OK) ++failures;
      }
    });
  for (auto& thread : threads) thread.join();
  int64_t n = -1;
  owner.request(store, [&](sessions::Session& s) { n = s.get_int("n").value_or(0); });
  expect(failures == 0 && n == kThreads * kIncrements,
         "8 parallel increments under concurrency=cas with retries reached " + std::to_string(n) +
             ", not " + std::to_string(kThreads * kIncrements) + " (" +
             std::to_string(failures.load()) + " failed)");
}

// Three sessions of one principal, all but one ended: the ended ones no
// longer load (unknown_id where the store deletes them through its index,
// revoked where it revokes by stamps), the kept one and another principal's
// still do. Listed, where the store can list.
void check_principals(const Kit& kit) {
  sessions::Store store = kit.open();
  // Unique per run: records of an earlier run may still be in the store.
  const std::string who = "conformance:" + std::to_string(Clock::now().time_since_epoch().count());
  const std::string other_who = who + ":other";
  Browser a, b, c, other;
  for (auto [browser, principal] : {std::pair{&a, &who}, {&b, &who}, {&c, &who}, {&other, &other_who}}) {
    int rc = browser->request(store, [&](sessions::Session& s) {
      s.regenerate_id();
      s.set_principal(*principal);
      s.set_int("user_id", 42);
    });
    expect(rc == SESS_OK, "a login with a principal failed: " + code_text(rc) + ": " + sess_last_error());
  }
  sess_session_list* list = nullptr;
  int rc = sess_store_list_sessions(store.get(), who.c_str(), &list);
  expect(rc == SESS_OK || rc == SESS_E_UNSUPPORTED, "listing failed: " + code_text(rc));
  if (rc == SESS_OK)
    expect(sess_session_list_count(list) == 3,
           "listing shows " + std::to_string(sess_session_list_count(list)) + " sessions, not 3");
  sess_session_list_free(list);
  int64_t ended = 0;
  rc = a.request(store, [&](sessions::Session& s) { ended = store.end_sessions(who, s.get()); });
  expect(rc == SESS_OK, "ending all sessions but one failed: " + code_text(rc) + ": " + sess_last_error());
  expect(ended == 2 || ended == -1, "ending reported " + std::to_string(ended) + " sessions, not 2");
  auto status_of = [&](Browser& browser) {
    int status = -1;
    browser.request(store, [&](sessions::Session& s) { status = s.status(); });
    return status;
  };
  expect(status_of(a) == SESS_STATUS_VALID, "the kept session no longer loads");
  for (Browser* ended_browser : {&b, &c}) {
    const int status = status_of(*ended_browser);
    expect(status == SESS_STATUS_UNKNOWN_ID || status == SESS_STATUS_REVOKED,
           std::string("an ended session loads as ") + sess_status_name(status));
  }
  expect(status_of(other) == SESS_STATUS_VALID, "another principal's session was ended");
  store.end_sessions(who);
  store.end_sessions(other_who);
}

void check_down_at_open(const Kit& kit) {
  kit.call(kit.hooks().stop, "stop");
  int rc = SESS_OK;
  try {
    sessions::Store store = kit.open();
    Browser b;
    rc = b.request(store, [](sessions::Session& s) { s.set_int("n", 1); });  // opens lazily
  } catch (const sessions::Error& e) {
    rc = e.code();
  }
  kit.call(kit.hooks().start, "start");
  expect(rc == SESS_E_STORE_UNAVAILABLE,
         "with the server down, opening and using the store gave " + code_text(rc));
}

void check_killed(const Kit& kit) {
  sessions::Store store = kit.open();
  Browser b;
  log_in(store, &b);
  kit.call(kit.hooks().stop, "stop");
  bool got_session = false;
  int rc = b.request(store, [&](sessions::Session&) { got_session = true; });
  Browser other;
  int save_rc = other.request(store, [](sessions::Session& s) { s.set_int("x", 1); });
  const bool cookie_set = !other.set_cookies().empty();
  kit.call(kit.hooks().start, "start");
  expect(!got_session && rc == SESS_E_STORE_UNAVAILABLE,
         "with the server killed a request got a session (" + code_text(rc) + ")");
  expect(save_rc == SESS_E_STORE_UNAVAILABLE && !cookie_set,
         "with the server killed a save gave " + code_text(save_rc) +
             (cookie_set ? " and set a cookie" : ""));
  rc = request_when_back(store, &b, [&](sessions::Session& s) {
    if (kit.hooks().persistent) {
      expect(s.status() == SESS_STATUS_VALID, "after a restart the session is " + s.status_name());
      expect(s.get_int("user_id") == 42, "after a restart the session lost its data");
    }
  });
  expect(rc == SESS_OK, "after the server came back a request failed: " + code_text(rc));
}

void check_hung(const Kit& kit) {
  sessions::Store store = kit.open();
  Browser b;
  log_in(store, &b);
  kit.call(kit.hooks().pause, "pause");
  const auto start = Clock::now();
  int rc = b.request(store);
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  kit.call(kit.hooks().resume, "resume");
  expect(rc == SESS_E_STORE_UNAVAILABLE, "with the server hung a request gave " + code_text(rc));
  expect(waited <= kit.hooks().hang_bound_ms,
         "with the server hung a request waited " + std::to_string(waited) + " ms (bound " +
             std::to_string(kit.hooks().hang_bound_ms) + " ms: set the store's timeout)");
  rc = request_when_back(store, &b, [](sessions::Session& s) {
    expect(s.get_int("user_id") == 42, "after the server resumed the session is gone");
  });
  expect(rc == SESS_OK, "after the server resumed a request failed: " + code_text(rc));
}

struct Check {
  const char* name;
  void (*run)(const Kit&);
  bool (*can_run)(const Kit&);
};

bool always(const Kit&) { return true; }
bool stoppable(const Kit& kit) { return kit.can_stop(); }
bool pausable(const Kit& kit) { return kit.can_pause(); }

const Check kChecks[] = {
    {"round_trip", check_round_trip, always},   {"expiry", check_expiry, always},
    {"regenerate", check_regenerate, always},   {"destroy", check_destroy, always},
    {"oversized", check_oversized, always},     {"hash_keys", check_hash_keys, always},
    {"threads", check_threads, always},         {"parallel", check_parallel, always},
    {"principals", check_principals, always},
    {"down_at_open", check_down_at_open, stoppable},
    {"killed", check_killed, stoppable},        {"hung", check_hung, pausable},
};

}  // namespace

extern "C" int sess_conformance_run(const char* uri, const char* const* options,
                                    const sess_conformance_hooks* hooks,
                                    sess_conformance_report report, void* report_user) {
  if (!uri || !report) return -1;
  sess_conformance_hooks h{};
  if (hooks) std::memcpy(&h, hooks, std::min(hooks->size, sizeof h));
  h.size = sizeof h;
  Options list;
  for (const char* const* p = options; p && p[0]; p += 2) {
    if (!p[1]) return -1;
    list.emplace_back(p[0], p[1]);
  }
  const Kit kit(uri, std::move(list), h);
  int failed = 0;
  for (const Check& check : kChecks) {
    if (!check.can_run(kit)) {
      report(report_user, check.name, SESS_CHECK_SKIPPED, "the hooks cannot stop or pause the server");
      continue;
    }
    std::string detail;
    try {
      check.run(kit);
    } catch (const Failed& f) {
      detail = f.what;
    } catch (const sessions::Error& e) {
      detail = std::string("unexpected error: ") + e.what();
    } catch (const std::exception& e) {
      detail = std::string("unexpected exception: ") + e.what();
    }
    failed += !detail.empty();
    report(report_user, check.name, detail.empty() ? SESS_CHECK_PASSED : SESS_CHECK_FAILED,
           detail.c_str());
  }
  return failed;
}
