// Custom stores through the public ABI, as a user writes them: a C table of
// callbacks, a registered scheme, and the C++ Backend class.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sessions.hpp"

namespace {

const std::string kSecret = "backend-secret-backend-secret-backend!";

// A C backend: a map under a mutex, with expiry, and switches to make it fail.
struct KvState {
  std::mutex mutex;
  std::map<std::string, std::pair<std::string, int64_t>> records;  // key -> (data, expires_at)
  int fail_with = SESS_OK;       // returned by every callback when set
  const char* reason = nullptr;  // given with sess_backend_set_error
  std::string oversized;         // when set, load returns this instead
  std::atomic<int> loads{0}, saves{0}, erases{0}, moves{0}, starts{0};
  std::atomic<int>* closes = nullptr;
};

int kv_failure(KvState* kv) {
  if (kv->reason) sess_backend_set_error(kv->reason);
  return kv->fail_with;
}

int kv_load(void* state, const char* key, int64_t now, sess_sink* sink) {
  auto* kv = static_cast<KvState*>(state);
  ++kv->loads;
  if (kv->fail_with != SESS_OK) return kv_failure(kv);
  if (!kv->oversized.empty()) {  // past max_data_bytes the sink refuses it: the load is foreign
    sess_sink_write(sink, kv->oversized.data(), kv->oversized.size());
    return SESS_OK;
  }
  std::lock_guard<std::mutex> lock(kv->mutex);
  auto it = kv->records.find(key);
  if (it == kv->records.end() || now >= it->second.second) return SESS_NOT_FOUND;
  const std::string& data = it->second.first;
  // In two pieces, as a streaming backend would.
  size_t half = data.size() / 2;
  if (sess_sink_write(sink, data.data(), half) != SESS_OK) return SESS_E_STORE_UNAVAILABLE;
  return sess_sink_write(sink, data.data() + half, data.size() - half) == SESS_OK
             ? SESS_OK
             : SESS_E_STORE_UNAVAILABLE;
}

int kv_save(void* state, const char* key, const void* data, size_t len, int64_t now, int64_t ttl) {
  auto* kv = static_cast<KvState*>(state);
  ++kv->saves;
  if (kv->fail_with != SESS_OK) return kv_failure(kv);
  std::lock_guard<std::mutex> lock(kv->mutex);
  kv->records[key] = {std::string(static_cast<const char*>(data), len), now + ttl};
  return SESS_OK;
}

int kv_erase(void* state, const char* key) {
  auto* kv = static_cast<KvState*>(state);
  ++kv->erases;
  if (kv->fail_with != SESS_OK) return kv_failure(kv);
  std::lock_guard<std::mutex> lock(kv->mutex);
  kv->records.erase(key);
  return SESS_OK;
}

int kv_move(void* state, const char* from, const char* to, const void* data, size_t len,
            int64_t now, int64_t ttl) {
  auto* kv = static_cast<KvState*>(state);
  ++kv->moves;
  if (kv->fail_with != SESS_OK) return kv_failure(kv);
  std::lock_guard<std::mutex> lock(kv->mutex);
  kv->records[to] = {std::string(static_cast<const char*>(data), len), now + ttl};
  kv->records.erase(from);
  return SESS_OK;
}

int kv_start(void* state) {
  ++static_cast<KvState*>(state)->starts;
  return SESS_OK;
}

void kv_close(void* state) {
  auto* kv = static_cast<KvState*>(state);
  if (kv->closes) ++*kv->closes;
  delete kv;
}

const sess_backend_ops kKvOps = {sizeof(sess_backend_ops), kv_load, kv_save, kv_erase,
                                 kv_move, kv_start, kv_close, nullptr};

sess_config* make_config() {
  sess_config* config = nullptr;
  REQUIRE(sess_config_new(&config) == SESS_OK);
  REQUIRE(sess_config_add_secret(config, kSecret.data(), kSecret.size()) == SESS_OK);
  return config;
}

// One request: the header in, the handler, the next header out.
template <typename Handler>
int cycle(sess_store* store, std::string* jar, Handler handler) {
  sess_request* req = nullptr;
  REQUIRE(sess_request_begin(jar->data(), jar->size(), &req) == SESS_OK);
  sess_session* s = nullptr;
  int rc = sess_request_session(req, store, "sid", &s);
  if (rc == SESS_OK) {
    handler(s);
    rc = sess_request_finish(req);
    if (sess_request_set_cookie_count(req) > 0) {
      std::string line = sess_request_set_cookie(req, 0, nullptr);
      *jar = line.find("Max-Age=0") == std::string::npos ? line.substr(0, line.find(';')) : "";
    }
  }
  sess_request_free(req);
  return rc;
}

}  // namespace

TEST_CASE("C: a custom backend carries sessions through the request cycle") {
  std::atomic<int> closes{0};
  auto* kv = new KvState();
  kv->closes = &closes;
  sess_config* config = make_config();
  REQUIRE(sess_config_set(config, "hash_keys", "true") == SESS_OK);
  sess_store* store = nullptr;
  REQUIRE(sess_store_open_backend(&kKvOps, kv, config, &store) == SESS_OK);
  sess_config_free(config);
  CHECK(kv->starts == 1);

  std::string jar, first_id;
  REQUIRE(cycle(store, &jar, [](sess_session* s) { REQUIRE(sess_set_int(s, "n", 41) == SESS_OK); }) == SESS_OK);
  CHECK(kv->saves == 1);
  REQUIRE(cycle(store, &jar, [&](sess_session* s) {
            int64_t n = 0;
            REQUIRE(sess_session_status(s) == SESS_STATUS_VALID);
            REQUIRE(sess_get_int(s, "n", &n) == SESS_OK);
            CHECK(n == 41);
            first_id = sess_session_id(s);
            REQUIRE(sess_session_regenerate_id(s) == SESS_OK);
          }) == SESS_OK);
  CHECK(kv->moves == 1);
  {
    std::lock_guard<std::mutex> lock(kv->mutex);
    REQUIRE(kv->records.size() == 1);
    CHECK(kv->records.begin()->first != first_id);  // hash_keys: the key is not the ID
    CHECK(kv->records.begin()->first.size() == 43);
  }
  REQUIRE(cycle(store, &jar, [](sess_session* s) { REQUIRE(sess_session_destroy(s) == SESS_OK); }) == SESS_OK);
  CHECK(kv->erases == 1);
  CHECK(kv->records.empty());
  CHECK(closes == 0);
  sess_store_close(store);
  CHECK(closes == 1);
}

TEST_CASE("C: a failing backend is an error naming the callback, never an empty session") {
  std::atomic<int> closes{0};
  auto* kv = new KvState();
  kv->closes = &closes;
  sess_config* config = make_config();
  // So that the failure set during a request hits its save: under merge, the
  // default, a backend without save_if is first read again (the fallback).
  REQUIRE(sess_config_set(config, "concurrency", "last_write") == SESS_OK);
  sess_store* store = nullptr;
  REQUIRE(sess_store_open_backend(&kKvOps, kv, config, &store) == SESS_OK);
  sess_config_free(config);
  std::string jar;
  REQUIRE(cycle(store, &jar, [](sess_session* s) { REQUIRE(sess_set_int(s, "n", 1) == SESS_OK); }) == SESS_OK);

  kv->fail_with = SESS_E_STORE_UNAVAILABLE;
  kv->reason = "disk on fire";
  CHECK(cycle(store, &jar, [](sess_session*) { FAIL("no session without a store"); }) ==
        SESS_E_STORE_UNAVAILABLE);
  CHECK(std::string(sess_last_error()) == "backend load failed: disk on fire");
  kv->fail_with = 42;  // not a code a callback may return
  kv->reason = nullptr;
  CHECK(cycle(store, &jar, [](sess_session*) {}) == SESS_E_STORE_UNAVAILABLE);
  CHECK(std::string(sess_last_error()).find("backend load failed (it returned 42") == 0);
  kv->fail_with = SESS_OK;
  int rc = cycle(store, &jar, [&](sess_session* s) {
    REQUIRE(sess_session_status(s) == SESS_STATUS_VALID);
    REQUIRE(sess_set_int(s, "n", 2) == SESS_OK);
    kv->fail_with = SESS_E_VALUE_TOO_LARGE;
    kv->reason = "over 1 KB";
  });
  CHECK(rc == SESS_E_VALUE_TOO_LARGE);
  CHECK(std::string(sess_last_error()) == "backend save failed: over 1 KB");
  kv->fail_with = SESS_OK;
  kv->reason = nullptr;
  REQUIRE(cycle(store, &jar, [](sess_session* s) {
            int64_t n = 0;
            REQUIRE(sess_get_int(s, "n", &n) == SESS_OK);
            CHECK(n == 1);  // the failed save changed nothing
          }) == SESS_OK);
  // A load that writes more than a session may hold is a foreign record.
  kv->oversized.assign(2u << 20, 'x');
  REQUIRE(cycle(store, &jar, [](sess_session* s) { CHECK(sess_session_status(s) == SESS_STATUS_MALFORMED); }) == SESS_OK);
  sess_store_close(store);
  CHECK(closes == 1);
}

TEST_CASE("C: opening a backend that cannot be used closes its state once") {
  std::atomic<int> closes{0};
  sess_config* config = make_config();
  sess_store* store = reinterpret_cast<sess_store*>(1);
  auto* kv = new KvState();
  kv->closes = &closes;
  sess_backend_ops no_load = kKvOps;
  no_load.load = nullptr;
  CHECK(sess_store_open_backend(&no_load, kv, config, &store) == SESS_E_INVALID_ARGUMENT);
  CHECK((store == nullptr && closes == 1));
  kv = new KvState();
  kv->closes = &closes;
  REQUIRE(sess_config_set(config, "max_sessions", "10") == SESS_OK);  // memory:'s, not general
  CHECK(sess_store_open_backend(&kKvOps, kv, config, &store) == SESS_E_BAD_OPTION);
  CHECK((store == nullptr && closes == 2));
  sess_config_free(config);
  // A table from an older header (no move, start, close) still works.
  config = make_config();
  KvState old_state;
  sess_backend_ops old = kKvOps;
  old.size = offsetof(sess_backend_ops, move);
  REQUIRE(sess_store_open_backend(&old, &old_state, config, &store) == SESS_OK);
  std::string jar;
  REQUIRE(cycle(store, &jar, [](sess_session* s) {
            REQUIRE(sess_set_int(s, "n", 1) == SESS_OK);
            REQUIRE(sess_session_regenerate_id(s) == SESS_OK);
          }) == SESS_OK);
  CHECK((old_state.moves == 0 && old_state.starts == 0 && old_state.saves == 1));
  sess_store_close(store);
  sess_config_free(config);
}

namespace {
struct FactoryLog {
  std::mutex mutex;
  std::vector<std::string> uris;
  std::vector<std::pair<std::string, std::string>> options;
  std::atomic<int> closes{0};
};

int kv_factory(void* factory_state, const char* uri, const char* const* names,
               const char* const* values, size_t count, const sess_backend_ops** ops, void** state) {
  auto* log = static_cast<FactoryLog*>(factory_state);
  std::lock_guard<std::mutex> lock(log->mutex);
  log->uris.emplace_back(uri);
  log->options.clear();
  for (size_t i = 0; i < count; ++i) {
    if (std::string(names[i]) != "bucket") {
      sess_backend_set_error((std::string("unknown option ") + names[i]).c_str());
      return SESS_E_BAD_OPTION;
    }
    log->options.emplace_back(names[i], values[i]);
  }
  auto* kv = new KvState();
  kv->closes = &log->closes;
  *ops = &kKvOps;
  *state = kv;
  return SESS_OK;
}
}  // namespace

TEST_CASE("C: a registered scheme opens through sess_store_open, options and all") {
  static FactoryLog log;  // registered for the life of the process
  static const char* const options[] = {"bucket", nullptr};
  REQUIRE(sess_register_scheme("TestKV", kv_factory, &log, options) == SESS_OK);
  CHECK(sess_register_scheme("testkv", kv_factory, &log, options) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_register_scheme("redis", kv_factory, &log, nullptr) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_register_scheme("bad scheme", kv_factory, &log, nullptr) == SESS_E_INVALID_ARGUMENT);
  CHECK(sess_register_scheme("x", nullptr, &log, nullptr) == SESS_E_INVALID_ARGUMENT);

  sess_config* config = make_config();
  REQUIRE(sess_config_set(config, "bucket", "from-config") == SESS_OK);  // declared: accepted
  CHECK(sess_config_set(config, "buckett", "x") == SESS_E_BAD_OPTION);
  const int closes_before = log.closes;
  REQUIRE(sess_store_check("testkv://host/db?bucket=from-uri&idle_timeout=30m", config) == SESS_OK);
  CHECK(log.closes == closes_before + 1);  // made and closed, never started
  CHECK(log.uris.back() == "testkv://host/db?bucket=from-uri&idle_timeout=30m");
  CHECK(log.options == std::vector<std::pair<std::string, std::string>>{
                           {"bucket", "from-uri"}, {"bucket", "from-config"}});
  CHECK(sess_store_open("testkv://host?other=1", config, nullptr) == SESS_E_INVALID_ARGUMENT);
  sess_store* store = nullptr;
  CHECK(sess_store_open("testkv://host?other=1", config, &store) == SESS_E_BAD_OPTION);
  CHECK(std::string(sess_last_error()) ==
        "testkv: store factory refused the URI or its options: unknown option other");
  REQUIRE(sess_store_open("TESTKV://host", config, &store) == SESS_OK);
  sess_config_free(config);
  std::string jar;
  REQUIRE(cycle(store, &jar, [](sess_session* s) { REQUIRE(sess_set_str(s, "u", "ann", 3) == SESS_OK); }) == SESS_OK);
  REQUIRE(cycle(store, &jar, [](sess_session* s) {
            const char* u = nullptr;
            REQUIRE(sess_get_str(s, "u", &u, nullptr) == SESS_OK);
            CHECK(std::string(u) == "ann");
          }) == SESS_OK);
  const int closes_open = log.closes;
  sess_store_close(store);
  CHECK(log.closes == closes_open + 1);
}

namespace {
// The C++ interface: a map, and a switch that makes it throw.
class MapBackend : public sessions::Backend {
 public:
  std::atomic<bool> broken{false};
  std::optional<std::string> load(const std::string& key, int64_t now) override {
    if (broken) throw std::runtime_error("map backend is broken");
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = records_.find(key);
    if (it == records_.end() || now >= it->second.second) return std::nullopt;
    return it->second.first;
  }
  void save(const std::string& key, std::string_view data, int64_t now, int64_t ttl) override {
    if (data.size() > 100000) throw sessions::Error(SESS_E_VALUE_TOO_LARGE, "over 100 KB");
    std::lock_guard<std::mutex> lock(mutex_);
    records_[key] = {std::string(data), now + ttl};
  }
  void erase(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    records_.erase(key);
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::pair<std::string, int64_t>> records_;
};
}  // namespace

TEST_CASE("C++: a Backend subclass, its exceptions kept on its side of the ABI") {
  auto owned = std::make_unique<MapBackend>();
  MapBackend* backend = owned.get();
  sessions::Store store = sessions::Store::open(std::move(owned), sessions::Config().add_secret(kSecret));
  std::string jar;
  {
    sessions::Request request(jar);
    request.session(store, "sid").set_int("n", 7);
    request.finish();
    jar = request.set_cookies().at(0).substr(0, request.set_cookies()[0].find(';'));
  }
  {
    sessions::Request request(jar);
    CHECK(request.session(store, "sid").get_int("n") == 7);
    std::string big(200000, ' ');  // letters that compress to no less than 100 KB
    uint32_t state = 1;
    for (char& c : big) c = char('a' + ((state = state * 1103515245u + 12345u) >> 16) % 26);
    request.session(store, "sid").set_str("big", big);
    CHECK_THROWS_WITH(request.finish(), Catch::Contains("over 100 KB"));
  }
  backend->broken = true;
  try {
    sessions::Request request(jar);
    request.session(store, "sid");
    FAIL("a broken backend gave a session");
  } catch (const sessions::Error& e) {
    CHECK(e.code() == SESS_E_STORE_UNAVAILABLE);
    CHECK(std::string(e.what()).find("backend load failed: map backend is broken") != std::string::npos);
  }
  backend->broken = false;

  sessions::register_scheme("mapkv", [](const std::string& uri, const sessions::BackendOptions& options) {
    if (!options.empty()) throw sessions::Error(SESS_E_BAD_OPTION, "mapkv takes no options");
    if (uri.find("//") == std::string::npos) throw sessions::Error(SESS_E_BAD_URI, "mapkv needs //");
    return std::make_unique<MapBackend>();
  });
  CHECK_THROWS_WITH(sessions::Store::open("mapkv:", sessions::Config().add_secret(kSecret)),
                    Catch::Contains("mapkv needs //"));
  CHECK_THROWS_WITH(sessions::Store::open("mapkv://?x=1", sessions::Config().add_secret(kSecret)),
                    Catch::Contains("takes no options"));
  sessions::Store registered = sessions::Store::open("mapkv://", sessions::Config().add_secret(kSecret));

  // Eight threads on one custom store, each with its own sessions.
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      std::string my_jar;
      for (int i = 0; i < 200; ++i) {
        sessions::Request request(my_jar);
        sessions::Session s = request.session(registered, "sid");
        if (s.get_int("n").value_or(0) != i) ++failures;
        s.set_int("n", i + 1);
        request.finish();
        auto cookies = request.set_cookies();
        if (!cookies.empty()) my_jar = cookies[0].substr(0, cookies[0].find(';'));
      }
    });
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);
}

TEST_CASE("C: sess_config_set accepts exactly the options some store takes") {
  sess_config* config = make_config();
  for (const char* name : {"max_sessions", "prefix", "fsync", "table", "collection", "sslmode",
                           "application_name", "replicaSet", "readPreference", "busy_timeout_ms"}) {
    INFO(name);
    CHECK(sess_config_set(config, name, "x") == SESS_OK);  // store options: checked at open
  }
  CHECK(sess_config_set(config, "sslmode", "require") == SESS_OK);             // a libpq keyword
  CHECK(sess_config_set(config, "replicaSet", "rs0") == SESS_OK);              // a mongoc option
  CHECK(sess_config_set(config, "no_such_option", "1") == SESS_E_BAD_OPTION);
  sess_config_free(config);
  config = make_config();
  REQUIRE(sess_config_set(config, "sslmode", "require") == SESS_OK);
  sess_store* store = nullptr;
  CHECK(sess_store_open("memory:", config, &store) == SESS_E_BAD_OPTION);      // not memory:'s
  CHECK(std::string(sess_last_error()).find("does not apply to the memory: store") != std::string::npos);
  sess_config_free(config);
}

namespace {
// A C++ Backend with versions: its save_if is what merge and cas use.
class VersionedMapBackend : public sessions::Backend {
 public:
  std::atomic<int> save_ifs{0}, conflicts{0};
  bool versioned() const override { return true; }
  std::optional<std::string> load(const std::string& key, int64_t now) override {
    auto record = load_versioned(key, now);
    if (!record) return std::nullopt;
    return record->data;
  }
  std::optional<VersionedRecord> load_versioned(const std::string& key, int64_t) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = records_.find(key);
    if (it == records_.end()) return std::nullopt;
    return VersionedRecord{it->second.first, it->second.second};
  }
  void save(const std::string& key, std::string_view data, int64_t, int64_t) override {
    std::lock_guard<std::mutex> lock(mutex_);
    records_[key] = {std::string(data), ++last_version_};
  }
  void erase(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mutex_);
    records_.erase(key);
  }
  SaveIf save_if(const std::string& from, const std::string& to, std::string_view data, int64_t,
                 int64_t, uint64_t expected) override {
    ++save_ifs;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = records_.find(from);
    if (it == records_.end()) return SaveIf::gone;
    if (it->second.second != expected) {
      ++conflicts;
      return SaveIf::changed;
    }
    records_.erase(it);
    records_[to] = {std::string(data), ++last_version_};
    return SaveIf::written;
  }

 private:
  std::mutex mutex_;
  uint64_t last_version_ = 0;
  std::map<std::string, std::pair<std::string, uint64_t>> records_;
};
}  // namespace

TEST_CASE("C++: a versioned Backend's save_if serves merge and cas") {
  auto owned = std::make_unique<VersionedMapBackend>();
  VersionedMapBackend* backend = owned.get();
  sessions::Store store = sessions::Store::open(std::move(owned), sessions::Config().add_secret(kSecret));
  std::string jar;
  {
    sessions::Request request(jar);
    request.session(store, "sid").set_int("n", 0);
    request.finish();
    jar = request.set_cookies().at(0).substr(0, request.set_cookies()[0].find(';'));
  }
  // Two requests loaded together, each changing its own key: merge keeps both.
  sessions::Request first(jar), second(jar);
  first.session(store, "sid").set_int("a", 1);
  second.session(store, "sid").set_int("b", 2);
  first.finish();
  second.finish();
  CHECK(backend->conflicts == 1);  // the second lost the race, reloaded and merged
  sessions::Request check(jar);
  CHECK(check.session(store, "sid").get_int("a") == 1);
  CHECK(check.session(store, "sid").get_int("b") == 2);
  CHECK(backend->save_ifs == 3);
  // cas: the stale one is refused with SESS_E_CONFLICT.
  sessions::Store cas = sessions::Store::open(std::make_unique<VersionedMapBackend>(),
                                              sessions::Config().add_secret(kSecret).set("concurrency", "cas"));
  std::string cas_jar;
  {
    sessions::Request request(cas_jar);
    request.session(cas, "sid").set_int("n", 0);
    request.finish();
    cas_jar = request.set_cookies().at(0).substr(0, request.set_cookies()[0].find(';'));
  }
  sessions::Request stale(cas_jar), fresh(cas_jar);
  stale.session(cas, "sid").set_int("n", 1);
  fresh.session(cas, "sid").set_int("n", 2);
  fresh.finish();
  try {
    stale.finish();
    FAIL("a stale save under cas was accepted");
  } catch (const sessions::Error& e) {
    CHECK(e.code() == SESS_E_CONFLICT);
  }
}
