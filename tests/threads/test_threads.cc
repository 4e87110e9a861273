// Full request cycles from 8 threads through the C ABI (libsessions.so, as
// users link it), on every store that needs no second machine: memory:,
// cookie: (both codecs), file:, sqlite: and redis: on a real redis-server.
// Built in every build; scripts/test.sh also runs it under ThreadSanitizer
// (build/tsan), where any data race in the core, the C ABI or the stores
// fails the test.
//
// Catch2 v2's assertions are not thread-safe: worker threads record what
// went wrong in a Failures list, which the main thread checks after joining.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "servers.h"
#include "sessions.h"

using sessions::testing::RedisServer;
using sessions::testing::TempDir;

namespace {

constexpr int kThreads = 8;
const std::string kSecret = "threads-secret-threads-secret-threads-secret";

// What went wrong on any thread; checked on the main thread.
class Failures {
 public:
  void add(std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (list_.size() < 20) list_.push_back(std::move(what));
    ++count_;
  }
  // Main thread only, after the workers joined.
  void check() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& what : list_) UNSCOPED_INFO(what);
    CHECK(count_ == 0);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> list_;
  long count_ = 0;
};

// `detail` is only evaluated when the condition fails.
#define EXPECT(failures, cond, detail)                                                            \
  do {                                                                                            \
    if (!(cond))                                                                                  \
      (failures).add(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " #cond + " [" + \
                     std::string(detail) + "] last error: " + sess_last_error());                 \
  } while (0)

// Counters that say the interesting paths did run.
struct Stats {
  std::atomic<long> cycles{0}, regenerated{0}, destroyed{0}, stale_checked{0},
      finished_on_closed_store{0}, stores_opened{0};
};

// Opens a store; usable from any thread. nullptr (and a failure) on error.
sess_store* open_store(const std::string& uri, Failures& f) {
  sess_config* config = nullptr;
  if (sess_config_new(&config) != SESS_OK) {
    f.add("sess_config_new failed");
    return nullptr;
  }
  sess_store* store = nullptr;
  int rc = sess_config_add_secret(config, kSecret.data(), kSecret.size());
  if (rc == SESS_OK) rc = sess_store_open(uri.c_str(), config, &store);
  sess_config_free(config);
  EXPECT(f, rc == SESS_OK, "opening " + uri);
  return rc == SESS_OK ? store : nullptr;
}

// The stores of these tests, by kind. The URIs need a directory and a
// redis-server, which each test case starts (see Places).
enum Kind { kMemory, kCookie, kCookieHmac, kFile, kSqlite, kRedis, kKinds };
constexpr std::array<Kind, kKinds> kAllKinds = {kMemory, kCookie, kCookieHmac,
                                                kFile,   kSqlite, kRedis};
const char* const kKindNames[kKinds] = {"memory", "cookie", "cookie-hmac",
                                        "file",   "sqlite", "redis"};
// Server-side stores keep a record under an ID; the cookie store keeps it all in the cookie.
bool server_side(Kind kind) { return kind != kCookie && kind != kCookieHmac; }

// A directory and a redis-server for one test case, and the URI of each kind.
// gc_interval=1s: the file and SQLite collectors run during the test, beside
// the request threads (they remove nothing: every record is 30 days from expiry).
struct Places {
  TempDir dir;
  std::unique_ptr<RedisServer> redis;
  explicit Places(bool with_redis) {
    if (with_redis) redis = std::make_unique<RedisServer>();
  }
  ~Places() {
    if (redis) redis->process.stop();  // by its PID
  }
  std::string uri(Kind kind) const {
    switch (kind) {
      case kMemory: return "memory:";
      case kCookie: return "cookie:";
      case kCookieHmac: return "cookie:?codec=hmac-sha256";
      case kFile: return "file://" + dir.path() + "/files?gc_interval=1s";
      case kSqlite: return "sqlite://" + dir.path() + "/s.db?gc_interval=1s";
      case kRedis: return redis->uri();
      default: return "";
    }
  }
};

// A browser's cookies: each Set-Cookie of a finished request kept, as
// "name=value", and sent back as the next request's Cookie header.
class Jar {
 public:
  std::string header() const {
    std::string out;
    for (const auto& [name, value] : cookies_)
      out += (out.empty() ? "" : "; ") + name + "=" + value;
    return out;
  }
  std::string value(const std::string& name) const {
    auto it = cookies_.find(name);
    return it == cookies_.end() ? "" : it->second;
  }
  void keep(const sess_request* req) {
    for (size_t i = 0; i < sess_request_set_cookie_count(req); ++i) {
      size_t len = 0;
      const char* raw = sess_request_set_cookie(req, i, &len);
      std::string line(raw, len);
      std::string pair = line.substr(0, line.find(';'));
      size_t eq = pair.find('=');
      std::string name = pair.substr(0, eq);
      if (line.find("; Max-Age=0;") != std::string::npos ||
          line.find("; Max-Age=-") != std::string::npos)
        cookies_.erase(name);
      else
        cookies_[name] = pair.substr(eq + 1);
    }
  }

 private:
  std::map<std::string, std::string> cookies_;
};

// What the server should hold for one browser's session.
struct Model {
  int64_t count = 0;                  // 0: no session; the next request gets a new one
  std::string id;                     // the ID last seen (server-side stores)
  std::string flash;                  // a flash the last request added: read once by the next
  std::string alert;                  // a JSON flash of kind "alert", likewise
  int lost_status = SESS_STATUS_NEW;  // the status expected when count == 0
};

std::string blob_of(int64_t n) { return std::string("\0\xff", 2) + std::to_string(n); }
std::string cart_of(int64_t n) {
  return "[" + std::to_string(n) + ",\"sku-" + std::to_string(n) + "\",true]";
}

// Every value the request that set count = n wrote.
void check_values(const sess_session* s, int64_t n, const std::string& owner, Failures& f,
                  const std::string& where) {
  int64_t count = -1;
  EXPECT(f, sess_get_int(s, "count", &count) == SESS_OK && count == n,
         where + ": count " + std::to_string(count) + ", expected " + std::to_string(n));
  const char* str = nullptr;
  size_t len = 0;
  EXPECT(f, sess_get_str(s, "owner", &str, &len) == SESS_OK && std::string(str, len) == owner,
         where + ": owner");
  double half = 0;
  EXPECT(f, sess_get_double(s, "half", &half) == SESS_OK && half == double(n) / 2,
         where + ": half");
  int odd = -1;
  EXPECT(f, sess_get_bool(s, "odd", &odd) == SESS_OK && odd == int(n % 2), where + ": odd");
  const void* bytes = nullptr;
  EXPECT(f,
         sess_get_bytes(s, "blob", &bytes, &len) == SESS_OK &&
             std::string(static_cast<const char*>(bytes), len) == blob_of(n),
         where + ": blob");
  char* json = nullptr;
  EXPECT(f,
         sess_get_json(s, "cart", &json, &len) == SESS_OK && std::string(json, len) == cart_of(n),
         where + ": cart " + (json ? json : "(none)"));
  sess_free(json);
  int type = -1;
  EXPECT(f, sess_get_type(s, "nothing", &type) == SESS_OK && type == SESS_TYPE_NIL,
         where + ": nil");
  const int even = sess_get_str(s, "even", &str, &len);
  if (n % 2 == 0)
    EXPECT(f, even == SESS_OK && std::string(str, len) == "yes", where + ": even");
  else
    EXPECT(f, even == SESS_NOT_FOUND, where + ": 'even' was deleted");
  EXPECT(f, sess_count(s) == (n % 2 == 0 ? 8u : 7u),
         where + ": " + std::to_string(sess_count(s)) + " keys");
}

enum class Action { wrote, regenerated, destroyed };
struct Outcome {
  Action action = Action::wrote;
  bool was_valid = false;
};

// One request's work on one session: checks that it holds what the previous
// request wrote (values and flashes), then writes the next values, and every
// few requests regenerates the ID or destroys the session. `cycle` is the
// browser's request number.
Outcome work(sess_session* s, Model& m, const std::string& owner, int cycle, Failures& f,
             const std::string& where) {
  Outcome out;
  if (m.count == 0) {
    EXPECT(f, sess_session_status(s) == m.lost_status,
           where + ": status " + sess_status_name(sess_session_status(s)) + ", expected " +
               sess_status_name(m.lost_status));
    EXPECT(f, sess_session_is_new(s) == 1 && sess_count(s) == 0, where + ": not a new session");
  } else {
    out.was_valid = sess_session_status(s) == SESS_STATUS_VALID;
    EXPECT(f, out.was_valid, where + ": status " + sess_status_name(sess_session_status(s)));
    EXPECT(f, sess_session_is_new(s) == 0, where);
    if (out.was_valid) check_values(s, m.count, owner, f, where);
  }
  char* json = nullptr;
  size_t len = 0;
  const std::string flashes = m.flash.empty() ? "[]" : "[\"" + m.flash + "\"]";
  EXPECT(f,
         sess_flashes_json(s, nullptr, &json, &len) == SESS_OK && std::string(json, len) == flashes,
         where + ": flashes " + (json ? json : "(none)") + ", expected " + flashes);
  sess_free(json);
  json = nullptr;
  const std::string alerts = "[" + m.alert + "]";
  EXPECT(f,
         sess_flashes_json(s, "alert", &json, &len) == SESS_OK && std::string(json, len) == alerts,
         where + ": alerts " + (json ? json : "(none)") + ", expected " + alerts);
  sess_free(json);
  m.flash.clear();
  m.alert.clear();

  if (m.count > 0 && cycle % 11 == 10) {
    EXPECT(f, sess_session_destroy(s) == SESS_OK, where);
    m.count = 0;
    m.lost_status = SESS_STATUS_NEW;  // the cookie is expired: the next request has none
    out.action = Action::destroyed;
    return out;
  }
  const int64_t n = m.count + 1;
  EXPECT(f, sess_set_int(s, "count", n) == SESS_OK, where);
  EXPECT(f, sess_set_str(s, "owner", owner.data(), owner.size()) == SESS_OK, where);
  EXPECT(f, sess_set_double(s, "half", double(n) / 2) == SESS_OK, where);
  EXPECT(f, sess_set_bool(s, "odd", int(n % 2)) == SESS_OK, where);
  const std::string blob = blob_of(n), cart = cart_of(n);
  EXPECT(f, sess_set_bytes(s, "blob", blob.data(), blob.size()) == SESS_OK, where);
  EXPECT(f, sess_set_json(s, "cart", cart.data(), cart.size()) == SESS_OK, where);
  EXPECT(f, sess_set_nil(s, "nothing") == SESS_OK, where);
  if (n % 2 == 0)
    EXPECT(f, sess_set_str(s, "even", "yes", 3) == SESS_OK, where);
  else
    EXPECT(f, sess_delete(s, "even") == SESS_OK, where);
  if (cycle % 3 == 0) {
    m.flash = "hello " + owner + " " + std::to_string(cycle);
    EXPECT(f, sess_add_flash_str(s, nullptr, m.flash.data(), m.flash.size()) == SESS_OK, where);
  }
  if (cycle % 5 == 0) {
    m.alert = "{\"cycle\":" + std::to_string(cycle) + "}";
    EXPECT(f, sess_add_flash_json(s, "alert", m.alert.data(), m.alert.size()) == SESS_OK, where);
  }
  m.count = n;
  if (out.was_valid && cycle % 7 == 6) {
    EXPECT(f, sess_session_regenerate_id(s) == SESS_OK, where);
    out.action = Action::regenerated;
  }
  return out;
}

// After sess_request_finish: the session's ID is the model's, a new one after
// regenerate_id, none for the cookie store.
void after_finish(const sess_session* s, Model& m, const Outcome& o, bool server_side, Failures& f,
                  const std::string& where) {
  if (o.action == Action::destroyed) {
    m.id.clear();
    return;
  }
  const std::string id = sess_session_id(s);
  if (!server_side) {
    EXPECT(f, id.empty(), where + ": the cookie store has no ID");
    return;
  }
  EXPECT(f, id.size() == 43, where + ": ID '" + id + "'");
  if (o.action == Action::regenerated)
    EXPECT(f, id != m.id, where + ": regenerate_id kept the ID");
  else if (o.was_valid)
    EXPECT(f, id == m.id, where + ": the ID changed");
  m.id = id;
}

// One request: begin with the jar's header, sessions opened with open(),
// finish, the Set-Cookie values kept in the jar, free.
class Cycle {
 public:
  Cycle(const Jar& jar, Failures& f, std::string where) : f_(f), where_(std::move(where)) {
    const std::string header = jar.header();
    ok_ = sess_request_begin(header.data(), header.size(), &req_) == SESS_OK;
    EXPECT(f_, ok_, where_ + ": sess_request_begin");
  }
  ~Cycle() { sess_request_free(req_); }
  Cycle(const Cycle&) = delete;
  Cycle& operator=(const Cycle&) = delete;

  sess_session* open(sess_store* store, const char* name) {
    sess_session* s = nullptr;
    if (!ok_) return nullptr;
    int rc = sess_request_session(req_, store, name, &s);
    EXPECT(f_, rc == SESS_OK && s, where_ + ": sess_request_session " + name);
    if (rc != SESS_OK) ok_ = false;
    return rc == SESS_OK ? s : nullptr;
  }
  // Every session changed, so each sends one Set-Cookie.
  bool finish(Jar& jar, size_t set_cookies) {
    if (!ok_) return false;
    int rc = sess_request_finish(req_);
    EXPECT(f_, rc == SESS_OK, where_ + ": sess_request_finish");
    EXPECT(f_, sess_request_set_cookie_count(req_) == set_cookies,
           where_ + ": " + std::to_string(sess_request_set_cookie_count(req_)) + " Set-Cookie");
    jar.keep(req_);
    return rc == SESS_OK;
  }
  sess_request* get() { return req_; }

 private:
  Failures& f_;
  std::string where_;
  sess_request* req_ = nullptr;
  bool ok_ = false;
};

// After regenerate_id or destroy on a server-side store, the cookie from
// before finds no record: a new session, status unknown_id.
void check_stale_cookie(sess_store* store, const char* name, const std::string& old_value,
                        Failures& f, Stats& stats, const std::string& where) {
  if (old_value.empty()) return;
  const std::string header = std::string(name) + "=" + old_value;
  sess_request* req = nullptr;
  sess_session* s = nullptr;
  if (sess_request_begin(header.data(), header.size(), &req) == SESS_OK &&
      sess_request_session(req, store, name, &s) == SESS_OK) {
    EXPECT(f, sess_session_status(s) == SESS_STATUS_UNKNOWN_ID && sess_count(s) == 0,
           where + ": the old cookie gave " + sess_status_name(sess_session_status(s)));
    ++stats.stale_checked;
  } else {
    f.add(where + ": a request with the old cookie failed: " + sess_last_error());
  }
  sess_request_free(req);  // unfinished: saves nothing
}

// A read-only request at the end: the last values written are there.
void check_final(sess_store* store, const char* name, const Jar& jar, const Model& m,
                 const std::string& owner, Failures& f, const std::string& where) {
  Cycle c(jar, f, where + " (final)");
  sess_session* s = c.open(store, name);
  if (!s) return;
  if (m.count == 0) {
    EXPECT(f, sess_session_is_new(s) == 1, where + " (final): a session after destroy");
  } else {
    EXPECT(f, sess_session_status(s) == SESS_STATUS_VALID, where + " (final)");
    check_values(s, m.count, owner, f, where + " (final)");
  }
}

// A browser of one session, in one store: a full request cycle with every
// check above, and for server-side stores the cookie from before a
// regenerate_id or destroy checked to find nothing.
struct Browser {
  Jar jar;
  Model model;
  std::string owner;
  int cycles = 0;

  void request(sess_store* store, Kind kind, Failures& f, Stats& stats) {
    const std::string where =
        std::string(kKindNames[kind]) + " " + owner + " #" + std::to_string(cycles);
    const std::string old_cookie = jar.value("sid");
    Outcome o;
    bool finished = false;
    sess_session* s = nullptr;
    {
      Cycle c(jar, f, where);
      s = c.open(store, "sid");
      if (s) {
        o = work(s, model, owner, cycles, f, where);
        finished = c.finish(jar, 1);
        if (finished) after_finish(s, model, o, server_side(kind), f, where);
      }
    }
    ++cycles;
    ++stats.cycles;
    if (!finished) return;
    if (o.action == Action::regenerated) ++stats.regenerated;
    if (o.action == Action::destroyed) ++stats.destroyed;
    if (server_side(kind) && o.action != Action::wrote)
      check_stale_cookie(store, "sid", old_cookie, f, stats, where);
  }
};

// 8 threads, each with two browsers taking turns, on one store they share.
void run_cycles(Kind kind, int cycles_per_thread) {
  Places places(kind == kRedis);
  Failures f;
  Stats stats;
  sess_store* store = open_store(places.uri(kind), f);
  REQUIRE(store);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Browser browsers[2];
      for (int u = 0; u < 2; ++u)
        browsers[u].owner = "t" + std::to_string(t) + "u" + std::to_string(u);
      for (int i = 0; i < cycles_per_thread; ++i) browsers[i % 2].request(store, kind, f, stats);
      for (auto& b : browsers)
        check_final(store, "sid", b.jar, b.model, b.owner, f,
                    std::string(kKindNames[kind]) + " " + b.owner);
    });
  }
  for (auto& t : threads) t.join();
  sess_store_close(store);
  f.check();
  CHECK(stats.cycles == kThreads * cycles_per_thread);
  CHECK(stats.regenerated > 0);
  CHECK(stats.destroyed > 0);
  if (server_side(kind)) CHECK(stats.stale_checked == stats.regenerated + stats.destroyed);
}

}  // namespace

TEST_CASE("memory: 8 threads of full request cycles on one store", "[threads]") {
  run_cycles(kMemory, 1000);
}
TEST_CASE("cookie: 8 threads of full request cycles on one store", "[threads]") {
  run_cycles(kCookie, 1000);
}
TEST_CASE("cookie:?codec=hmac-sha256 8 threads of full request cycles on one store", "[threads]") {
  run_cycles(kCookieHmac, 1000);
}
TEST_CASE("file: 8 threads of full request cycles on one store", "[threads]") {
  run_cycles(kFile, 400);
}
TEST_CASE("sqlite: 8 threads of full request cycles on one store", "[threads]") {
  run_cycles(kSqlite, 300);
}
TEST_CASE("redis: 8 threads of full request cycles on one store", "[threads]") {
  run_cycles(kRedis, 400);
}

TEST_CASE("one store of each kind shared by all threads and each browser served by any thread",
          "[threads]") {
  // As in a server's thread pool: a browser's consecutive requests land on
  // whichever thread is free, so each session is written by one thread and
  // read by another. 36 browsers over the six stores, each store shared by
  // all 8 threads; one browser is in one request at a time.
  Places places(true);
  Failures f;
  Stats stats;
  sess_store* stores[kKinds];
  for (Kind k : kAllKinds) REQUIRE((stores[k] = open_store(places.uri(k), f)));
  constexpr int kBrowsersPerKind = 6, kCyclesPerBrowser = 100;
  struct Client {
    Kind kind;
    Browser browser;
    std::set<std::thread::id> served_by;
  };
  std::vector<Client> clients;
  for (Kind k : kAllKinds)
    for (int b = 0; b < kBrowsersPerKind; ++b)
      clients.push_back(
          Client{k, Browser{{}, {}, std::string(kKindNames[k]) + "-b" + std::to_string(b), 0}, {}});
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Client*> ready;
  size_t done = 0;
  for (auto& c : clients) ready.push_back(&c);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (true) {
        Client* c = nullptr;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return !ready.empty() || done == clients.size(); });
          if (ready.empty()) return;
          c = ready.front();
          ready.pop_front();
        }
        c->served_by.insert(std::this_thread::get_id());
        c->browser.request(stores[c->kind], c->kind, f, stats);
        {
          std::lock_guard<std::mutex> lock(mu);
          if (c->browser.cycles < kCyclesPerBrowser)
            ready.push_back(c);
          else
            ++done;
        }
        cv.notify_all();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& c : clients)
    check_final(stores[c.kind], "sid", c.browser.jar, c.browser.model, c.browser.owner, f,
                std::string(kKindNames[c.kind]) + " " + c.browser.owner);
  for (Kind k : kAllKinds) sess_store_close(stores[k]);
  f.check();
  CHECK(stats.cycles == long(clients.size()) * kCyclesPerBrowser);
  size_t hopped = 0;
  for (auto& c : clients) hopped += c.served_by.size() > 1;
  CHECK(hopped > 0);
}

TEST_CASE("six sessions of six stores in one request from 8 threads", "[threads]") {
  // Each request opens one session in every store, under six cookie names,
  // and sends six Set-Cookie values back; each session regenerates and is
  // destroyed on its own schedule.
  Places places(true);
  Failures f;
  Stats stats;
  sess_store* stores[kKinds];
  for (Kind k : kAllKinds) REQUIRE((stores[k] = open_store(places.uri(k), f)));
  constexpr int kCycles = 120;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string owner = "t" + std::to_string(t);
      Jar jar;
      Model models[kKinds];
      for (int i = 0; i < kCycles; ++i) {
        const std::string where = owner + " #" + std::to_string(i);
        std::string old_cookies[kKinds];
        for (Kind k : kAllKinds) old_cookies[k] = jar.value(kKindNames[k]);
        Outcome outcomes[kKinds];
        sess_session* sessions[kKinds] = {};
        bool finished = false;
        {
          Cycle c(jar, f, where);
          for (Kind k : kAllKinds) sessions[k] = c.open(stores[k], kKindNames[k]);
          if (i == 0) {  // one cookie name, one store per request
            sess_session* other = nullptr;
            EXPECT(f,
                   sess_request_session(c.get(), stores[kCookie], kKindNames[kMemory], &other) ==
                       SESS_E_INVALID_ARGUMENT,
                   where + ": a name used with another store");
            EXPECT(f, std::strlen(sess_last_error()) > 0, where + ": no message");
          }
          bool all = true;
          for (Kind k : kAllKinds) all = all && sessions[k];
          if (all) {
            // Offsets: the sessions regenerate and are destroyed in different requests.
            for (Kind k : kAllKinds)
              outcomes[k] =
                  work(sessions[k], models[k], owner, i + k, f, where + " " + kKindNames[k]);
            finished = c.finish(jar, kKinds);
            if (finished)
              for (Kind k : kAllKinds)
                after_finish(sessions[k], models[k], outcomes[k], server_side(k), f,
                             where + " " + kKindNames[k]);
          }
        }
        ++stats.cycles;
        if (!finished) continue;
        for (Kind k : kAllKinds) {
          if (outcomes[k].action == Action::regenerated) ++stats.regenerated;
          if (outcomes[k].action == Action::destroyed) ++stats.destroyed;
          if (server_side(k) && outcomes[k].action != Action::wrote)
            check_stale_cookie(stores[k], kKindNames[k], old_cookies[k], f, stats,
                               where + " " + kKindNames[k]);
        }
      }
      for (Kind k : kAllKinds)
        check_final(stores[k], kKindNames[k], jar, models[k], owner, f,
                    owner + " " + kKindNames[k]);
    });
  }
  for (auto& t : threads) t.join();
  for (Kind k : kAllKinds) sess_store_close(stores[k]);
  f.check();
  CHECK(stats.cycles == kThreads * kCycles);
  CHECK(stats.regenerated > 0);
  CHECK(stats.destroyed > 0);
}

TEST_CASE("stores opened and closed by one thread while 8 others run requests on them",
          "[threads]") {
  // One thread keeps replacing the store of each kind with a newly opened
  // one and closing the old one, while 8 threads run requests on whichever
  // store they took. sess_store_close releases only the caller's reference:
  // a request that took the store before it was closed finishes on it (some
  // requests sleep between taking the store and finishing to make that
  // common). The stores on files, SQLite, Redis and cookies find each
  // session again in the next store opened on the same place and secret;
  // a new memory: store is empty, so a session saved in an older one comes
  // back as unknown_id.
  Places places(true);
  Failures f;
  Stats stats;
  struct Slot {
    std::mutex mu;  // held while a worker takes the store: sess_request_session
    sess_store* store = nullptr;
    int generation = 0;
    std::atomic<int> closed_through{0};  // generations up to this one are closed
  };
  Slot slots[kKinds];
  for (Kind k : kAllKinds) {
    REQUIRE((slots[k].store = open_store(places.uri(k), f)));
    slots[k].generation = 1;
  }
  std::atomic<bool> stop{false};
  constexpr int kGenerations = 60;

  std::thread opener([&] {
    for (int g = 2; g <= kGenerations && !stop; ++g) {
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
      for (Kind k : kAllKinds) {
        sess_store* fresh = open_store(places.uri(k), f);
        if (!fresh) {
          stop = true;
          return;
        }
        ++stats.stores_opened;
        sess_store* old = nullptr;
        {
          std::lock_guard<std::mutex> lock(slots[k].mu);
          old = slots[k].store;
          slots[k].store = fresh;
          slots[k].generation = g;
        }
        sess_store_close(old);  // requests that took it keep it alive
        slots[k].closed_through = g - 1;
      }
    }
    stop = true;
  });

  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      Browser browsers[kKinds];
      int generation_of[kKinds] = {};  // the generation the session was last saved in
      for (Kind k : kAllKinds) browsers[k].owner = "t" + std::to_string(t);
      for (int i = 0; !stop || i < 2 * kKinds; ++i) {
        const Kind k = kAllKinds[size_t(i + t) % kKinds];
        Browser& b = browsers[k];
        const std::string where =
            std::string(kKindNames[k]) + " " + b.owner + " #" + std::to_string(b.cycles);
        Slot& slot = slots[k];
        int generation = 0;
        Outcome o;
        bool finished = false;
        {
          Cycle c(b.jar, f, where);
          sess_session* s = nullptr;
          {
            std::lock_guard<std::mutex> lock(slot.mu);
            s = c.open(slot.store, "sid");
            generation = slot.generation;
          }
          if (!s) continue;
          // From here on the store may be closed: the session holds it.
          if (k == kMemory && b.model.count > 0 && generation != generation_of[k]) {
            b.model = Model{};  // saved in an older memory: store, gone with it
            b.model.lost_status = SESS_STATUS_UNKNOWN_ID;
          }
          o = work(s, b.model, b.owner, b.cycles, f, where);
          if (i % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
          if (slot.closed_through >= generation) ++stats.finished_on_closed_store;
          finished = c.finish(b.jar, 1);
          if (finished) after_finish(s, b.model, o, server_side(k), f, where);
        }
        ++b.cycles;
        ++stats.cycles;
        if (!finished) continue;
        generation_of[k] = generation;
        if (o.action == Action::regenerated) ++stats.regenerated;
        if (o.action == Action::destroyed) ++stats.destroyed;
      }
      for (Kind k : kAllKinds) {
        Browser& b = browsers[k];
        std::lock_guard<std::mutex> lock(slots[k].mu);
        if (k == kMemory && slots[k].generation != generation_of[k]) continue;  // gone
        check_final(slots[k].store, "sid", b.jar, b.model, b.owner, f,
                    std::string(kKindNames[k]) + " " + b.owner);
      }
    });
  }
  opener.join();
  for (auto& t : workers) t.join();
  for (Kind k : kAllKinds) sess_store_close(slots[k].store);
  f.check();
  CHECK(stats.stores_opened == (kGenerations - 1) * kKinds);
  CHECK(stats.cycles >= kThreads * 2 * kKinds);
  CHECK(stats.regenerated > 0);
  CHECK(stats.destroyed > 0);
  CHECK(stats.finished_on_closed_store > 0);
}
